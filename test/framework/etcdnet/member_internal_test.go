package etcdnet

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A member's server can stop while its gRPC listener still runs: between a kill and the
// listener's close, or when etcd stops a member that learnt it was removed. A call that lands
// in that window must get Unavailable, not dereference the closed backend and take the
// whole test process down with it.
func TestStoppedMemberAnswersUnavailable(t *testing.T) {
	n, err := NewNetwork(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	ms, err := n.Bootstrap(t.Context(), "solo")
	if err != nil {
		t.Fatal(err)
	}
	m := ms[0]
	m.etcd.Server.HardStop()
	<-m.etcd.Server.StopNotify()

	tc, err := n.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	// Straight to the member's own listener, past the proxy, which is still open too.
	direct := urlFor(m.IP, memberClientPort)
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{direct}, TLS: tc, DialTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		_, err = c.Status(ctx, direct)
		cancel()
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("status of a stopped member: want Unavailable, got %v", err)
		}
	}
}
