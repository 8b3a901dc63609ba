package etcdmember

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/go-logr/logr/testr"

	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/framework/etcdnet"
)

// raiseAlarm activates alarm for member id through etcd's own maintenance API, as etcd's
// corruption check or its quota does.
func (c *testCluster) raiseAlarm(ctx context.Context, id uint64, alarm pb.AlarmType) {
	c.t.Helper()
	if _, err := pb.NewMaintenanceClient(c.raw.ActiveConnection()).Alarm(ctx,
		&pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: id, Alarm: alarm}); err != nil {
		c.t.Fatalf("activate %s for %x: %v", alarm, id, err)
	}
}

func (c *testCluster) disarm(ctx context.Context, id uint64, alarm pb.AlarmType) {
	c.t.Helper()
	if _, err := c.raw.AlarmDisarm(ctx, &clientv3.AlarmMember{MemberID: id, Alarm: alarm}); err != nil {
		c.t.Fatalf("disarm %s for %x: %v", alarm, id, err)
	}
}

func observedByID(t *testing.T, v *View, ctx context.Context) map[uint64]Observed {
	t.Helper()
	observed, err := v.Observe(ctx)
	if err != nil {
		t.Fatalf("observe: %v", err)
	}
	out := map[uint64]Observed{}
	for _, o := range observed {
		if o.AlarmsUnread != "" {
			t.Fatalf("member %s: alarms unread: %s", o.Member, o.AlarmsUnread)
		}
		out[o.ID] = o
	}
	return out
}

func TestAlarms(t *testing.T) {
	ctx := t.Context()
	cl := newCluster(t, ctx, "a", "b", "c")
	ca, cert, key := cl.net.ClientFiles()
	v := NewView(ViewConfig{Given: cl.client.Endpoints(), Files: TLSFiles{CA: ca, Cert: cert, Key: key},
		Client: Config{ProbeTimeout: testProbeTimeout, CallTimeout: testCallTimeout}, Log: testr.New(t)})
	t.Cleanup(v.Close)
	cl.settle(ctx)
	a, b, c := cl.id("a"), cl.id("b"), cl.id("c")
	ip, err := cl.net.AllocateIP()
	if err != nil {
		t.Fatal(err)
	}
	peerURL := "https://" + net.JoinHostPort(ip.String(), fmt.Sprint(etcdnet.PeerPort))
	listed := func() int {
		t.Helper()
		ms, err := cl.client.Members(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(ms)
	}

	t.Run("a CORRUPT member is unhealthy and holds every membership change", func(t *testing.T) {
		cl.raiseAlarm(ctx, b, pb.AlarmType_CORRUPT)
		obs := observedByID(t, v, ctx)
		if got := obs[b]; got.Healthy || !slices.Equal(got.Alarms, []string{quorum.AlarmCorrupt}) {
			t.Fatalf("b: healthy %v, alarms %v; want unhealthy with CORRUPT", got.Healthy, got.Alarms)
		}
		if got := obs[a]; !got.Healthy || len(got.Alarms) > 0 {
			t.Fatalf("a: healthy %v, alarms %v; want healthy without alarms", got.Healthy, got.Alarms)
		}
		var members []Member
		for _, o := range obs {
			members = append(members, o.Member)
		}
		for _, ch := range []Change{{Kind: ChangeAddLearner}, {Kind: ChangeRemove, MemberID: c}, {Kind: ChangeRemove, MemberID: b}} {
			var ue *UnsafeChangeError
			if err := CheckChange(members, ch); !errors.As(err, &ue) || !strings.Contains(ue.Reason, "CORRUPT") {
				t.Errorf("%s: got %v, want a refusal naming the CORRUPT alarm", ch, err)
			}
		}
		if _, err := cl.client.AddLearner(ctx, 1, peerURL); err == nil {
			t.Fatal("a learner was added while a CORRUPT alarm is active")
		} else {
			t.Logf("add learner refused: %v", err)
		}
		if n := listed(); n != 3 {
			t.Fatalf("%d members listed, want the 3 there were", n)
		}
		cl.disarm(ctx, b, pb.AlarmType_CORRUPT)
		if got := observedByID(t, v, ctx)[b]; !got.Healthy || len(got.Alarms) > 0 {
			t.Fatalf("b after disarm: healthy %v, alarms %v", got.Healthy, got.Alarms)
		}
		if _, err := cl.client.AddLearner(ctx, 1, peerURL); err != nil {
			t.Fatalf("add learner once the alarm is disarmed: %v", err)
		}
	})

	t.Run("a NOSPACE member is unhealthy, and etcd refuses the fence while it lasts", func(t *testing.T) {
		cl.raiseAlarm(ctx, c, pb.AlarmType_NOSPACE)
		t.Cleanup(func() { cl.disarm(context.WithoutCancel(ctx), c, pb.AlarmType_NOSPACE) })
		obs := observedByID(t, v, ctx)
		if got := obs[c]; got.Healthy || !slices.Equal(got.Alarms, []string{quorum.AlarmNoSpace}) {
			t.Fatalf("c: healthy %v, alarms %v; want unhealthy with NOSPACE", got.Healthy, got.Alarms)
		}
		var members []Member
		for _, o := range obs {
			members = append(members, o.Member)
		}
		if got := Count(members); got.Healthy != 2 {
			t.Errorf("counts %s, want 2 healthy", got)
		}
		err := cl.client.Fence(ctx, 2)
		if err == nil || !strings.Contains(err.Error(), "database space exceeded") {
			t.Fatalf("fence with NOSPACE active: got %v, want etcd's refusal", err)
		}
	})
}
