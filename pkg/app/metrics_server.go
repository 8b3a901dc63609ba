package app

import (
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// MetricsServerOptions is how the manager serves /metrics.
//
// With MetricsSecure it serves HTTPS and answers only a caller whose bearer token the API
// server authenticates (a TokenReview) and authorises for get on the non-resource URL
// /metrics (a SubjectAccessReview): no token is 401, a token without that right 403. The
// ServiceAccount therefore needs create on tokenreviews and subjectaccessreviews, and a
// scraper the quorumguard-metrics-reader ClusterRole. The certificate is tls.crt and tls.key
// from MetricsCertDir (a mounted Secret, re-read when it changes), or one controller-runtime
// signs itself when that is empty.
//
// Without it, /metrics is plain HTTP open to anyone who reaches the port: for local demos
// and tests only.
func MetricsServerOptions(o Options) metricsserver.Options {
	mo := metricsserver.Options{BindAddress: o.MetricsAddr}
	if !o.MetricsSecure {
		return mo
	}
	mo.SecureServing = true
	mo.FilterProvider = filters.WithAuthenticationAndAuthorization
	if o.MetricsCertDir != "" {
		mo.CertDir, mo.CertName, mo.KeyName = o.MetricsCertDir, "tls.crt", "tls.key"
	}
	return mo
}
