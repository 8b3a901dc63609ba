package endpoints

import (
	"maps"
	"strings"
	"testing"
)

func member(id uint64, ip string, voting, leaving bool) Member {
	return Member{ID: id, Name: "m" + ip, PeerURLs: []string{"https://" + ip + ":2380"}, ClientURLs: []string{"https://" + ip + ":2379"},
		Voting: voting, Leaving: leaving, Healthy: true}
}

// TestOpenShiftDataIsTheEtcdOperatorsFormat: lower-case hex IDs without padding → the first
// peer URL's IP; learners and etcd-bootstrap left out; a leaving member left out once enough
// others vote, as in the generic list.
func TestOpenShiftDataIsTheEtcdOperatorsFormat(t *testing.T) {
	boot := member(0x77, "10.0.0.9", true, false)
	boot.Name = BootstrapMember
	six := member(0xabc, "fd00::6", true, false)
	six.PeerURLs = []string{"https://[fd00::6]:2380"}
	ms := []Member{member(0x1A2B, "10.0.0.1", true, true), member(0x2, "10.0.0.2", true, false), member(0x3, "10.0.0.3", false, false), boot, six}
	got, err := OpenShiftData(ms, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"2": "10.0.0.2", "abc": "fd00::6"}
	if !maps.Equal(got, want) {
		t.Errorf("data %v, want %v", got, want)
	}
	// With 4 desired (2, etcd-bootstrap and abc vote), the leaving member still serves and
	// stays listed.
	got, _ = OpenShiftData(ms, 4)
	if got["1a2b"] != "10.0.0.1" {
		t.Errorf("data %v: the leaving member should stay while fewer than desired vote", got)
	}
	bad := member(0x5, "10.0.0.5", true, false)
	bad.PeerURLs = []string{"https://master-5.example:2380"}
	if _, err := OpenShiftData([]Member{bad}, 1); err == nil || !strings.Contains(err.Error(), "names no IP address") {
		t.Errorf("a peer URL with a host name: err %v, want one saying it names no IP", err)
	}
}

func TestBootstrapAnnotationIsCarriedAsTheEtcdOperatorDoes(t *testing.T) {
	in := map[string]string{BootstrapAnnotation: "10.0.0.9", "other": "x"}
	for _, c := range []struct {
		name              string
		bootstrap, stable bool
		renamed           bool
	}{
		{"bootstrap member still present", true, true, false},
		{"revision not stable", false, false, false},
		{"bootstrap over and stable", false, true, true},
	} {
		got, changed := BootstrapAnnotations(in, c.bootstrap, c.stable)
		if changed != c.renamed {
			t.Errorf("%s: changed %v, want %v", c.name, changed, c.renamed)
		}
		if c.renamed {
			if got[BootstrapAnnotation+"-"] != "10.0.0.9" || got[BootstrapAnnotation] != "" || got["other"] != "x" {
				t.Errorf("%s: annotations %v", c.name, got)
			}
			if in[BootstrapAnnotation] != "10.0.0.9" {
				t.Errorf("%s: the input was changed", c.name)
			}
		} else if !maps.Equal(got, in) {
			t.Errorf("%s: annotations %v, want them kept", c.name, got)
		}
	}
	if _, changed := BootstrapAnnotations(map[string]string{"other": "x"}, false, true); changed {
		t.Error("no bootstrap annotation: nothing to rename")
	}
}

// TestRolloutHolds: a member leaves only when etcd-endpoints leaves it out and no node's
// current revision dials it; the message names the revision and the nodes behind.
func TestRolloutHolds(t *testing.T) {
	a, b, c, d := member(0xa, "10.0.0.1", true, true), member(0xb, "10.0.0.2", true, false), member(0xc, "10.0.0.3", true, false), member(0xd, "10.0.0.4", true, false)
	learner := member(0xe, "10.0.0.5", false, false)
	ms := []Member{a, b, c, d, learner}
	with := []string{"https://10.0.0.1:2379", "https://10.0.0.2:2379", "https://10.0.0.3:2379", "https://localhost:2379"}
	without := []string{"https://10.0.0.2:2379", "https://10.0.0.3:2379", "https://10.0.0.4:2379", "https://localhost:2379"}
	listing := map[string]string{"a": "10.0.0.1", "b": "10.0.0.2", "c": "10.0.0.3"}
	left := map[string]string{"b": "10.0.0.2", "c": "10.0.0.3", "d": "10.0.0.4"}
	nodes := func(revs ...int32) []NodeRevision {
		var out []NodeRevision
		for i, r := range revs {
			out = append(out, NodeRevision{Node: []string{"m0", "m1", "m2"}[i], Current: r})
		}
		return out
	}
	servers := map[int32][]string{6: with, 7: without}
	for _, tc := range []struct {
		name string
		data map[string]string
		r    *Rollout
		want string // a's hold, "" for none
	}{
		{"still listed", listing, &Rollout{Latest: 7, Nodes: nodes(7, 7, 7), Servers: servers}, "still lists member a (10.0.0.1)"},
		{"listed under another ID", map[string]string{"ff": "10.0.0.1", "b": "10.0.0.2"}, &Rollout{Latest: 7, Nodes: nodes(7, 7, 7), Servers: servers}, "still lists member a"},
		{"no revision without it yet", left, &Rollout{Latest: 6, Nodes: nodes(6, 6, 6), Servers: servers}, "the latest, revision 6, still dials it"},
		{"one node behind", left, &Rollout{Latest: 7, Nodes: nodes(7, 6, 7), Servers: servers}, "waiting for kube-apiserver revision 7, whose etcd servers leave out member a (10.0.0.1), on node m1 (at revision 6)"},
		{"two nodes behind", left, &Rollout{Latest: 7, Nodes: nodes(6, 6, 7), Servers: servers}, "on nodes m0 (at revision 6), m1 (at revision 6)"},
		{"a node with no revision", left, &Rollout{Latest: 7, Nodes: nodes(7, 0, 7), Servers: servers}, "m1 (no revision yet)"},
		{"a node's revision unreadable", left, &Rollout{Latest: 7, Nodes: nodes(7, 5, 7), Servers: servers, Unread: map[int32]string{5: "not found"}}, "m1 (at revision 5, whose etcd servers cannot be read: not found)"},
		{"latest unreadable", left, &Rollout{Latest: 7, Nodes: nodes(7, 7, 7), Unread: map[int32]string{7: "forbidden"}}, "revision 7 cannot be read (forbidden)"},
		{"rollout unreadable", left, &Rollout{Unreadable: "no latestAvailableRevision"}, "cannot be read (no latestAvailableRevision)"},
		{"no nodes", left, &Rollout{Latest: 7, Servers: servers}, "reports no nodes"},
		{"rolled out everywhere", left, &Rollout{Latest: 7, Nodes: nodes(7, 7, 7), Servers: servers}, ""},
		{"wait turned off", left, nil, ""},
		{"wait turned off, still listed", listing, nil, "still lists member a"},
	} {
		got := RolloutHolds(ms, tc.data, tc.r)
		switch {
		case tc.want == "" && got[a.ID] != "":
			t.Errorf("%s: a held: %s", tc.name, got[a.ID])
		case tc.want != "" && !strings.Contains(got[a.ID], tc.want):
			t.Errorf("%s: a's hold %q, want it to say %q", tc.name, got[a.ID], tc.want)
		}
		if got[learner.ID] != "" {
			t.Errorf("%s: a learner is held: %s", tc.name, got[learner.ID])
		}
	}
}

func TestParseRevisionServers(t *testing.T) {
	got, err := ParseRevisionServers(`{"apiVersion":"kubecontrolplane.config.openshift.io/v1","kind":"KubeAPIServerConfig","apiServerArguments":{"etcd-servers":["https://10.0.0.2:2379","https://localhost:2379"]}}`, "config-3")
	if err != nil || len(got) != 2 || got[0] != "https://10.0.0.2:2379" {
		t.Errorf("got %v, %v", got, err)
	}
	got, err = ParseRevisionServers("apiServerArguments:\n  etcd-servers:\n  - https://10.0.0.2:2379\n", "config-3")
	if err != nil || len(got) != 1 {
		t.Errorf("YAML: got %v, %v", got, err)
	}
	for _, bad := range []string{"", "{", `{"apiServerArguments":{}}`} {
		if _, err := ParseRevisionServers(bad, "config-3"); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
