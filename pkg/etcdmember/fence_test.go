package etcdmember

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func TestTokenEncodingOrdersNumerically(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	pairs := [][2]uint64{{0, 1}, {9, 10}, {99, 100}, {math.MaxUint64 - 1, math.MaxUint64}, {0, math.MaxUint64}}
	for range 1000 {
		pairs = append(pairs, [2]uint64{r.Uint64() >> r.IntN(64), r.Uint64() >> r.IntN(64)})
	}
	for _, p := range pairs {
		a, b := encodeToken(p[0]), encodeToken(p[1])
		if (a < b) != (p[0] < p[1]) || (a == b) != (p[0] == p[1]) {
			t.Fatalf("encodings %q and %q do not order like %d and %d", a, b, p[0], p[1])
		}
		if got, ok := decodeToken(a); !ok || got != p[0] {
			t.Fatalf("decode(%q) = %d, %v; want %d", a, got, ok, p[0])
		}
	}
}

// TestFenceRefusesStaleTokens: once token 10 is stored, token 9 is refused, and a change
// offered with it does not happen.
func TestFenceRefusesStaleTokens(t *testing.T) {
	ctx := t.Context()
	cl := newCluster(t, ctx, "a", "b", "c")
	fenced := func(t *testing.T, err error, stored, offered uint64) {
		t.Helper()
		var fe *FencedError
		if !errors.As(err, &fe) || fe.Stored != stored || fe.Offered != offered {
			t.Fatalf("got %v, want a *FencedError with stored %d, offered %d", err, stored, offered)
		}
	}

	for _, step := range []struct {
		name  string
		token uint64
		// stored is the token a refusal reports; 0 when the token passes.
		stored uint64
	}{
		{name: "the first token is stored", token: 10},
		{name: "the same token passes again", token: 10},
		{name: "a smaller token is refused, though it sorts after as plain text", token: 9, stored: 10},
		{name: "a larger token passes", token: 11},
		{name: "the previous token is now refused", token: 10, stored: 11},
	} {
		t.Run(step.name, func(t *testing.T) {
			err := retryTransient(t, ctx, func() error { return cl.client.Fence(ctx, step.token) })
			if step.stored != 0 {
				fenced(t, err, step.stored, step.token)
				return
			}
			if err != nil {
				t.Fatalf("Fence(%d) = %v", step.token, err)
			}
			if got, err := cl.client.FenceToken(ctx); err != nil || got != step.token {
				t.Fatalf("FenceToken = %d, %v; want %d", got, err, step.token)
			}
		})
	}

	const stale = 5
	before, hs, err := cl.client.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lead := leaderOf(hs)
	var follower uint64
	for _, m := range before {
		if m.ID != lead {
			follower = m.ID
		}
	}
	t.Run("a stale add does not add", func(t *testing.T) {
		ip, err := cl.net.AllocateIP()
		if err != nil {
			t.Fatal(err)
		}
		fenced(t, retryTransient(t, ctx, func() error {
			_, err := cl.client.AddLearner(ctx, stale, "https://"+ip.String()+":2380")
			return err
		}), 11, stale)
	})
	t.Run("a stale remove does not remove", func(t *testing.T) {
		fenced(t, retryTransient(t, ctx, func() error { return cl.client.Remove(ctx, stale, follower) }), 11, stale)
	})
	t.Run("a stale leadership move does not move", func(t *testing.T) {
		fenced(t, retryTransient(t, ctx, func() error { return cl.client.MoveLeader(ctx, stale, follower) }), 11, stale)
	})
	after, hs, err := cl.client.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) || Count(after).Learners != 0 || leaderOf(hs) != lead {
		t.Fatalf("after refused changes: members %s, leader %x; want %s, leader %x", names(after), leaderOf(hs), names(before), lead)
	}
}
