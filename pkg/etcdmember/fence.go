package etcdmember

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// tokenWidth digits hold any uint64, so that comparing two encoded tokens as bytes, as
// etcd compares values, gives the numeric order.
const tokenWidth = 20

func encodeToken(t uint64) string { return fmt.Sprintf("%0*d", tokenWidth, t) }

func decodeToken(s string) (uint64, bool) {
	if len(s) != tokenWidth {
		return 0, false
	}
	t, err := strconv.ParseUint(s, 10, 64)
	return t, err == nil
}

// Fence stores token under the fence key unless a larger token is stored there already, in
// one transaction:
//
//	if key exists and value > token: read it (refused)
//	else:                            put token
//
// A key that does not exist yet is written. Equal tokens pass, so one holder may fence
// before each of its changes. A refusal is a *FencedError. Every membership change this
// package makes fences first, so a paused controller whose token has been superseded
// changes nothing; a newer holder that fences after that check and before the change sees
// the change in the member list.
func (c *Client) Fence(ctx context.Context, token uint64) error {
	key, enc := c.cfg.FenceKey, encodeToken(token)
	var resp *clientv3.TxnResponse
	err, last := call(ctx, c.cfg.CallTimeout, func(ctx context.Context) error {
		var err error
		resp, err = c.etcd.Txn(ctx).If(
			clientv3.Compare(clientv3.CreateRevision(key), "!=", 0),
			clientv3.Compare(clientv3.Value(key), ">", enc),
		).Then(clientv3.OpGet(key)).Else(clientv3.OpPut(key, enc)).Commit()
		return err
	})
	if err != nil {
		return c.classify(ctx, Where{Op: "fence", Endpoint: c.where()}, err, last)
	}
	if !resp.Succeeded {
		return nil
	}
	fe := &FencedError{Offered: token}
	if rr := resp.Responses[0].GetResponseRange(); rr != nil && len(rr.Kvs) > 0 {
		v := string(rr.Kvs[0].Value)
		if t, ok := decodeToken(v); ok {
			fe.Stored = t
		} else {
			fe.Raw = v
		}
	}
	return fe
}

// FenceToken reads the stored token; 0 when none is stored.
func (c *Client) FenceToken(ctx context.Context) (uint64, error) {
	var resp *clientv3.GetResponse
	err, last := call(ctx, c.cfg.CallTimeout, func(ctx context.Context) error {
		var err error
		resp, err = c.etcd.Get(ctx, c.cfg.FenceKey)
		return err
	})
	if err != nil {
		return 0, c.classify(ctx, Where{Op: "read fence", Endpoint: c.where()}, err, last)
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	t, ok := decodeToken(string(resp.Kvs[0].Value))
	if !ok {
		return 0, &CallError{Where{Op: "read fence", Endpoint: c.where()}, fmt.Errorf("stored fence %q is not a token", resp.Kvs[0].Value)}
	}
	return t, nil
}

// CorruptFenceError: the fence key holds a value that is not a token. Nothing is claimed
// over it: reading it as 0 would let the count start again below tokens already handed out.
type CorruptFenceError struct {
	Key, Value string
}

func (e *CorruptFenceError) Error() string {
	return fmt.Sprintf("etcd fence key %s holds %q, which is not a fencing token; fix or delete it by hand once no quorumguard replica runs", e.Key, e.Value)
}

// claimAttempts bounds the compare-and-swap retries of one ClaimToken; each lost race means
// another claimer moved the key in between.
const claimAttempts = 20

// ClaimToken hands out a new fencing token and stores it under the fence key at once:
//
//	read the key (value v, mod revision r; v = 0 and r = 0 when absent)
//	new = max(v, floor) + 1
//	if the key's mod revision is still r: put new  (else read again)
//
// Storing it is what makes a new leadership fence out every older one from the moment it is
// elected, before it has changed anything. The token is larger than any token stored before
// and than floor (a token kept elsewhere, such as the leader-for-life epoch), so it never
// goes backwards. A value that is not a token is a *CorruptFenceError.
func (c *Client) ClaimToken(ctx context.Context, floor uint64) (uint64, error) {
	key := c.cfg.FenceKey
	w := Where{Op: "claim fence token", Endpoint: c.where()}
	for range claimAttempts {
		var resp *clientv3.GetResponse
		err, last := call(ctx, c.cfg.CallTimeout, func(ctx context.Context) error {
			var err error
			resp, err = c.etcd.Get(ctx, key)
			return err
		})
		if err != nil {
			return 0, c.classify(ctx, w, err, last)
		}
		var cur uint64
		var rev int64
		if len(resp.Kvs) > 0 {
			kv := resp.Kvs[0]
			t, ok := decodeToken(string(kv.Value))
			if !ok {
				return 0, &CorruptFenceError{Key: key, Value: string(kv.Value)}
			}
			cur, rev = t, kv.ModRevision
		}
		next := max(cur, floor) + 1
		if next == 0 {
			return 0, &CallError{w, fmt.Errorf("fence key %s: token space exhausted", key)}
		}
		var tresp *clientv3.TxnResponse
		err, last = call(ctx, c.cfg.CallTimeout, func(ctx context.Context) error {
			var err error
			tresp, err = c.etcd.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
				Then(clientv3.OpPut(key, encodeToken(next))).Commit()
			return err
		})
		if err != nil {
			return 0, c.classify(ctx, w, err, last)
		}
		if tresp.Succeeded {
			return next, nil
		}
	}
	return 0, &CallError{w, errors.New("the fence key kept changing under the claim")}
}
