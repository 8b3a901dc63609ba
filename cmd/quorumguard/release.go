package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/endpoints"
	"github.com/quorumguard/quorumguard/pkg/openshift"
	"github.com/quorumguard/quorumguard/pkg/release"
	"github.com/quorumguard/quorumguard/pkg/snapshot"
)

// releaseRequest is what `quorumguard release` was asked: a Machine (`release MACHINE`), or,
// with Machine empty, an etcd member by ID (`release --member ID`, hex as etcdctl prints it).
type releaseRequest struct {
	Machine string
	Member  uint64
	// Force releases where quorumguard would wait for a margin (a replacement not promoted,
	// a fault tolerance falling to 0); it never lets quorum be lost.
	Force bool
	// DryRun decides and prints what would be done, and changes nothing.
	DryRun bool
}

// runRelease runs `quorumguard release` (pkg/release) against the cluster cfg reaches, with
// the controller's options ao (namespace, hook, replicas, etcd endpoints and files, the
// leader-for-life lock whose epoch the fencing token is claimed above). A refusal prints its
// reason and exits 4; an etcd that cannot be observed exits 2, one without quorum 3.
func runRelease(ctx context.Context, cfg *rest.Config, ao app.Options, r releaseRequest, out io.Writer) error {
	// exitRefused: the release was refused before anything was changed; the reason is printed.
	const exitRefused = 4
	if (r.Machine == "") == (r.Member == 0) {
		return errors.New("release takes either a Machine name or --member ID, exactly one")
	}
	if ao.EtcdCA == "" || ao.EtcdCert == "" || ao.EtcdKey == "" {
		return errors.New("--etcd-ca-file, --etcd-cert-file and --etcd-key-file are all required (etcd is reached with mutual TLS)")
	}
	cl, view, err := connect(cfg, ao)
	if err != nil {
		return err
	}
	defer view.Close()
	// A removal may move leadership first and waits for etcd at each step; bounded as a whole,
	// with the time a snapshot may take on top when one is taken first.
	limit := 2 * time.Minute
	rc := release.Config{Client: cl, Etcd: view, Namespace: ao.Namespace, Hook: ao.Hook, PreTerminateHook: ao.PreTerminate(), DefaultReplicas: ao.DefaultReplicas,
		DryRun: r.DryRun, Out: out}
	if len(ao.EndpointConsumers) > 0 {
		rc.EndpointsNamespace, rc.EndpointsConfigMap, rc.EndpointConsumers = ao.ElectionNS, ao.EndpointsConfigMap, ao.EndpointConsumers
		if rc.EndpointsNamespace == "" {
			rc.EndpointsNamespace = ao.Namespace
		}
	}
	if ao.OpenShiftEndpoints {
		oc, err := openshift.NewClients(cfg)
		if err != nil {
			return err
		}
		rc.OpenShift = &endpoints.OpenShiftPublisher{Client: cl, KubeAPIServers: oc.Operator.OperatorV1().KubeAPIServers(), SkipRollout: ao.SkipAPIServerRollout}
	}
	if ao.SnapshotDir != "" {
		rc.Snapshots = &snapshot.Taker{Dir: ao.SnapshotDir, Keep: ao.SnapshotKeep, Budget: ao.SnapshotBudget,
			Streamer: snapshot.ClientStreamer{Files: snapshot.TLSFiles{CA: ao.EtcdCA, Cert: ao.EtcdCert, Key: ao.EtcdKey}}}
		limit += snapshot.DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if ao.ElectionID != "" && ao.ElectionNS != "" {
		rc.Epoch = client.ObjectKey{Namespace: ao.ElectionNS, Name: ao.ElectionID + "-epoch"}
	}
	if host, err := os.Hostname(); err == nil {
		rc.Instance = host
	}
	_, err = release.Run(ctx, rc, release.Request{Machine: r.Machine, Member: r.Member, Force: r.Force})
	var refused *release.RefusedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &refused) && refused.Plan.NoQuorum:
		return &exitError{exitNoMargin, err.Error()}
	case errors.As(err, &refused) && refused.Plan.Unobserved:
		return &exitError{exitEtcdUnobserved, err.Error()}
	case errors.As(err, &refused):
		return &exitError{exitRefused, err.Error()}
	default:
		return fmt.Errorf("release: %w", err)
	}
}
