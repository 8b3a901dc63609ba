package endpoints

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

const (
	// DataEndpoints, DataDigest and DataGeneration are the ConfigMap's data keys.
	DataEndpoints  = "endpoints"
	DataDigest     = "digest"
	DataGeneration = "generation"
	// AckPrefix + consumer is the annotation a consumer writes with the Digest of the list it
	// has rolled out.
	AckPrefix = "endpoints.quorumguard.io/ack-"

	digestPrefix = "sha256:"
)

// Member is what the decision needs of one etcd member.
type Member struct {
	ID         uint64
	ClientURLs []string
	// Name and PeerURLs are etcd's: OpenShift's contract names a member by its first peer
	// URL's IP and leaves out the one named etcd-bootstrap.
	Name     string
	PeerURLs []string
	// Voting is a started voting member; Leaving says its Machine is being deleted; Healthy
	// says it answered its probe.
	Voting, Leaving, Healthy bool
}

// Published is the list as the ConfigMap holds it now.
type Published struct {
	Endpoints []string
	// Generation counts the lists published into this ConfigMap, for people and logs. It
	// starts again at 1 when the ConfigMap is recreated, so nothing is decided on it.
	Generation int64
	// Acks are the consumers' acknowledgements as written, by consumer.
	Acks map[string]string
}

// Digest is the digest of the published list, the value a consumer that rolled it out
// acknowledges.
func (p Published) Digest() string { return Digest(p.Endpoints) }

// Digest names a list of endpoints by its content: "sha256:" and the lower-case hex SHA-256
// of the URLs sorted in byte order and joined with ",". The ConfigMap's data.endpoints is
// already sorted, so its digest is the SHA-256 of that value as stored. The same list always
// has the same digest, whichever ConfigMap or generation carried it.
func Digest(urls []string) string {
	sorted := slices.Clone(urls)
	slices.Sort(sorted)
	sum := sha256.Sum256([]byte(strings.Join(sorted, ",")))
	return digestPrefix + hex.EncodeToString(sum[:])
}

// Short is a digest cut to 12 hex digits, for messages: "sha256:3f1c0e9a7b2d".
func Short(digest string) string {
	if len(digest) > len(digestPrefix)+12 {
		return digest[:len(digestPrefix)+12]
	}
	return digest
}

var digestForm = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

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
	var out []string
	for _, m := range Listed(members, desired) {
		out = append(out, m.ClientURLs...)
	}
	sort.Strings(out)
	return out
}

// Listed are the members Want lists, in the order given: both contracts publish the same
// members, the generic one by client URL and OpenShift's by peer IP (OpenShiftData).
func Listed(members []Member, desired int) []Member {
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
	var out []Member
	for _, m := range members {
		if m.Voting && (!m.Leaving || keep[m.ID]) {
			out = append(out, m)
		}
	}
	return out
}

// Holds returns, for each member whose removal must wait, why. A member may go only when the
// published list leaves out all its client URLs and every consumer's acknowledgement equals
// the digest of that list: the consumer says it runs exactly this content. Nothing is
// counted, so no acknowledgement outlives the list it names:
//   - a consumer that acknowledged an earlier list (its digest differs) holds every removal;
//   - a ConfigMap deleted and recreated carries the same digest only if it lists the same
//     URLs, so an acknowledgement carried over from the old one, or written again from
//     memory, releases a removal only when the consumer does run what is published now;
//   - a list that goes A, B, then A again: an acknowledgement of A matches A again. It is
//     the same content, and the consumer that runs A does not use what A leaves out;
//   - an acknowledgement that is not a digest (a generation number, as consumers wrote
//     before digests) counts as none.
//
// Example: list {b, c, d}, consumer "kube-apiserver" last acknowledged {a, b, c}: removing
// a waits ("kube-apiserver has acknowledged another list, sha256:…"); once it writes the
// digest of {b, c, d}, a may go.
func Holds(members []Member, p Published, consumers []string) map[uint64]string {
	if len(consumers) == 0 {
		return nil
	}
	digest := p.Digest()
	in := map[string]bool{}
	for _, e := range p.Endpoints {
		in[e] = true
	}
	var behind []string
	for _, c := range consumers {
		got, ok := p.Acks[c]
		switch {
		case got == digest:
		case !ok || got == "":
			behind = append(behind, c+" has acknowledged no list")
		case !digestForm.MatchString(got):
			behind = append(behind, fmt.Sprintf("%s has acknowledged %q, which is not a list digest and counts as none", c, got))
		default:
			behind = append(behind, fmt.Sprintf("%s has acknowledged another list, %s", c, Short(got)))
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
			out[m.ID] = fmt.Sprintf("the published endpoints %s still list member %x; its removal waits until a list without it is acknowledged", Short(digest), m.ID)
		case len(behind) > 0:
			out[m.ID] = fmt.Sprintf("waiting for endpoint consumers to roll out list %s without member %x: %s", Short(digest), m.ID, strings.Join(behind, "; "))
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

// parse reads a Published from a ConfigMap's data and annotations. An acknowledgement is
// kept as written: one that is not a digest is not an error, it counts as none (Holds).
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
	p.Acks = map[string]string{}
	for k, v := range annotations {
		if c, ok := strings.CutPrefix(k, AckPrefix); ok {
			p.Acks[c] = v
		}
	}
	return p, nil
}
