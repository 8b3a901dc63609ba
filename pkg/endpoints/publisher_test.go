package endpoints_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/endpoints"
	"github.com/quorumguard/quorumguard/test/framework"
)

var cp *framework.ControlPlane

func TestMain(m *testing.M) { framework.Main(m, framework.ControlPlaneOptions{}, &cp) }

// TestRecreatedConfigMapReleasesNothing, against a real apiserver: the consumer rolled out
// the list with member a and no later one. The list without a is published, the ConfigMap is
// deleted and quorumguard recreates it, so its generation starts again at 1, the very
// generation the consumer once rolled out. Neither that number written again nor the old
// acknowledgement carried over releases a; the consumer's acknowledgement of the list now
// published does.
func TestRecreatedConfigMapReleasesNothing(t *testing.T) {
	ctx := t.Context()
	const name, consumer = "endpoints-recreated", "kas"
	a := endpoints.Member{ID: 0xa, ClientURLs: []string{"https://10.0.0.1:2379"}, Voting: true, Leaving: true}
	with := []string{"https://10.0.0.1:2379", "https://10.0.0.2:2379", "https://10.0.0.3:2379"}
	without := []string{"https://10.0.0.2:2379", "https://10.0.0.3:2379", "https://10.0.0.4:2379"}
	pub := &endpoints.Publisher{Client: cp.Client, Namespace: framework.MachineNamespace, Name: name, Consumers: []string{consumer}}
	key := client.ObjectKey{Namespace: framework.MachineNamespace, Name: name}
	sync := func(want []string) endpoints.Published {
		t.Helper()
		p, err := pub.Sync(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	// hold reads the ConfigMap as the controller and the release command do.
	hold := func() string {
		t.Helper()
		p, err := endpoints.Read(ctx, cp.Client, framework.MachineNamespace, name)
		if err != nil {
			t.Fatal(err)
		}
		return endpoints.Holds([]endpoints.Member{a}, p, pub.Consumers)[a.ID]
	}
	setAck := func(v string) {
		t.Helper()
		var cm corev1.ConfigMap
		if err := cp.Client.Get(ctx, key, &cm); err != nil {
			t.Fatal(err)
		}
		metav1.SetMetaDataAnnotation(&cm.ObjectMeta, endpoints.AckPrefix+consumer, v)
		if err := cp.Client.Update(ctx, &cm); err != nil {
			t.Fatal(err)
		}
	}
	expectHeld := func(step, why string) {
		t.Helper()
		if got := hold(); !strings.Contains(got, why) {
			t.Fatalf("%s: hold on a = %q, want it held: %q", step, got, why)
		}
	}

	if p := sync(with); p.Generation != 1 {
		t.Fatalf("first publication at generation %d", p.Generation)
	}
	if err := endpoints.Acknowledge(ctx, cp.Client, framework.MachineNamespace, name, consumer, with); err != nil {
		t.Fatal(err)
	}
	var old corev1.ConfigMap
	if err := cp.Client.Get(ctx, key, &old); err != nil {
		t.Fatal(err)
	}
	if p := sync(without); p.Generation != 2 {
		t.Fatalf("second publication at generation %d", p.Generation)
	}
	expectHeld("the consumer runs the list with a", "kas has acknowledged another list, "+endpoints.Short(endpoints.Digest(with)))

	if err := cp.Client.Delete(ctx, &old); err != nil {
		t.Fatal(err)
	}
	p := sync(without)
	var cm corev1.ConfigMap
	if err := cp.Client.Get(ctx, key, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.UID == old.UID || p.Generation != 1 || cm.Data[endpoints.DataDigest] != endpoints.Digest(without) {
		t.Fatalf("recreated ConfigMap: uid %s (old %s), generation %d, digest %q; want a new object at generation 1 with the digest of %v",
			cm.UID, old.UID, p.Generation, cm.Data[endpoints.DataDigest], without)
	}
	expectHeld("recreated, nothing acknowledged", "kas has acknowledged no list")

	// The consumer writes again, from memory, the generation it rolled out: 1, which the
	// restarted counter has reached.
	setAck("1")
	expectHeld("the consumer's old generation written again", `kas has acknowledged "1", which is not a list digest`)

	// The old object's acknowledgement carried over.
	setAck(old.Annotations[endpoints.AckPrefix+consumer])
	expectHeld("the old acknowledgement carried over", "kas has acknowledged another list")

	if err := endpoints.Acknowledge(ctx, cp.Client, framework.MachineNamespace, name, consumer, without); err != nil {
		t.Fatal(err)
	}
	if got := hold(); got != "" {
		t.Fatalf("the consumer acknowledged the list without a: still held, %q", got)
	}
}

// TestUpgradeFromGenerationAcks: a ConfigMap written before digests, acknowledged by
// generation number. The next Sync adds the digest without a new generation, and the numeric
// acknowledgement, though it equals the generation, counts as none.
func TestUpgradeFromGenerationAcks(t *testing.T) {
	ctx := t.Context()
	const name = "endpoints-before-digests"
	list := []string{"https://10.0.0.2:2379", "https://10.0.0.3:2379"}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: framework.MachineNamespace, Name: name, Annotations: map[string]string{endpoints.AckPrefix + "kas": "3"}},
		Data:       map[string]string{endpoints.DataEndpoints: strings.Join(list, ","), endpoints.DataGeneration: "3"},
	}
	if err := cp.Client.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	pub := &endpoints.Publisher{Client: cp.Client, Namespace: framework.MachineNamespace, Name: name, Consumers: []string{"kas"}}
	p, err := pub.Sync(ctx, list)
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(cm), cm); err != nil {
		t.Fatal(err)
	}
	if p.Generation != 3 || cm.Data[endpoints.DataGeneration] != "3" || cm.Data[endpoints.DataDigest] != endpoints.Digest(list) {
		t.Fatalf("after Sync: generation %d, data %v; want generation 3 kept and digest %s added", p.Generation, cm.Data, endpoints.Digest(list))
	}
	a := endpoints.Member{ID: 0xa, ClientURLs: []string{"https://10.0.0.1:2379"}}
	if got := endpoints.Holds([]endpoints.Member{a}, p, pub.Consumers)[a.ID]; !strings.Contains(got, `kas has acknowledged "3", which is not a list digest`) {
		t.Fatalf("hold on a = %q, want the numeric acknowledgement counted as none", got)
	}
}
