package coexist

import (
	"context"
	"fmt"

	configv1 "github.com/openshift/api/config/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/quorumguard/quorumguard/pkg/openshift"
)

// EtcdOperatorKind is the etcd operator's configuration, one object named cluster.
var EtcdOperatorKind = schema.GroupVersionKind{Group: "operator.openshift.io", Version: "v1", Kind: "Etcd"}

// InfrastructureName is the one infrastructures.config.openshift.io object, whose
// status.controlPlaneTopology Decide reads; the etcd operator's object has the same name.
const InfrastructureName = "cluster"

// Gather reads what Decide needs with the typed clients c (uncached: these are four Gets,
// and quorumguard may not list or watch ClusterOperators). An API that does not exist, or an
// object that does not, reads as absent; any other error is returned, and the caller must
// not take the absence of an answer for a yes.
func Gather(ctx context.Context, c *openshift.Clients, clusterOperator string) (Input, error) {
	in := Input{ClusterOperator: clusterOperator}
	switch etcd, err := c.Operator.OperatorV1().Etcds().Get(ctx, InfrastructureName, metav1.GetOptions{}); {
	case err == nil:
		in.EtcdOperatorFound = true
		in.EtcdManagementState = string(etcd.Spec.ManagementState)
	case absent(err):
	default:
		return in, fmt.Errorf("read etcds.operator.openshift.io/cluster: %w", err)
	}

	cos := c.Config.ConfigV1().ClusterOperators()
	if clusterOperator != "" {
		switch co, err := cos.Get(ctx, clusterOperator, metav1.GetOptions{}); {
		case err == nil:
			in.StatusWriters = StatusWriters(co)
		case absent(err):
		default:
			return in, fmt.Errorf("read ClusterOperator %s: %w", clusterOperator, err)
		}
	}

	switch infra, err := c.Config.ConfigV1().Infrastructures().Get(ctx, InfrastructureName, metav1.GetOptions{}); {
	case err == nil:
		in.Topology = infra.Status.ControlPlaneTopology
	case absent(err):
	default:
		return in, fmt.Errorf("read infrastructures.config.openshift.io/%s: %w", InfrastructureName, err)
	}

	switch cpms, err := cos.Get(ctx, CPMSOperatorName, metav1.GetOptions{}); {
	case err == nil:
		for _, c := range cpms.Status.Conditions {
			if c.Type == configv1.OperatorAvailable {
				in.CPMSOperatorAvailable = c.Status
			}
		}
	case absent(err):
	default:
		return in, fmt.Errorf("read ClusterOperator %s: %w", CPMSOperatorName, err)
	}
	return in, nil
}

// beforeFirstApply is the manager the API server gives the fields an object had when it was
// first applied to with no managedFields: those of a writer whose managedFields were reset,
// which is how a person hands the ClusterOperator over once the other writer is gone.
const beforeFirstApply = "before-first-apply"

// StatusWriters are the field managers other than FieldManager (and beforeFirstApply) that
// own fields of co's status.
func StatusWriters(co *configv1.ClusterOperator) []string {
	var out []string
	for _, mf := range co.ManagedFields {
		if mf.Subresource == "status" && mf.Manager != FieldManager && mf.Manager != beforeFirstApply {
			out = append(out, mf.Manager)
		}
	}
	return out
}

func absent(err error) bool {
	return apierrors.IsNotFound(err) || meta.IsNoMatchError(err)
}
