package app

import (
	"fmt"
	"os"
	"strings"
)

// serviceAccountNamespaceFile is where a Pod finds its own namespace.
var serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

func inClusterNamespace() (string, error) {
	b, err := os.ReadFile(serviceAccountNamespaceFile)
	if err != nil {
		return "", fmt.Errorf("not running in a cluster (no %s)", serviceAccountNamespaceFile)
	}
	ns := strings.TrimSpace(string(b))
	if ns == "" {
		return "", fmt.Errorf("%s is empty", serviceAccountNamespaceFile)
	}
	return ns, nil
}
