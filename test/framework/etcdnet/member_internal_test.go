package etcdnet

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
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
	// Straight to the member's own listener, past the proxy, which is still open too, and on a
	// bare gRPC connection: the etcd client retries Unavailable until its deadline, which
	// would hide the answer this test is about.
	conn, err := grpc.NewClient("passthrough:///"+net.JoinHostPort(m.IP.String(), fmt.Sprint(memberClientPort)),
		grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mc := pb.NewMaintenanceClient(conn)
	for range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		_, err = mc.Status(ctx, &pb.StatusRequest{}, grpc.WaitForReady(true))
		cancel()
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("status of a stopped member: want Unavailable, got %v", err)
		}
		if !strings.Contains(status.Convert(err).Message(), "has stopped") {
			t.Fatalf("status of a stopped member: want the guard's answer, got %v", err)
		}
	}
}
