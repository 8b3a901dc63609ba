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

// Claim claims a token from store, retrying with a backoff from 500 ms doubling to 16 s
// while the store cannot be reached: a replica without a token does nothing. It returns the
// token, a corrupt stored token's error at once, or the end of ctx.
func Claim(ctx context.Context, store TokenStore, floor uint64, log logr.Logger) (uint64, error) {
	if store == nil {
		return 0, ErrNoTokenStore
	}
	backoff := time.Duration(0)
	for {
		token, err := store.ClaimToken(ctx, floor)
		switch {
		case err == nil:
			return token, nil
		case Corrupt(err), ctx.Err() != nil:
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
