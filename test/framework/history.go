package framework

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// HistoryOptions shape a History.
type HistoryOptions struct {
	// Endpoints are the members to talk to, read before every operation; client i uses the
	// (i mod n)-th, so clients go through different members.
	Endpoints func() []string
	TLS       *tls.Config
	// Clients (4 when zero) run concurrently over Keys keys (3 when zero).
	Clients, Keys int
	// Serializable makes gets serializable (answered from the member's own state, possibly
	// stale): a deliberately wrong client, for showing that the check catches stale reads.
	Serializable bool
	// Seed makes the operation mix repeatable.
	Seed uint64
}

// Op is one recorded operation.
type Op struct {
	Client int    `json:"client"`
	Kind   string `json:"kind"` // put, get, delete, cas
	Key    string `json:"key"`
	// Value is what a put or cas writes; Expect what a cas compares with ("" is absent).
	Value  string `json:"value,omitempty"`
	Expect string `json:"expect,omitempty"`
	// Got is what a get read ("" is absent); OK whether a cas succeeded.
	Got string `json:"got,omitempty"`
	OK  bool   `json:"ok,omitempty"`
	// Unknown: the call failed or timed out, so it may or may not have taken effect.
	Unknown bool  `json:"unknown,omitempty"`
	Call    int64 `json:"call"`
	Return  int64 `json:"return"`
}

// History runs concurrent clients doing puts, linearizable gets, read-modify-write
// transactions and deletes on a few keys, and records every call with its start and end,
// for a linearizability check (porcupine, as etcd's own robustness tests use).
type History struct {
	opts    HistoryOptions
	start   time.Time
	mu      sync.Mutex
	ops     []Op
	clients *endpointClients
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	// prefix is this history's own: a cluster keeps the keys an earlier history wrote, and
	// the model, which starts from absent keys, would take their values for values nobody
	// wrote.
	prefix string
}

const historyPrefix = "/quorumguard-history/"

var historySeq atomic.Uint64

// StartHistory starts the clients.
func StartHistory(ctx context.Context, opts HistoryOptions) *History {
	if opts.Clients == 0 {
		opts.Clients = 4
	}
	if opts.Keys == 0 {
		opts.Keys = 3
	}
	ctx, cancel := context.WithCancel(ctx)
	h := &History{opts: opts, start: time.Now(), clients: newEndpointClients(opts.TLS), cancel: cancel,
		prefix: fmt.Sprintf("%s%d-%d/", historyPrefix, time.Now().UnixNano(), historySeq.Add(1))}
	for i := range opts.Clients {
		h.wg.Add(1)
		go h.client(ctx, i)
	}
	return h
}

func (h *History) now() int64 { return int64(time.Since(h.start)) }

// Now is the history's clock, the one Op.Call and Op.Return are read from.
func (h *History) Now() int64 { return h.now() }

// Ops is a copy of the operations recorded so far.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Op(nil), h.ops...)
}

// failedCallPause is how long a history client waits after a call failed.
const failedCallPause = 50 * time.Millisecond

func (h *History) client(ctx context.Context, id int) {
	defer h.wg.Done()
	rng := rand.New(rand.NewPCG(h.opts.Seed, uint64(id)))
	last := map[string]string{} // the last value this client saw or wrote, per key, for its cas
	for n := 0; ctx.Err() == nil; n++ {
		eps := h.opts.Endpoints()
		if len(eps) == 0 {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		cli, err := h.clients.get(eps[id%len(eps)])
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		key := h.prefix + fmt.Sprint(rng.IntN(h.opts.Keys))
		op := Op{Client: id, Key: key}
		value := fmt.Sprintf("c%d-%d", id, n)
		octx, cancel := context.WithTimeout(ctx, time.Second)
		op.Call = h.now()
		switch r := rng.IntN(10); {
		case r < 3:
			op.Kind, op.Value = "put", value
			_, err = cli.Put(octx, key, value)
		case r < 7:
			op.Kind = "get"
			var opts []clientv3.OpOption
			if h.opts.Serializable {
				opts = append(opts, clientv3.WithSerializable())
			}
			var resp *clientv3.GetResponse
			if resp, err = cli.Get(octx, key, opts...); err == nil && len(resp.Kvs) > 0 {
				op.Got = string(resp.Kvs[0].Value)
			}
		case r < 9:
			op.Kind, op.Value, op.Expect = "cas", value, last[key]
			cmp := clientv3.Compare(clientv3.Value(key), "=", op.Expect)
			if op.Expect == "" {
				cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
			}
			var resp *clientv3.TxnResponse
			if resp, err = cli.Txn(octx).If(cmp).Then(clientv3.OpPut(key, value)).Commit(); err == nil {
				op.OK = resp.Succeeded
			}
		default:
			op.Kind = "delete"
			_, err = cli.Delete(octx, key)
		}
		op.Return = h.now()
		cancel()
		if err != nil && ctx.Err() == nil {
			// A failed call is not tried again at once: during a fault every call fails, and
			// each failed write joins the history with an unknown outcome, which the check
			// must place every way it could have gone (one run recorded 10,621 of them in 50 s
			// and its check ran out of time).
			time.Sleep(failedCallPause)
		}
		if err != nil && rpctypes.ErrorDesc(err) == rpctypes.ErrorDesc(rpctypes.ErrGRPCNotSupportedForLearner) {
			continue // a learner refuses before anything is proposed: certainly no effect
		}
		switch {
		case ctx.Err() != nil && err != nil:
			// Stopped mid-call: a write may still land; record it as unknown.
			op.Unknown = op.Kind != "get"
		case err != nil:
			op.Unknown = true
		}
		if op.Unknown {
			op.Return = math.MaxInt64
		}
		if err != nil && op.Kind == "get" {
			continue // a failed read has no effect and shows nothing
		}
		switch {
		case op.Kind == "get":
			last[key] = op.Got
		case op.Kind == "put" && !op.Unknown, op.Kind == "cas" && op.OK:
			last[key] = value
		case op.Kind == "delete" && !op.Unknown:
			last[key] = ""
		}
		h.mu.Lock()
		h.ops = append(h.ops, op)
		h.mu.Unlock()
	}
}

// LinearizabilityReport is what Stop found.
type LinearizabilityReport struct {
	Operations int
	// Unknown operations failed and may or may not have taken effect.
	Unknown int
	// Result is porcupine's: Ok, Illegal or Unknown (the check ran out of time).
	Result porcupine.CheckResult
	// Dir holds history.json and the visualisation (history.html) of an Illegal history.
	Dir string
	// Took is how long the check ran.
	Took time.Duration
}

func (r LinearizabilityReport) String() string {
	s := fmt.Sprintf("%d operations (%d with unknown outcome) checked in %s: %s", r.Operations, r.Unknown, r.Took.Round(time.Millisecond), r.Result)
	if r.Dir != "" {
		s += "; history and visualisation in " + r.Dir
	}
	return s
}

// Stop stops the clients and checks the history. A history that is not linearizable is
// written, with porcupine's visualisation, under a new directory in dir (the system's
// temporary directory when empty), named in the report and kept.
func (h *History) Stop(dir string, timeout time.Duration) (LinearizabilityReport, error) {
	h.cancel()
	h.wg.Wait()
	h.clients.close()
	h.mu.Lock()
	ops := h.ops
	h.mu.Unlock()
	return CheckLinearizable(ops, dir, timeout)
}

// CheckLinearizable checks a recorded history against a key-value model, key by key.
func CheckLinearizable(ops []Op, dir string, timeout time.Duration) (LinearizabilityReport, error) {
	rep := LinearizabilityReport{Operations: len(ops)}
	// Every value is written once, so a write whose outcome is unknown and whose value no
	// read or compare-and-swap ever saw can be placed after everything else, where it changes
	// nothing: it is left out, which keeps the search small without changing the verdict.
	seen := map[string]bool{}
	for _, op := range ops {
		switch {
		case op.Kind == "get":
			seen[op.Got] = true
		case op.Kind == "cas" && op.OK:
			seen[op.Expect] = true
		}
	}
	history := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		if op.Unknown {
			rep.Unknown++
			if (op.Kind == "put" || op.Kind == "cas") && !seen[op.Value] {
				continue
			}
		}
		history = append(history, porcupine.Operation{ClientId: op.Client, Input: op, Output: op, Call: op.Call, Return: op.Return})
	}
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(kvModel, history, timeout)
	rep.Result, rep.Took = res, time.Since(start)
	if res != porcupine.Illegal {
		return rep, nil
	}
	d, err := os.MkdirTemp(dir, "quorumguard-history-")
	if err != nil {
		return rep, err
	}
	rep.Dir = d
	raw, err := json.MarshalIndent(ops, "", " ")
	if err != nil {
		return rep, err
	}
	if err := os.WriteFile(filepath.Join(d, "history.json"), raw, 0o644); err != nil {
		return rep, err
	}
	return rep, porcupine.VisualizePath(kvModel, info, filepath.Join(d, "history.html"))
}

// kvModel is a register per key: "" is absent.
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, o := range history {
			k := o.Input.(Op).Key
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], o)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, len(keys))
		for i, k := range keys {
			out[i] = by[k]
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, _ any) (bool, any) {
		st, op := state.(string), input.(Op)
		switch op.Kind {
		case "put":
			return true, op.Value
		case "delete":
			return true, ""
		case "get":
			return op.Got == st, st
		case "cas":
			match := st == op.Expect
			if op.Unknown {
				if match {
					return true, op.Value
				}
				return true, st
			}
			if !op.OK {
				// A failed compare is not held against the state: it would be the only
				// thing a left-out unknown write could explain (see CheckLinearizable).
				return true, st
			}
			if !match {
				return false, st
			}
			return true, op.Value
		}
		return false, st
	},
	DescribeOperation: func(input, _ any) string {
		op := input.(Op)
		switch op.Kind {
		case "get":
			return fmt.Sprintf("get(%s) -> %q", op.Key, op.Got)
		case "cas":
			out := fmt.Sprint(op.OK)
			if op.Unknown {
				out = "unknown"
			}
			return fmt.Sprintf("cas(%s, %q -> %q) -> %s", op.Key, op.Expect, op.Value, out)
		case "put":
			return fmt.Sprintf("put(%s, %q)", op.Key, op.Value)
		}
		return fmt.Sprintf("%s(%s)", op.Kind, op.Key)
	},
}
