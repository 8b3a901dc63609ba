package e2e

import (
	"context"

	"github.com/quorumguard/quorumguard/test/framework"
)

// Learners counts the learners in the cluster's member list.
func Learners(ctx context.Context, c *framework.Cluster) (int, error) {
	list, err := memberList(ctx, c)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range list {
		if m.IsLearner {
			n++
		}
	}
	return n, nil
}
