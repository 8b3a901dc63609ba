package app

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	registerOnce sync.Once
	// etcdRequests counts the calls the controller makes to etcd, by operation; an observe
	// is one member list plus one status and one read per member.
	etcdRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quorumguard_etcd_requests_total",
		Help: "Calls quorumguard made to etcd, by operation.",
	}, []string{"op"})
)

// registerRuntimeMetrics adds the etcd request counter to controller-runtime's registry, once
// per process; controller-runtime registers the Go runtime and process collectors itself.
func registerRuntimeMetrics() {
	registerOnce.Do(func() {
		if err := ctrlmetrics.Registry.Register(etcdRequests); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				panic(err)
			}
		}
	})
}
