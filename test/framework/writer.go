package framework

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// WriterOptions shape a Writer.
type WriterOptions struct {
	Client *clientv3.Client
	// Prefix of the keys written; "/quorumguard-writer/" when empty.
	Prefix string
	// Interval between writes; 20 ms when zero.
	Interval time.Duration
	// Endpoints, when set, is asked every second for the current client URLs so the writer
	// follows a membership that is being replaced under it.
	Endpoints func() []string
	// CloseClient makes Stop close Client: it was made for this writer alone.
	CloseClient bool
}

// Writer writes sequential keys at a steady rate and remembers every acknowledged write, with
// when it started and how long it took. It is the data-loss check of every end-to-end test, and
// its latencies are the cost a replacement puts on the cluster's clients.
type Writer struct {
	opts    WriterOptions
	cancel  context.CancelFunc
	done    chan struct{}
	started time.Time

	mu           sync.Mutex
	acked        []int
	timed        []TimedWrite
	failed       int
	lastOK       time.Time
	longestPause time.Duration
	stopped      time.Time
}

// WriterReport sums up a run.
type WriterReport struct {
	Acked        int
	Failed       int
	Lost         []string
	LongestPause time.Duration
	// Latency sums up every acknowledged write from the writer's start to its stop.
	Latency LatencySummary
}

func (r WriterReport) String() string {
	return fmt.Sprintf("%d acknowledged writes, %d failed attempts, %d lost, longest pause %s; latency p50 %s, p99 %s, max %s",
		r.Acked, r.Failed, len(r.Lost), r.LongestPause.Round(time.Millisecond),
		roundLatency(r.Latency.P50), roundLatency(r.Latency.P99), roundLatency(r.Latency.Max))
}

// TimedWrite is one acknowledged write: when its Put was sent and how long etcd took to
// acknowledge it.
type TimedWrite struct {
	Start   time.Time
	Latency time.Duration
}

// Done is when the write was acknowledged.
func (w TimedWrite) Done() time.Time { return w.Start.Add(w.Latency) }

// LatencySummary sums up the acknowledged writes started in a window.
type LatencySummary struct {
	Writes        int
	P50, P99, Max time.Duration
	// LongestPause is the longest time in the window in which no acknowledged write
	// completed: between consecutive completions, and from the window's bounds (when set) to
	// the first and from the last. A stalled writer shows here even when it completed nothing
	// in the window.
	LongestPause time.Duration
}

func (s LatencySummary) String() string {
	return fmt.Sprintf("%d writes, p50 %s, p99 %s, max %s, longest pause %s",
		s.Writes, roundLatency(s.P50), roundLatency(s.P99), roundLatency(s.Max), roundLatency(s.LongestPause))
}

// MaxLatencyRise is what a replacement promises the cluster's clients: its p99 write latency
// is at most this many times the p99 before it, on the same run.
const MaxLatencyRise = 2

// RiseOver is how many times before's p99 write latency s's p99 is, or 0 when either window
// has no write to compare.
func (s LatencySummary) RiseOver(before LatencySummary) float64 {
	if s.Writes == 0 || before.Writes == 0 || before.P99 <= 0 {
		return 0
	}
	return float64(s.P99) / float64(before.P99)
}

// roundLatency keeps a latency readable: to 0.1 ms below 10 ms, to the millisecond above.
func roundLatency(d time.Duration) time.Duration {
	if d < 10*time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

// SummarizeLatencies sums up the writes that started in [from, to) (a zero bound is none).
// Percentiles are by nearest rank over the sorted latencies: the p-th is the ceil(p/100*n)-th
// smallest, so of 100 writes p99 is the 99th and of 10 it is the 10th, the maximum. The pause
// is measured on completions in the order they came: with writes started in [0, 100 ms) done
// at 10, 30 and 90 ms, the pauses are 10 (from the window's start), 20, 60 and 10 (to its end)
// ms, and the longest is 60 ms; with none, the pause is the whole window.
func SummarizeLatencies(writes []TimedWrite, from, to time.Time) LatencySummary {
	var lat []time.Duration
	var done []time.Time
	for _, w := range writes {
		if (!from.IsZero() && w.Start.Before(from)) || (!to.IsZero() && !w.Start.Before(to)) {
			continue
		}
		lat = append(lat, w.Latency)
		done = append(done, w.Done())
	}
	s := LatencySummary{Writes: len(lat)}
	slices.SortFunc(done, func(a, b time.Time) int { return a.Compare(b) })
	last := from
	for _, d := range done {
		if !last.IsZero() && d.Sub(last) > s.LongestPause {
			s.LongestPause = d.Sub(last)
		}
		last = d
	}
	if !to.IsZero() && !last.IsZero() && to.Sub(last) > s.LongestPause {
		s.LongestPause = to.Sub(last)
	}
	if len(lat) == 0 {
		return s
	}
	slices.Sort(lat)
	rank := func(p float64) time.Duration {
		return lat[max(int(math.Ceil(p/100*float64(len(lat))))-1, 0)]
	}
	s.P50, s.P99, s.Max = rank(50), rank(99), lat[len(lat)-1]
	return s
}

// StartWriter starts writing until Stop.
func StartWriter(ctx context.Context, opts WriterOptions) *Writer {
	if opts.Prefix == "" {
		opts.Prefix = "/quorumguard-writer/"
	}
	if opts.Interval == 0 {
		opts.Interval = 20 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(ctx)
	now := time.Now()
	w := &Writer{opts: opts, cancel: cancel, done: make(chan struct{}), started: now, lastOK: now}
	go w.run(ctx)
	return w
}

func (w *Writer) key(i int) string { return fmt.Sprintf("%s%08d", w.opts.Prefix, i) }

func (w *Writer) run(ctx context.Context) {
	defer close(w.done)
	tick := time.NewTicker(w.opts.Interval)
	defer tick.Stop()
	lastRefresh := time.Time{}
	for i := 0; ; {
		if w.opts.Endpoints != nil && time.Since(lastRefresh) > time.Second {
			if eps := w.opts.Endpoints(); len(eps) > 0 {
				w.opts.Client.SetEndpoints(eps...)
			}
			lastRefresh = time.Now()
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		sent := time.Now()
		_, err := w.opts.Client.Put(pctx, w.key(i), fmt.Sprint(i))
		cancel()
		now := time.Now()
		w.mu.Lock()
		if err == nil {
			w.acked = append(w.acked, i)
			w.timed = append(w.timed, TimedWrite{Start: sent, Latency: now.Sub(sent)})
			if p := now.Sub(w.lastOK); p > w.longestPause {
				w.longestPause = p
			}
			w.lastOK = now
			i++
		} else if ctx.Err() == nil {
			w.failed++
		}
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Client is the client the writer writes through.
func (w *Writer) Client() *clientv3.Client { return w.opts.Client }

// Acked is the number of acknowledged writes so far.
func (w *Writer) Acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// LongestPause is the longest time so far without a successful write.
func (w *Writer) LongestPause() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.longestPause
	if cur := time.Since(w.lastOK); cur > p {
		p = cur
	}
	return p
}

// Latencies sums up the acknowledged writes started in [from, to). A zero from is the writer's
// start; a zero to, or one later than now (or than Stop, once stopped), is now (or Stop), so
// a stall still under way counts in the pause.
func (w *Writer) Latencies(from, to time.Time) LatencySummary {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.latencies(from, to)
}

// latencies is Latencies with w.mu held.
func (w *Writer) latencies(from, to time.Time) LatencySummary {
	end := w.stopped
	if end.IsZero() {
		end = time.Now()
	}
	if to.IsZero() || to.After(end) {
		to = end
	}
	if from.IsZero() {
		from = w.started
	}
	return SummarizeLatencies(w.timed, from, to)
}

// Stop stops writing and checks, through c (or the writer's own client when nil), that every
// acknowledged write is readable with its value.
func (w *Writer) Stop(ctx context.Context) (WriterReport, error) {
	w.cancel()
	<-w.done
	if w.opts.CloseClient {
		defer w.opts.Client.Close()
	}
	w.mu.Lock()
	if w.stopped.IsZero() {
		w.stopped = time.Now()
	}
	acked := append([]int(nil), w.acked...)
	rep := WriterReport{Acked: len(acked), Failed: w.failed, LongestPause: w.longestPause, Latency: w.latencies(time.Time{}, time.Time{})}
	w.mu.Unlock()
	if w.opts.Endpoints != nil {
		if eps := w.opts.Endpoints(); len(eps) > 0 {
			w.opts.Client.SetEndpoints(eps...)
		}
	}
	var resp *clientv3.GetResponse
	var err error
	for attempt := 0; attempt < 10; attempt++ {
		gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err = w.opts.Client.Get(gctx, w.opts.Prefix, clientv3.WithPrefix())
		cancel()
		if err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return rep, fmt.Errorf("read back the writer's keys: %w", err)
	}
	have := make(map[string]string, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		have[string(kv.Key)] = string(kv.Value)
	}
	for _, i := range acked {
		if v, ok := have[w.key(i)]; !ok || v != fmt.Sprint(i) {
			rep.Lost = append(rep.Lost, w.key(i))
		}
	}
	return rep, nil
}
