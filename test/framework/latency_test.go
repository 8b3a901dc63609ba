package framework_test

import (
	"testing"
	"time"

	"github.com/quorumguard/quorumguard/test/framework"
)

func TestSummarizeLatencies(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	at := func(n int) time.Time { return t0.Add(ms(n)) }
	// write started at start ms and took latency ms.
	write := func(start, latency int) framework.TimedWrite {
		return framework.TimedWrite{Start: at(start), Latency: ms(latency)}
	}
	// hundred are writes every 200 ms taking 1..100 ms in a shuffled order: each next latency
	// is 37 ms more or 63 ms less, so the longest gap between completions is 200+37 ms.
	var hundred []framework.TimedWrite
	for i := range 100 {
		hundred = append(hundred, write(200*i, 1+(i*37)%100))
	}
	for _, tc := range []struct {
		name     string
		writes   []framework.TimedWrite
		from, to time.Time
		want     framework.LatencySummary
	}{
		{name: "no writes and no bounds sum up to nothing"},
		{name: "no writes in a bounded window are a pause of the whole window",
			writes: []framework.TimedWrite{write(0, 5), write(500, 5)}, from: at(100), to: at(400),
			want: framework.LatencySummary{LongestPause: ms(300)}},
		{name: "one write is every percentile",
			writes: []framework.TimedWrite{write(0, 7)},
			want:   framework.LatencySummary{Writes: 1, P50: ms(7), P99: ms(7), Max: ms(7)}},
		{name: "of four writes p50 is the second smallest and p99 the largest",
			writes: []framework.TimedWrite{write(0, 4), write(20, 1), write(40, 3), write(60, 2)},
			want:   framework.LatencySummary{Writes: 4, P50: ms(2), P99: ms(4), Max: ms(4), LongestPause: ms(22)}},
		{name: "of a hundred writes p99 is the 99th smallest",
			writes: hundred,
			want:   framework.LatencySummary{Writes: 100, P50: ms(50), P99: ms(99), Max: ms(100), LongestPause: ms(237)}},
		{name: "the pause runs from the window's start to the first completion, between completions, and from the last to its end",
			writes: []framework.TimedWrite{write(0, 10), write(20, 10), write(40, 50)}, from: at(0), to: at(100),
			want: framework.LatencySummary{Writes: 3, P50: ms(10), P99: ms(50), Max: ms(50), LongestPause: ms(60)}},
		{name: "a stall at the window's end is a pause",
			writes: []framework.TimedWrite{write(0, 5), write(20, 5)}, from: at(0), to: at(1000),
			want: framework.LatencySummary{Writes: 2, P50: ms(5), P99: ms(5), Max: ms(5), LongestPause: ms(975)}},
		{name: "only writes started in the window count, one finishing after it included",
			writes: []framework.TimedWrite{write(0, 900), write(100, 2), write(120, 300), write(500, 1)}, from: at(100), to: at(500),
			want: framework.LatencySummary{Writes: 2, P50: ms(2), P99: ms(300), Max: ms(300), LongestPause: ms(318)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := framework.SummarizeLatencies(tc.writes, tc.from, tc.to); got != tc.want {
				t.Fatalf("summary %s; want %s", got, tc.want)
			}
		})
	}
}

func TestRiseOver(t *testing.T) {
	before := framework.LatencySummary{Writes: 300, P50: 2 * time.Millisecond, P99: 10 * time.Millisecond, Max: 12 * time.Millisecond}
	for _, tc := range []struct {
		name           string
		during, before framework.LatencySummary
		want           float64
	}{
		{name: "a p99 of 25 ms over one of 10 ms is 2.5", during: framework.LatencySummary{Writes: 900, P99: 25 * time.Millisecond}, before: before, want: 2.5},
		{name: "a p99 of 20 ms over one of 10 ms is exactly the limit", during: framework.LatencySummary{Writes: 900, P99: 20 * time.Millisecond}, before: before, want: framework.MaxLatencyRise},
		{name: "a window without writes compares with nothing", before: before},
		{name: "nor does a baseline without writes", during: framework.LatencySummary{Writes: 900, P99: 25 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.during.RiseOver(tc.before); got != tc.want {
				t.Fatalf("RiseOver = %v; want %v", got, tc.want)
			}
		})
	}
}

func TestLatencySummaryString(t *testing.T) {
	s := framework.LatencySummary{Writes: 412, P50: 3*time.Millisecond + 123*time.Microsecond, P99: 18 * time.Millisecond, Max: 40*time.Millisecond + 400*time.Microsecond, LongestPause: 120 * time.Millisecond}
	if got, want := s.String(), "412 writes, p50 3.1ms, p99 18ms, max 40ms, longest pause 120ms"; got != want {
		t.Fatalf("String() = %q; want %q", got, want)
	}
}

// TestWriterLatencies: a writer's whole-run summary counts every acknowledged write, and a
// window counts only the writes started in it.
func TestWriterLatencies(t *testing.T) {
	c := startCluster(t)
	ctx := t.Context()
	w, err := c.StartWriter(ctx)
	must(t, err)
	must(t, framework.WaitFor(ctx, 10*time.Second, "some writes", func() (bool, error) { return w.Acked() >= 10, nil }))
	mid := time.Now()
	must(t, framework.WaitFor(ctx, 10*time.Second, "more writes", func() (bool, error) { return w.Acked() >= 20, nil }))
	before, after := w.Latencies(time.Time{}, mid), w.Latencies(mid, time.Time{})
	rep, err := w.Stop(ctx)
	must(t, err)
	if rep.Latency.Writes != rep.Acked || rep.Latency.P50 <= 0 || rep.Latency.P50 > rep.Latency.P99 || rep.Latency.P99 > rep.Latency.Max {
		t.Fatalf("writer: %s; want every acknowledged write counted, with 0 < p50 <= p99 <= max", rep)
	}
	if before.Writes < 10 || after.Writes == 0 || before.Writes+after.Writes > rep.Acked {
		t.Fatalf("before %s: %s; after: %s; whole run: %s", mid.Format(time.StampMilli), before, after, rep.Latency)
	}
	// The run's first part starts where the run does, so every pause in it is one of the run's
	// (the writer writes one key at a time). A later part starts at mid, and its first pause
	// runs from mid to its first write's acknowledgement, which a write started before mid
	// and acknowledged after it splits in the whole run: that part's pause can be longer.
	if rep.Latency.LongestPause < before.LongestPause {
		t.Fatalf("the whole run's longest pause %s is shorter than its first part's (%s)", rep.Latency.LongestPause, before.LongestPause)
	}
}
