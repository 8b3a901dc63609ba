// Package openshift holds the typed clients of OpenShift's own APIs that quorumguard reads
// and writes, as OpenShift's operators use them: github.com/openshift/client-go's config
// clientset (the ClusterOperators, the Infrastructure) and operator clientset (the etcd and
// kube-apiserver operators' resources).
package openshift

import (
	"fmt"
	"net/http"

	configclient "github.com/openshift/client-go/config/clientset/versioned"
	operatorclient "github.com/openshift/client-go/operator/clientset/versioned"
	"k8s.io/client-go/rest"
)

// Clients are the typed clients of the config.openshift.io and operator.openshift.io APIs.
type Clients struct {
	Config   configclient.Interface
	Operator operatorclient.Interface
}

// NewClients builds the clients from cfg, each with its own HTTP client.
func NewClients(cfg *rest.Config) (*Clients, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("openshift clients: %w", err)
	}
	return NewClientsForConfigAndClient(cfg, hc)
}

// NewClientsForConfigAndClient builds the clients from cfg over hc, so that they share its
// connections (a controller-runtime manager's GetHTTPClient, say).
func NewClientsForConfigAndClient(cfg *rest.Config, hc *http.Client) (*Clients, error) {
	cc, err := configclient.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("config.openshift.io client: %w", err)
	}
	oc, err := operatorclient.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("operator.openshift.io client: %w", err)
	}
	return &Clients{Config: cc, Operator: oc}, nil
}
