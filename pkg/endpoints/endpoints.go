package endpoints

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

const (
	// DataEndpoints and DataGeneration are the ConfigMap's data keys.
	DataEndpoints  = "endpoints"
	DataGeneration = "generation"
	// AckPrefix + consumer is the annotation a consumer writes with the generation it has
	// rolled out.
	AckPrefix = "endpoints.quorumguard.io/ack-"
)

// Member is what the decision needs of one etcd member.
type Member struct {
	ID         uint64
	ClientURLs []string
	// Voting is a started voting member; Leaving says its Machine is being deleted; Healthy
	// says it answered its probe.
	Voting, Leaving, Healthy bool
}

// Published is one generation of the list.
type Published struct {
	Endpoints  []string
	Generation int64
	// Acks are the generations each consumer acknowledged.
	Acks map[string]int64
}

// Want is the list consumers should use, sorted: the client URLs of the started voting
// members, less the leaving ones (their Machine is being deleted), with one exception. A
// healthy leaving member stays listed while leaving it out would list fewer than desired
// voters: until its replacement votes it still serves, and dropping it early would cost each
// consumer one more rollout per replacement. Examples with desired 3:
//   - voters a, b, c with a leaving and its replacement d still a learner: a, b, c (no
//     change, no rollout); once d votes: b, c, d, and a may then be removed;
//   - voters a, b, c, d with a and b leaving: a is left out (b, c, d are 3), b stays until
//     another replacement votes;
//   - a leaving member that does not answer is left out at once: it serves no one.
//
// It is empty only when no voting member exists, and an empty list is never published.
func Want(members []Member, desired int) []string {
	listed := 0
	var leaving []Member
	for _, m := range members {
		switch {
		case !m.Voting:
		case !m.Leaving:
			listed++
		case m.Healthy:
			leaving = append(leaving, m)
		}
	}
	sort.Slice(leaving, func(i, j int) bool { return leaving[i].ID < leaving[j].ID })
	keep := map[uint64]bool{}
	for i := len(leaving) - 1; i >= 0 && listed+len(keep) < desired; i-- {
		keep[leaving[i].ID] = true
	}
	var out []string
	for _, m := range members {
		if m.Voting && (!m.Leaving || keep[m.ID]) {
			out = append(out, m.ClientURLs...)
		}
	}
	sort.Strings(out)
	return out
}

// Holds returns, for each member whose removal must wait, why. A member may go when the
// published list leaves out all its client URLs and every consumer has acknowledged the
// published generation. Example: list {b, c, d} at generation 7, consumer
// "kube-apiserver" acknowledged 6: removing a waits ("kube-apiserver has acknowledged
// generation 6, not 7"); once it writes 7, a may go.
func Holds(members []Member, p Published, consumers []string) map[uint64]string {
	if len(consumers) == 0 {
		return nil
	}
	in := map[string]bool{}
	for _, e := range p.Endpoints {
		in[e] = true
	}
	var behind []string
	for _, c := range consumers {
		if got, ok := p.Acks[c]; !ok {
			behind = append(behind, c+" has acknowledged no generation")
		} else if got < p.Generation {
			behind = append(behind, fmt.Sprintf("%s has acknowledged generation %d", c, got))
		}
	}
	out := map[uint64]string{}
	for _, m := range members {
		listed := false
		for _, u := range m.ClientURLs {
			listed = listed || in[u]
		}
		switch {
		case listed:
			out[m.ID] = fmt.Sprintf("endpoints generation %d still lists member %x; its removal waits until a generation without it is acknowledged", p.Generation, m.ID)
		case len(behind) > 0:
			out[m.ID] = fmt.Sprintf("waiting for endpoint consumers to roll out generation %d without member %x: %s", p.Generation, m.ID, strings.Join(behind, "; "))
		}
	}
	return out
}

var consumerName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)

// ParseConsumers validates a comma-separated list of consumer names: each becomes part of an
// annotation key, so it must be lower-case letters, digits, '-' and '.', and short.
func ParseConsumers(s string) ([]string, error) {
	var out []string
	for _, c := range strings.Split(s, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if len(c) > 63-len("ack-") || !consumerName.MatchString(c) {
			return nil, fmt.Errorf("endpoint consumer %q is not a valid name (lower-case letters, digits, '-' and '.', at most %d characters)", c, 63-len("ack-"))
		}
		out = append(out, c)
	}
	return out, nil
}

// parse reads a Published from a ConfigMap's data and annotations.
func parse(data, annotations map[string]string) (Published, error) {
	var p Published
	if e := data[DataEndpoints]; e != "" {
		p.Endpoints = strings.Split(e, ",")
	}
	if g := data[DataGeneration]; g != "" {
		n, err := strconv.ParseInt(g, 10, 64)
		if err != nil || n < 0 {
			return p, fmt.Errorf("data.%s is %q, not a generation number", DataGeneration, g)
		}
		p.Generation = n
	}
	p.Acks = map[string]int64{}
	for k, v := range annotations {
		c, ok := strings.CutPrefix(k, AckPrefix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return p, fmt.Errorf("annotation %s is %q, not a generation number", k, v)
		}
		p.Acks[c] = n
	}
	return p, nil
}
