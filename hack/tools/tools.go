//go:build tools

// Package tools pins the Kubernetes and etcd binaries that the test control plane runs, and
// the kubectl that the plugin test drives.
// They are built from the Go module proxy by `make tools`; nothing here is imported by the
// quorumguard module itself.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
