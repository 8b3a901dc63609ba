package endpoints_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/quorumguard/quorumguard/pkg/endpoints"
)

func TestWant(t *testing.T) {
	m := func(id uint64, voting, leaving, healthy bool) endpoints.Member {
		return endpoints.Member{ID: id, ClientURLs: []string{fmt.Sprintf("https://10.0.0.%d:2379", id)}, Voting: voting, Leaving: leaving, Healthy: healthy}
	}
	for _, tc := range []struct {
		name    string
		members []endpoints.Member
		want    string // host numbers
	}{
		{"steady", []endpoints.Member{m(1, true, false, true), m(2, true, false, true), m(3, true, false, true)}, "1,2,3"},
		{"a leaving member stays until its replacement votes", []endpoints.Member{m(1, true, true, true), m(2, true, false, true), m(3, true, false, true), m(4, false, false, true)}, "1,2,3"},
		{"once the replacement votes the leaving member goes", []endpoints.Member{m(1, true, true, true), m(2, true, false, true), m(3, true, false, true), m(4, true, false, true)}, "2,3,4"},
		{"two leaving, one replacement voting: one leaving member stays", []endpoints.Member{m(1, true, true, true), m(2, true, true, true), m(3, true, false, true), m(4, true, false, true)}, "2,3,4"},
		{"a leaving member that does not answer goes at once", []endpoints.Member{m(1, true, true, false), m(2, true, false, true), m(3, true, false, true)}, "2,3"},
		{"an unhealthy staying member stays listed", []endpoints.Member{m(1, true, false, false), m(2, true, false, true), m(3, true, false, true)}, "1,2,3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hosts []string
			for _, u := range endpoints.Want(tc.members, 3) {
				hosts = append(hosts, strings.TrimSuffix(strings.TrimPrefix(u, "https://10.0.0."), ":2379"))
			}
			if got := strings.Join(hosts, ","); got != tc.want {
				t.Fatalf("Want = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestDigest(t *testing.T) {
	ab := endpoints.Digest([]string{"https://10.0.0.1:2379", "https://10.0.0.2:2379"})
	// sha256("https://10.0.0.1:2379,https://10.0.0.2:2379"), as a consumer computes it from
	// data.endpoints.
	const want = "sha256:35dfd644da84378a0342847b023d4ab7a2ed42515cedfca5330d000c8f3d7756"
	for name, got := range map[string]string{
		"the published order":    ab,
		"another order":          endpoints.Digest([]string{"https://10.0.0.2:2379", "https://10.0.0.1:2379"}),
		"the Published's method": endpoints.Published{Endpoints: []string{"https://10.0.0.1:2379", "https://10.0.0.2:2379"}, Generation: 9}.Digest(),
	} {
		if got != want {
			t.Errorf("%s: digest %s, want %s", name, got, want)
		}
	}
	if got := endpoints.Short(ab); got != "sha256:35dfd644da84" {
		t.Errorf("Short = %s", got)
	}
	if endpoints.Digest([]string{"https://10.0.0.1:2379"}) == ab {
		t.Error("two lists share a digest")
	}
}

func TestHolds(t *testing.T) {
	a := endpoints.Member{ID: 0xa, ClientURLs: []string{"https://10.0.0.1:2379"}, Voting: true, Leaving: true}
	b := endpoints.Member{ID: 0xb, ClientURLs: []string{"https://10.0.0.2:2379"}, Voting: true}
	ms := []endpoints.Member{a, b}
	without := endpoints.Published{Endpoints: []string{"https://10.0.0.2:2379"}, Generation: 7}
	with := endpoints.Published{Endpoints: []string{"https://10.0.0.1:2379", "https://10.0.0.2:2379"}, Generation: 6}
	// A ConfigMap recreated with the list without a: its generation restarts at 1.
	recreated := endpoints.Published{Endpoints: without.Endpoints, Generation: 1}
	for _, tc := range []struct {
		name      string
		pub       endpoints.Published
		acks      map[string]string
		consumers []string
		held      string // what the hold on a says; "" for none
	}{
		{"no consumers: nothing waits", with, nil, nil, ""},
		{"every consumer acknowledged the list without it: it may go", without,
			map[string]string{"kas": without.Digest(), "other": without.Digest()}, []string{"kas", "other"}, ""},
		{"a consumer that acknowledged the earlier list holds it", without,
			map[string]string{"kas": with.Digest(), "other": without.Digest()}, []string{"kas", "other"}, "kas has acknowledged another list, " + endpoints.Short(with.Digest())},
		{"a consumer that never acknowledged holds it", without,
			map[string]string{"kas": without.Digest()}, []string{"kas", "other"}, "other has acknowledged no list"},
		{"an empty acknowledgement is none", without,
			map[string]string{"kas": ""}, []string{"kas"}, "kas has acknowledged no list"},
		{"a generation number from before digests counts as none, even the current one", without,
			map[string]string{"kas": "7"}, []string{"kas"}, `kas has acknowledged "7", which is not a list digest`},
		{"a recreated ConfigMap: the consumer's old generation, which the restarted counter reaches, counts as none", recreated,
			map[string]string{"kas": "1"}, []string{"kas"}, `kas has acknowledged "1"`},
		{"a recreated ConfigMap: an acknowledgement carried over from the old list holds it", recreated,
			map[string]string{"kas": with.Digest()}, []string{"kas"}, "kas has acknowledged another list"},
		{"a recreated ConfigMap: the consumer that runs the list it publishes releases it", recreated,
			map[string]string{"kas": without.Digest()}, []string{"kas"}, ""},
		{"a digest in capitals is not the digest", without,
			map[string]string{"kas": strings.ToUpper(without.Digest())}, []string{"kas"}, "kas has acknowledged"},
		{"still published: held even with the current list acknowledged", with,
			map[string]string{"kas": with.Digest()}, []string{"kas"}, "still list member a"},
		{"the hold names the list by its digest", without,
			map[string]string{}, []string{"kas"}, "roll out list " + endpoints.Short(without.Digest()) + " without member a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.pub.Acks = tc.acks
			got := endpoints.Holds(ms, tc.pub, tc.consumers)
			if tc.held == "" && got[0xa] != "" || tc.held != "" && !strings.Contains(got[0xa], tc.held) {
				t.Fatalf("hold on a = %q, want %q", got[0xa], tc.held)
			}
		})
	}
}

// TestHoldsListComesBack: the list goes A, B, then A again. An acknowledgement of A counts
// while A is published, both times, and not while B is: it names content, not a moment.
func TestHoldsListComesBack(t *testing.T) {
	gone := endpoints.Member{ID: 0xd, ClientURLs: []string{"https://10.0.0.4:2379"}, Voting: true, Leaving: true}
	listA := []string{"https://10.0.0.1:2379", "https://10.0.0.2:2379", "https://10.0.0.3:2379"}
	listB := []string{"https://10.0.0.1:2379", "https://10.0.0.2:2379", "https://10.0.0.5:2379"}
	ack := map[string]string{"kas": endpoints.Digest(listA)}
	for i, p := range []endpoints.Published{
		{Endpoints: listA, Generation: 1, Acks: ack},
		{Endpoints: listB, Generation: 2, Acks: ack},
		{Endpoints: listA, Generation: 3, Acks: ack},
	} {
		held := endpoints.Holds([]endpoints.Member{gone}, p, []string{"kas"})[0xd]
		if wantHeld := i == 1; (held != "") != wantHeld {
			t.Errorf("generation %d: hold %q, want held %v", p.Generation, held, wantHeld)
		}
	}
}

func TestParseConsumers(t *testing.T) {
	if got, err := endpoints.ParseConsumers(" kube-apiserver, etcd-backup.v2 ,"); err != nil || strings.Join(got, "|") != "kube-apiserver|etcd-backup.v2" {
		t.Fatalf("ParseConsumers = %v, %v", got, err)
	}
	for _, bad := range []string{"Kube", "a/b", "-x", strings.Repeat("x", 60)} {
		if _, err := endpoints.ParseConsumers(bad); err == nil {
			t.Errorf("ParseConsumers(%q) accepted it", bad)
		}
	}
}
