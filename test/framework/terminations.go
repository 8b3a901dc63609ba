package framework

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
)

// Termination is one instance the cloud terminated, with the etcd membership as it stood at
// that moment: recorded when it happens, so a check never depends on sampling in time.
type Termination struct {
	Machine string
	At      time.Time
	// Listed: the Machine's member was still in the member list; Voter: as a voting member.
	Listed, Voter bool
	// Members is the member list read (name, "(learner)" after learners), or why it could
	// not be read.
	Members string
}

func (t Termination) String() string {
	return fmt.Sprintf("%s terminated at %s (member listed: %t, voting: %t; members %s)", t.Machine, t.At.Format("15:04:05.000"), t.Listed, t.Voter, t.Members)
}

// terminations records each termination before the instance's member is stopped.
type terminations struct {
	mu   sync.Mutex
	list []Termination
}

func (c *Cluster) recordTermination(m *machinev1beta1.Machine) {
	t := Termination{Machine: m.Name, At: time.Now()}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if cli, err := c.EtcdClient(); err != nil {
		t.Members = "unread: " + err.Error()
	} else {
		resp, err := cli.MemberList(ctx)
		_ = cli.Close()
		if err != nil {
			t.Members = "unread: " + err.Error()
		} else {
			var names []string
			for _, mem := range resp.Members {
				name := mem.Name
				if name == "" {
					name = strings.Join(mem.PeerURLs, ",") // added, not started
				}
				if mem.IsLearner {
					name += " (learner)"
				}
				names = append(names, name)
				if mem.Name == m.Name || slices.ContainsFunc(mem.PeerURLs, func(u string) bool { return c.peerOf(m.Name, u) }) {
					t.Listed = true
					t.Voter = !mem.IsLearner
				}
			}
			t.Members = "[" + strings.Join(names, ", ") + "]"
		}
	}
	c.terms.mu.Lock()
	c.terms.list = append(c.terms.list, t)
	c.terms.mu.Unlock()
}

// peerOf says whether url is the peer URL of the named Machine's instance.
func (c *Cluster) peerOf(machine, url string) bool {
	ip := c.Cloud.address(machine)
	return ip != nil && strings.Contains(url, "://"+ip.String()+":")
}

// Terminations returns every instance terminated so far, in order.
func (c *Cluster) Terminations() []Termination {
	c.terms.mu.Lock()
	defer c.terms.mu.Unlock()
	return slices.Clone(c.terms.list)
}

// TerminatedWithMember returns the terminations of instances whose etcd member was still in
// the member list: each one a lost member, and a lost vote if it was a voter.
func (c *Cluster) TerminatedWithMember() []Termination {
	var out []Termination
	for _, t := range c.Terminations() {
		if t.Listed {
			out = append(out, t)
		}
	}
	return out
}
