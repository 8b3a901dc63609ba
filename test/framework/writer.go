package framework

import (
	"context"
	"fmt"
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

// Writer writes sequential keys at a steady rate and remembers every acknowledged write. It
// is the data-loss check of every end-to-end test.
type Writer struct {
	opts   WriterOptions
	cancel context.CancelFunc
	done   chan struct{}

	mu           sync.Mutex
	acked        []int
	failed       int
	lastOK       time.Time
	longestPause time.Duration
}

// WriterReport sums up a run.
type WriterReport struct {
	Acked        int
	Failed       int
	Lost         []string
	LongestPause time.Duration
}

func (r WriterReport) String() string {
	return fmt.Sprintf("%d acknowledged writes, %d failed attempts, %d lost, longest pause %s",
		r.Acked, r.Failed, len(r.Lost), r.LongestPause.Round(time.Millisecond))
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
	w := &Writer{opts: opts, cancel: cancel, done: make(chan struct{}), lastOK: time.Now()}
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
		_, err := w.opts.Client.Put(pctx, w.key(i), fmt.Sprint(i))
		cancel()
		now := time.Now()
		w.mu.Lock()
		if err == nil {
			w.acked = append(w.acked, i)
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

// Stop stops writing and checks, through c (or the writer's own client when nil), that every
// acknowledged write is readable with its value.
func (w *Writer) Stop(ctx context.Context) (WriterReport, error) {
	w.cancel()
	<-w.done
	if w.opts.CloseClient {
		defer w.opts.Client.Close()
	}
	w.mu.Lock()
	acked := append([]int(nil), w.acked...)
	rep := WriterReport{Acked: len(acked), Failed: w.failed, LongestPause: w.longestPause}
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
