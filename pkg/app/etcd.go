package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/masters"
)

var _ controlplane.Etcd = (*etcdmember.View)(nil)

// NewEtcdView checks the etcd client files and builds a view of etcd: the controller's, and
// `quorumguard status`'s. The control-plane Machines' addresses it falls back on are read
// from reader (the apiserver, not the cache: a token may be claimed before the cache has
// started, and a replica that does not lead has no member list to take endpoints from).
func NewEtcdView(o Options, reader client.Reader) (*etcdmember.View, error) {
	for flag, f := range map[string]string{"--etcd-ca-file": o.EtcdCA, "--etcd-cert-file": o.EtcdCert, "--etcd-key-file": o.EtcdKey} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
	}
	return etcdmember.NewView(etcdmember.ViewConfig{
		Given:  o.EtcdEndpoints,
		Files:  etcdmember.TLSFiles{CA: o.EtcdCA, Cert: o.EtcdCert, Key: o.EtcdKey},
		Log:    ctrl.Log.WithName("etcd"),
		OnCall: func(op string) { etcdRequests.WithLabelValues(op).Inc() },
		Machines: func(ctx context.Context) []string {
			var list machinev1beta1.MachineList
			sel, err := controlPlaneRoles()
			if err != nil {
				return nil
			}
			// Arbiters' too: on a HighlyAvailableArbiter control plane they hold members.
			if err := reader.List(ctx, &list, client.InNamespace(o.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
				return nil
			}
			return machineEndpoints(list.Items)
		},
	}), nil
}

// machineEndpoints are the etcd client URLs (port 2379) on the Machines' InternalIPs: those
// of Machines not being deleted first, then those of deleting ones, whose members a held
// hook keeps in the cluster and which may be the only ones left.
func machineEndpoints(ms []machinev1beta1.Machine) []string {
	var out, deleting []string
	for i := range ms {
		for _, ip := range masters.InternalIPs(&ms[i]) {
			ep := "https://" + net.JoinHostPort(ip, "2379")
			if ms[i].DeletionTimestamp != nil {
				deleting = append(deleting, ep)
			} else {
				out = append(out, ep)
			}
		}
	}
	return append(out, deleting...)
}

// etcdReady is the readiness check: etcd answers a member list.
func etcdReady(v *etcdmember.View) func(*http.Request) error {
	return func(req *http.Request) error { return v.Ready(req.Context()) }
}
