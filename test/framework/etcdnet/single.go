package etcdnet

import "testing"

// StartSingle starts a one-member TLS cluster named "etcd" for a test and stops it when the
// test ends. It returns the network (for ClientFiles) and the member's client URLs.
func StartSingle(t testing.TB) (*Network, []string) {
	t.Helper()
	n, err := NewNetwork(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	ms, err := n.Bootstrap(t.Context(), "etcd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ms[0].Kill)
	return n, ClientURLs(ms)
}
