package leader

import (
	"context"
	"errors"
	"time"

	"github.com/go-logr/logr"

	"github.com/quorumguard/quorumguard/pkg/etcdmember"
)

// TokenStore hands out fencing tokens from the store that checks them: pkg/etcdmember's
// Client, over the etcd fence key. ClaimToken returns a token larger than every token it
// handed out before and than floor, and stores it, so that every older token is refused
// from then on.
type TokenStore interface {
	ClaimToken(ctx context.Context, floor uint64) (uint64, error)
}

// ErrNoTokenStore: a leadership without a store to claim its token from could not fence
// anyone out.
var ErrNoTokenStore = errors.New("leader election needs a fencing token store (etcd)")

// Corrupt says err is a stored token that cannot be read: waiting does not cure it, and
// guessing a value could hand out a token below one already used.
func Corrupt(err error) bool {
	var ce *etcdmember.CorruptFenceError
	var ee *CorruptEpochError
	return errors.As(err, &ce) || errors.As(err, &ee)
}

// Claim claims a token: claim is called until it succeeds, with a backoff from 500 ms
// doubling to 16 s while it fails for a reason waiting may cure (the store cannot be reached):
// a replica without a token does nothing. A corrupt stored token, ErrNotLeader (the
// leadership the token was for is gone) and the end of ctx are returned at once.
func Claim(ctx context.Context, claim func(context.Context) (uint64, error), log logr.Logger) (uint64, error) {
	backoff := time.Duration(0)
	for {
		token, err := claim(ctx)
		switch {
		case err == nil:
			return token, nil
		case Corrupt(err), errors.Is(err, ErrNotLeader), ctx.Err() != nil:
			return 0, err
		}
		backoff = min(max(2*backoff, 500*time.Millisecond), 16*time.Second)
		log.Error(err, "claim a fencing token: will retry; nothing is changed until one is claimed", "after", backoff)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(backoff):
		}
	}
}

// FromStore is the claim of a new token above floor from store.
func FromStore(store TokenStore, floor uint64) func(context.Context) (uint64, error) {
	return func(ctx context.Context) (uint64, error) {
		if store == nil {
			return 0, ErrNoTokenStore
		}
		return store.ClaimToken(ctx, floor)
	}
}
