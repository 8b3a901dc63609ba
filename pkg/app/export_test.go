package app

import (
	"testing"
	"time"
)

// SetServiceAccountNamespaceFile makes path the file that says this process runs in a Pod,
// for the rest of the test.
func SetServiceAccountNamespaceFile(t testing.TB, path string) {
	old := serviceAccountNamespaceFile
	serviceAccountNamespaceFile = path
	t.Cleanup(func() { serviceAccountNamespaceFile = old })
}

// SetMinStallTimeout lowers the shortest stall timeout Validate accepts, for the rest of the
// test, so that a liveness test need not wait 30 s.
func SetMinStallTimeout(t testing.TB, d time.Duration) {
	old := minStallTimeout
	minStallTimeout = d
	t.Cleanup(func() { minStallTimeout = old })
}
