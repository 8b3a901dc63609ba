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

// TestClaimToken: each claim stores and returns a token above both what is stored and the
// floor, so a claimed token fences every older one at once.
func TestClaimToken(t *testing.T) {
	ctx := t.Context()
	cl := newCluster(t, ctx, "a", "b", "c")
	for _, step := range []struct {
		name  string
		floor uint64
		want  uint64
	}{
		{name: "the first claim on an empty key is 1", want: 1},
		{name: "the next claim is one more", want: 2},
		{name: "a higher floor is jumped over", floor: 10, want: 11},
		{name: "a lower floor changes nothing", floor: 4, want: 12},
	} {
		t.Run(step.name, func(t *testing.T) {
			var got uint64
			if err := retryTransient(t, ctx, func() error {
				var err error
				got, err = cl.client.ClaimToken(ctx, step.floor)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if got != step.want {
				t.Fatalf("ClaimToken(%d) = %d, want %d", step.floor, got, step.want)
			}
			if stored, err := cl.client.FenceToken(ctx); err != nil || stored != got {
				t.Fatalf("stored token %d (%v), want the claimed %d", stored, err, got)
			}
			var fe *FencedError
			if err := cl.client.Fence(ctx, got-1); !errors.As(err, &fe) {
				t.Fatalf("the token before the claim must be refused at once, got %v", err)
			}
		})
	}

	t.Run("concurrent claims never hand out the same token", func(t *testing.T) {
		const claimers, each = 6, 5
		got := make(chan uint64, claimers*each)
		errs := make(chan error, claimers)
		for range claimers {
			go func() {
				for range each {
					tok, err := cl.client.ClaimToken(ctx, 0)
					if err != nil {
						errs <- err
						return
					}
					got <- tok
				}
				errs <- nil
			}()
		}
		for range claimers {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		close(got)
		seen := map[uint64]bool{}
		var most uint64
		for tok := range got {
			if seen[tok] {
				t.Fatalf("token %d handed out twice", tok)
			}
			seen[tok], most = true, max(most, tok)
		}
		if stored, err := cl.client.FenceToken(ctx); err != nil || stored != most {
			t.Fatalf("stored %d (%v), want the largest claimed %d", stored, err, most)
		}
	})

	t.Run("a value that is not a token is an error naming it, never 0", func(t *testing.T) {
		if _, err := cl.raw.Put(ctx, DefaultFenceKey, "not-a-token"); err != nil {
			t.Fatal(err)
		}
		tok, err := cl.client.ClaimToken(ctx, 0)
		var ce *CorruptFenceError
		if !errors.As(err, &ce) || ce.Key != DefaultFenceKey || ce.Value != "not-a-token" {
			t.Fatalf("ClaimToken = %d, %v; want a *CorruptFenceError naming %s and its value", tok, err, DefaultFenceKey)
		}
		if resp, err := cl.raw.Get(ctx, DefaultFenceKey); err != nil || string(resp.Kvs[0].Value) != "not-a-token" {
			t.Fatalf("the corrupt value must be left for a person to look at: %v", err)
		}
	})
}
