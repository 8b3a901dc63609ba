package app

import "testing"

// SetServiceAccountNamespaceFile makes path the file that says this process runs in a Pod,
// for the rest of the test.
func SetServiceAccountNamespaceFile(t testing.TB, path string) {
	old := serviceAccountNamespaceFile
	serviceAccountNamespaceFile = path
	t.Cleanup(func() { serviceAccountNamespaceFile = old })
}
