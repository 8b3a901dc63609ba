package etcdnet

import (
	"crypto/tls"
	"testing"
)

// StartSingle starts a one-member TLS cluster named "etcd" for a test and stops it when the
// test ends. It returns the network (for ClientFiles) and the member's client URLs.
func StartSingle(t testing.TB) (*Network, []string) {
	t.Helper()
	n, ms, _ := StartTest(t, "etcd")
	return n, ClientURLs(ms)
}

// StartTest starts a fresh TLS cluster of the named members for a test, closed when the
// test ends, and returns the network, the members and a client TLS configuration.
func StartTest(t testing.TB, names ...string) (*Network, []*Member, *tls.Config) {
	t.Helper()
	n, err := NewNetwork(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	ms, err := n.Bootstrap(t.Context(), names...)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		t.Cleanup(m.Kill)
	}
	tc, err := n.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	return n, ms, tc
}
