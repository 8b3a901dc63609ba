package etcdmember

import "context"

// RemoveMember removes a member as Client.RemoveMember does: when it leads, leadership is
// handed to the most up-to-date healthy voting member first, and the fence is passed again
// before the removal. The endpoints then follow the membership, as after Remove.
// `quorumguard release` removes through it; the controller moves leadership as a step of
// its own (quorum.MoveLeader) and removes with Remove.
func (v *View) RemoveMember(ctx context.Context, token, id uint64, still Guard) error {
	v.count("remove")
	cli, err := v.client(ctx)
	if err != nil {
		return err
	}
	err = cli.RemoveMember(ctx, token, id, still)
	if err == nil {
		v.follow(ctx, cli, id)
	}
	return err
}
