package coexist

import (
	"context"
	"fmt"

	configv1 "github.com/openshift/api/config/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// EtcdOperatorKind is the etcd operator's configuration, one object named cluster.
var EtcdOperatorKind = schema.GroupVersionKind{Group: "operator.openshift.io", Version: "v1", Kind: "Etcd"}

// Gather reads what Decide needs with r (an uncached reader: these are three Gets, and
// quorumguard may not list or watch ClusterOperators). An API that does not exist, or an
// object that does not, reads as absent; any other error is returned, and the caller must
// not take the absence of an answer for a yes.
func Gather(ctx context.Context, r client.Reader, clusterOperator string) (Input, error) {
	in := Input{ClusterOperator: clusterOperator}
	etcd := &unstructured.Unstructured{}
	etcd.SetGroupVersionKind(EtcdOperatorKind)
	switch err := r.Get(ctx, client.ObjectKey{Name: "cluster"}, etcd); {
	case err == nil:
		in.EtcdOperatorFound = true
		in.EtcdManagementState, _, _ = unstructured.NestedString(etcd.Object, "spec", "managementState")
	case absent(err):
	default:
		return in, fmt.Errorf("read etcds.operator.openshift.io/cluster: %w", err)
	}

	if clusterOperator != "" {
		co := &configv1.ClusterOperator{}
		switch err := r.Get(ctx, client.ObjectKey{Name: clusterOperator}, co); {
		case err == nil:
			in.StatusWriters = StatusWriters(co)
		case absent(err):
		default:
			return in, fmt.Errorf("read ClusterOperator %s: %w", clusterOperator, err)
		}
	}

	cpms := &configv1.ClusterOperator{}
	switch err := r.Get(ctx, client.ObjectKey{Name: CPMSOperatorName}, cpms); {
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

// StatusWriters are the field managers other than FieldManager that own fields of co's
// status.
func StatusWriters(co *configv1.ClusterOperator) []string {
	var out []string
	for _, mf := range co.ManagedFields {
		if mf.Subresource == "status" && mf.Manager != FieldManager {
			out = append(out, mf.Manager)
		}
	}
	return out
}

func absent(err error) bool {
	return apierrors.IsNotFound(err) || meta.IsNoMatchError(err)
}
