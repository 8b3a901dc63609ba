//go:build tools

// Package tools pins promtool, which `make test` uses to check and unit-test the alerting
// rules in manifests/. It is a module of its own: the Prometheus module requires newer
// versions of many libraries that the control-plane tools beside it also use, and keeping
// the two apart leaves the kube-apiserver build exactly as pinned.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
