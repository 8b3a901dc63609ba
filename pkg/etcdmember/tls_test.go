package etcdmember

import (
	"crypto/tls"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorumguard/quorumguard/test/framework/pki"
)

// TestCertificateErrors: a client whose certificate the members reject, or which does not
// trust the members' certificates, gets a *CertificateError naming the endpoint.
func TestCertificateErrors(t *testing.T) {
	ctx := t.Context()
	cl := newCluster(t, ctx, "a")
	dir := t.TempDir()
	caFile, _, _ := cl.net.ClientFiles()
	other, err := pki.NewCA("some-other-ca")
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := other.WriteCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	issue := func(ca *pki.CA, base string, o pki.Options) pki.Pair {
		p, err := ca.IssueFiles(dir, base, o)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	foreign := issue(other, "foreign", pki.Options{CommonName: "quorumguard-client"})
	expired := issue(cl.net.CA, "expired", pki.Options{CommonName: "quorumguard-client",
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	good := issue(cl.net.CA, "good", pki.Options{CommonName: "quorumguard-client"})

	ep := cl.members["a"].ClientURL()
	for _, tc := range []struct {
		name  string
		files TLSFiles
	}{
		{"a client certificate from another CA", TLSFiles{CA: caFile, Cert: foreign.CertFile, Key: foreign.KeyFile}},
		{"an expired client certificate", TLSFiles{CA: caFile, Cert: expired.CertFile, Key: expired.KeyFile}},
		{"a client that does not trust the members' CA", TLSFiles{CA: otherCA, Cert: good.CertFile, Key: good.KeyFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewFromFiles(Config{Endpoints: []string{ep}, CallTimeout: time.Second}, tc.files)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			rejected := func(what string, err error) {
				t.Helper()
				var ce *CertificateError
				if !errors.As(err, &ce) || ce.Endpoint != ep || !strings.Contains(err.Error(), "certificate rejected") ||
					!strings.Contains(err.Error(), ep) {
					t.Fatalf("%s: %v; want a *CertificateError naming %s", what, err, ep)
				}
			}
			_, err = c.Members(ctx)
			rejected("list members", err)
			t.Logf("%v", err)
			h := c.Health(ctx, []Member{{ID: 1, Name: "a", Started: true, ClientURLs: []string{ep}}})
			rejected("probe", h[0].Err)
			rejected("fence", c.Fence(ctx, 1))
		})
	}

	t.Run("files that do not exist are refused at once", func(t *testing.T) {
		_, err := NewFromFiles(Config{Endpoints: []string{ep}}, TLSFiles{CA: caFile, Cert: filepath.Join(dir, "nope.crt"), Key: filepath.Join(dir, "nope.key")})
		if err == nil || !strings.Contains(err.Error(), "nope.crt") {
			t.Fatalf("NewFromFiles with missing files = %v, want an error naming them", err)
		}
	})
}

// TestRotatedCertificateIsUsedForNewConnections: the client certificate is renewed in place
// the way a Secret volume renews it, each one valid for 3 s. Once the first has expired, a
// client made with NewFromFiles still opens connections (to members it had not talked to),
// because it reads the files at every handshake. A client that kept the first certificate,
// which is what the check must be able to tell apart, is refused.
func TestRotatedCertificateIsUsedForNewConnections(t *testing.T) {
	ctx := t.Context()
	cl := newCluster(t, ctx, "a", "b", "c")
	caFile, _, _ := cl.net.ClientFiles()
	rot, err := cl.net.CA.StartRotating(filepath.Join(t.TempDir(), "etcd-client"), pki.Options{CommonName: "quorumguard-client"}, 500*time.Millisecond, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer rot.Stop()
	first, err := tls.LoadX509KeyPair(rot.CertFile(), rot.KeyFile())
	if err != nil {
		t.Fatal(err)
	}
	a := cl.members["a"].ClientURL()
	following, err := NewFromFiles(Config{Endpoints: []string{a}, CallTimeout: 3 * time.Second}, TLSFiles{CA: caFile, Cert: rot.CertFile(), Key: rot.KeyFile()})
	if err != nil {
		t.Fatal(err)
	}
	defer following.Close()
	pinned, err := New(Config{Endpoints: []string{a}, CallTimeout: 3 * time.Second,
		TLS: &tls.Config{Certificates: []tls.Certificate{first}, RootCAs: cl.net.CA.Pool(), MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	defer pinned.Close()
	members, err := following.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pinned.Members(ctx); err != nil {
		t.Fatal(err)
	}
	// Past the first certificate's end, with renewals in between.
	time.Sleep(4 * time.Second)
	if rot.Count() < 3 {
		t.Fatalf("only %d certificates written in 4 s", rot.Count())
	}
	for _, h := range following.Health(ctx, members) {
		if h.Err != nil {
			t.Errorf("probe of %s with the renewed certificate: %v", h.Endpoint, h.Err)
		}
	}
	following.SetEndpoints(cl.members["c"].ClientURL())
	if _, err := following.Members(ctx); err != nil {
		t.Errorf("member list through c with the renewed certificate: %v", err)
	}
	var ce *CertificateError
	for _, h := range pinned.Health(ctx, members) {
		if h.Endpoint != a && !errors.As(h.Err, &ce) {
			t.Errorf("probe of %s with the expired first certificate: %v; want a *CertificateError", h.Endpoint, h.Err)
		}
	}
}
