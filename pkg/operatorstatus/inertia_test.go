package operatorstatus

import (
	"errors"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/quorumguard/quorumguard/pkg/quorum"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// clock hands out times in steps, as passes arrive.
type clock struct{ now time.Time }

func (c *clock) at(d time.Duration) time.Time { c.now = t0.Add(d); return c.now }

func healthySample(t time.Time) Sample {
	return Sample{Time: t, Observed: true, Voters: 3, Healthy: 3, FaultTolerance: 1}
}

func oneDeadSample(t time.Time) Sample {
	return Sample{Time: t, Observed: true, Voters: 3, Healthy: 2, FaultTolerance: 0, Unhealthy: []string{"m-1 (b)"}}
}

func twoDeadSample(t time.Time) Sample {
	return Sample{Time: t, Observed: true, Voters: 3, Healthy: 1, FaultTolerance: -1, Unhealthy: []string{"m-1 (b)", "m-2 (c)"}}
}

func unreachableSample(t time.Time) Sample {
	return Sample{Time: t, Observed: false, Err: "context deadline exceeded", FaultTolerance: 0}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestSettle(t *testing.T) {
	type pass struct {
		after  time.Duration
		sample func(time.Time) Sample
	}
	every := func(from, to, step time.Duration, f func(time.Time) Sample) []pass {
		var out []pass
		for d := from; d <= to; d += step {
			out = append(out, pass{d, f})
		}
		return out
	}
	join := func(ps ...[]pass) []pass {
		var out []pass
		for _, p := range ps {
			out = append(out, p...)
		}
		return out
	}
	cases := []struct {
		name   string
		passes []pass
		now    time.Duration
		prior  []string
		want   []string
	}{
		{
			name:   "a healthy cluster reports nothing",
			passes: every(0, 10*time.Second, 250*time.Millisecond, healthySample),
			now:    10 * time.Second,
		},
		{
			name: "one failed probe between healthy passes never shows",
			passes: join(every(0, 5*time.Second, 250*time.Millisecond, healthySample),
				[]pass{{5250 * time.Millisecond, oneDeadSample}},
				every(5500*time.Millisecond, 20*time.Second, 250*time.Millisecond, healthySample)),
			now: 20 * time.Second,
		},
		{
			name: "a failed probe is not reported before it has held for five seconds",
			passes: join(every(0, 5*time.Second, 250*time.Millisecond, healthySample),
				every(5250*time.Millisecond, 9*time.Second, 250*time.Millisecond, oneDeadSample)),
			now: 9 * time.Second,
		},
		{
			name: "a dead member is reported once it has held for five seconds",
			passes: join(every(0, 5*time.Second, 250*time.Millisecond, healthySample),
				every(5250*time.Millisecond, 11*time.Second, 250*time.Millisecond, oneDeadSample)),
			now:  11 * time.Second,
			want: []string{ReasonMembersUnhealthy, ReasonNoFaultTolerance},
		},
		{
			name:   "a single pass is not enough even when it is old",
			passes: []pass{{0, oneDeadSample}},
			now:    time.Minute,
		},
		{
			name:   "two passes far apart are enough",
			passes: []pass{{0, oneDeadSample}, {30 * time.Second, oneDeadSample}},
			now:    30 * time.Second,
			want:   []string{ReasonMembersUnhealthy, ReasonNoFaultTolerance},
		},
		{
			name: "a recovery is not reported before it has held for five seconds",
			passes: join(every(0, 10*time.Second, 250*time.Millisecond, oneDeadSample),
				every(10250*time.Millisecond, 12*time.Second, 250*time.Millisecond, healthySample)),
			now:  12 * time.Second,
			want: []string{ReasonMembersUnhealthy, ReasonNoFaultTolerance},
		},
		{
			name: "a recovery is reported once it has held for five seconds",
			passes: join(every(0, 10*time.Second, 250*time.Millisecond, oneDeadSample),
				every(10250*time.Millisecond, 16*time.Second, 250*time.Millisecond, healthySample)),
			now: 16 * time.Second,
		},
		{
			name: "a lost quorum is reported with the unhealthy members",
			passes: join(every(0, 2*time.Second, 250*time.Millisecond, healthySample),
				every(2250*time.Millisecond, 8*time.Second, 250*time.Millisecond, twoDeadSample)),
			now:  8 * time.Second,
			want: []string{ReasonMembersUnhealthy, ReasonNoFaultTolerance, ReasonNoQuorum},
		},
		{
			name:   "etcd out of reach is reported, and fault tolerance is unknown",
			passes: every(0, 6*time.Second, time.Second, unreachableSample),
			now:    6 * time.Second,
			want:   []string{ReasonEtcdUnreachable, ReasonNoFaultTolerance},
		},
		{
			name:   "with no run long enough yet, what the previous status said stands",
			passes: []pass{{0, healthySample}},
			now:    time.Second,
			prior:  []string{ReasonMembersUnhealthy},
			want:   []string{ReasonMembersUnhealthy},
		},
		{
			name:   "a long enough run overrides the previous status",
			passes: every(0, 6*time.Second, 500*time.Millisecond, healthySample),
			now:    6 * time.Second,
			prior:  []string{ReasonMembersUnhealthy},
		},
		{
			name: "the time since the newest pass counts: a run becomes long enough between passes",
			passes: join(every(0, 5*time.Second, 250*time.Millisecond, healthySample),
				every(5250*time.Millisecond, 8*time.Second, 250*time.Millisecond, oneDeadSample)),
			now:  10300 * time.Millisecond,
			want: []string{ReasonMembersUnhealthy, ReasonNoFaultTolerance},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c clock
			var h []Sample
			for _, p := range tc.passes {
				h = DefaultInertia.Record(h, p.sample(c.at(p.after)))
			}
			prior := func(r string) bool {
				for _, p := range tc.prior {
					if p == r {
						return true
					}
				}
				return false
			}
			got := keys(Settle(h, c.at(tc.now), DefaultInertia, prior))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("settled %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSettleMessageNamesTheMembers(t *testing.T) {
	var h []Sample
	for d := time.Duration(0); d <= 6*time.Second; d += time.Second {
		h = DefaultInertia.Record(h, oneDeadSample(t0.Add(d)))
	}
	got := Settle(h, t0.Add(6*time.Second), DefaultInertia, nil)[ReasonMembersUnhealthy]
	if want := "etcd members failing their health probe: m-1 (b)"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}

func TestRecordBoundsTheHistory(t *testing.T) {
	cases := []struct {
		name     string
		step     time.Duration
		passes   int
		wantLen  int
		wantSpan time.Duration
	}{
		{"fast passes are capped by count", 100 * time.Millisecond, 2000, maxHistory, time.Duration(maxHistory-1) * 100 * time.Millisecond},
		{"slow passes are capped by age", 10 * time.Second, 20, 7, time.Minute},
		{"a few passes are all kept", time.Second, 5, 5, 4 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h []Sample
			for i := range tc.passes {
				h = DefaultInertia.Record(h, healthySample(t0.Add(time.Duration(i)*tc.step)))
			}
			if len(h) != tc.wantLen {
				t.Errorf("kept %d samples, want %d", len(h), tc.wantLen)
			}
			if span := h[len(h)-1].Time.Sub(h[0].Time); span != tc.wantSpan {
				t.Errorf("kept a span of %s, want %s", span, tc.wantSpan)
			}
		})
	}
}

func TestFailing(t *testing.T) {
	ok := Sample{Time: t0}
	bad := Sample{Time: t0, Err: "boom"}
	cases := []struct {
		name    string
		history []Sample
		want    bool
	}{
		{"no history", nil, false},
		{"two failures are not yet repeated", []Sample{ok, bad, bad}, false},
		{"three failures in a row are", []Sample{ok, bad, bad, bad}, true},
		{"a success in between resets the count", []Sample{bad, bad, ok, bad, bad}, false},
		{"a success after failures clears it", []Sample{bad, bad, bad, ok}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, msg := Failing(tc.history, DefaultFailingPasses)
			if got != tc.want {
				t.Errorf("Failing = %v (%q), want %v", got, msg, tc.want)
			}
		})
	}
}

func TestNewSample(t *testing.T) {
	members := []quorum.Member{
		{ID: 1, Name: "a", Started: true, Healthy: true},
		{ID: 2, Name: "b", Started: true, Healthy: false},
		{ID: 3, Name: "c", Started: true, Healthy: true, Leader: true},
		{ID: 4, Name: "", Learner: true, Started: false, Machine: "new-0"},
		{ID: 5, Name: "e", Learner: true, Started: true, Healthy: false},
	}
	got := NewSample(t0, members, quorum.Decision{FaultTolerance: 0}, true, errors.New("x"))
	want := Sample{Time: t0, Observed: true, Err: "x", Voters: 3, Healthy: 2, Learners: 2, FaultTolerance: 0,
		Unhealthy: []string{"b (2)", "e (5)"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("NewSample =\n%+v, want\n%+v", got, want)
	}
}

// FuzzSettle feeds random pass sequences to Settle and checks its two promises: a finding
// that every kept pass shows, over at least Passes passes and For, is reported; one that no
// pass shows, and that the previous status did not report, is not.
func FuzzSettle(f *testing.F) {
	f.Add([]byte{0, 1, 1, 1, 0, 2, 2, 3, 1}, uint16(300))
	f.Add([]byte{1, 1, 1, 1, 1, 1, 1, 1}, uint16(1000))
	f.Fuzz(func(t *testing.T, script []byte, stepMillis uint16) {
		step := time.Duration(stepMillis%2000+1) * time.Millisecond
		kinds := []func(time.Time) Sample{healthySample, oneDeadSample, twoDeadSample, unreachableSample}
		var h []Sample
		now := t0
		for _, b := range script {
			now = now.Add(step)
			h = DefaultInertia.Record(h, kinds[int(b)%len(kinds)](now))
		}
		got := Settle(h, now, DefaultInertia, func(string) bool { return false })
		for _, reason := range probed {
			every, none := len(h) > 0, true
			for _, s := range h {
				_, has := s.findings()[reason]
				every, none = every && has, none && !has
			}
			_, reported := got[reason]
			if none && reported {
				t.Fatalf("%s reported though no pass showed it", reason)
			}
			if every && len(h) >= DefaultInertia.Passes && now.Sub(h[0].Time) >= DefaultInertia.For && !reported {
				t.Fatalf("%s, shown by all %d passes over %s, is not reported", reason, len(h), now.Sub(h[0].Time))
			}
		}
	})
}
