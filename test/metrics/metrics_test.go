// Package metrics_test checks the metrics endpoint as it ships: served over HTTPS with the
// certificate from a mounted directory, behind controller-runtime's authentication and
// authorization filter, running as the manifests' ServiceAccount with the manifests' RBAC
// against a real apiserver; and the Deployment, Service and ServiceMonitor agree with each
// other.
package metrics_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/test/framework"
	"github.com/quorumguard/quorumguard/test/framework/pki"
)

var cp *framework.ControlPlane

func TestMain(m *testing.M) { framework.Main(m, framework.ControlPlaneOptions{}, &cp) }

const (
	namespace      = "quorumguard"
	serviceAccount = "quorumguard"
	serviceName    = "quorumguard-metrics.quorumguard.svc"
	readerRole     = "quorumguard-metrics-reader"
)

// objects reads every object in a YAML file of several documents.
func objects(t *testing.T, file string) []*unstructured.Unstructured {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

func shipped(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	ms, err := framework.Manifests()
	if err != nil {
		t.Fatal(err)
	}
	var out []*unstructured.Unstructured
	for _, m := range ms {
		out = append(out, m.Obj)
	}
	return append(out, objects(t, filepath.Join(framework.RepoRoot(), "manifests", "monitoring", "servicemonitor.yaml"))...)
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s in manifests/", kind, name)
	return nil
}

// install creates the shipped Namespace, ServiceAccount, quorumguard's ClusterRole and binding
// and the reader's ClusterRole, as they are in manifests/.
func install(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range []*unstructured.Unstructured{
		find(t, objs, "Namespace", namespace),
		find(t, objs, "ServiceAccount", serviceAccount),
		find(t, objs, "ClusterRole", "quorumguard"),
		find(t, objs, "ClusterRoleBinding", "quorumguard"),
		find(t, objs, "ClusterRole", readerRole),
	} {
		if err := cp.Client.Create(t.Context(), o.DeepCopy()); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
}

// token creates a ServiceAccount and returns a token for it.
func token(t *testing.T, cs kubernetes.Interface, name string) string {
	t.Helper()
	ctx := t.Context()
	if _, err := cs.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s: %v", name, err)
	}
	return tr.Status.Token
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// startManager runs a manager whose metrics server is built by app.MetricsServerOptions, as
// the controller's is, with the given client configuration.
func startManager(t *testing.T, cfg *rest.Config, o app.Options) {
	t.Helper()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: app.Scheme(), Metrics: app.MetricsServerOptions(o), HealthProbeBindAddress: "0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
}

// scrape GETs /metrics and returns the status code and body; it retries while the server
// is not yet listening.
func scrape(t *testing.T, c *http.Client, url, bearer string) (int, string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := c.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			return resp.StatusCode, string(b)
		}
		var opErr *net.OpError
		if !errors.As(err, &opErr) || time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMetricsNeedAuthorizedToken runs the metrics endpoint as the manifests' ServiceAccount
// (impersonated) with the manifests' RBAC: an anonymous scrape is refused (401), a token
// without the reader's role is refused (403), a token bound to quorumguard-metrics-reader is
// answered, and the certificate served is the one from the mounted directory.
func TestMetricsNeedAuthorizedToken(t *testing.T) {
	objs := shipped(t)
	install(t, objs)
	cs, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	scraper := token(t, cs, "scraper")
	stranger := token(t, cs, "stranger")
	binding := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
		"metadata": map[string]any{"name": "scraper-reads-metrics"},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": readerRole},
		"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": "scraper", "namespace": namespace}},
	}}
	if err := cp.Client.Create(t.Context(), binding); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}

	// The serving certificate, as the service CA (or cert-manager) would write it.
	ca, err := pki.NewCA("metrics-test-ca")
	if err != nil {
		t.Fatal(err)
	}
	certDir := t.TempDir()
	if _, err := ca.IssueFiles(certDir, "tls", pki.Options{DNSNames: []string{serviceName}}); err != nil {
		t.Fatal(err)
	}

	asQuorumguard := rest.CopyConfig(cp.Config)
	asQuorumguard.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + namespace + ":" + serviceAccount,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}
	addr := freeAddr(t)
	startManager(t, asQuorumguard, app.Options{MetricsAddr: addr, MetricsSecure: true, MetricsCertDir: certDir})

	// Verified against the test CA, under the Service's name: a self-signed certificate, or
	// another one, fails the handshake.
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: serviceName, MinVersion: tls.VersionTLS12}}}
	url := "https://" + addr + "/metrics"

	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"anonymous", "", http.StatusUnauthorized},
		// controller-runtime's filter answers 500 when the TokenReview says "not
		// authenticated" with an error, as it does for a malformed token.
		{"a token that is not one", "not-a-token", http.StatusInternalServerError},
		{"a ServiceAccount without the reader's role", stranger, http.StatusForbidden},
		{"a ServiceAccount bound to " + readerRole, scraper, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := scrape(t, c, url, tc.token)
			if code != tc.want {
				t.Fatalf("scrape: %d, want %d\n%.300s", code, tc.want, body)
			}
			if tc.want == http.StatusOK && !strings.Contains(body, "controller_runtime_reconcile_errors_total") && !strings.Contains(body, "go_goroutines") {
				t.Errorf("scrape answered without metrics:\n%.300s", body)
			}
			if tc.want != http.StatusOK && strings.Contains(body, "go_goroutines") {
				t.Errorf("a refused scrape returned metrics:\n%.300s", body)
			}
		})
	}

	// Plain HTTP, for local demos, answers anyone.
	plain := freeAddr(t)
	startManager(t, cp.Config, app.Options{MetricsAddr: plain})
	if code, body := scrape(t, &http.Client{Timeout: 10 * time.Second}, "http://"+plain+"/metrics", ""); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("plain HTTP scrape: %d, want 200 with metrics", code)
	}
}

// TestMetricsManifestsAgree checks that the Deployment serves HTTPS with the certificate
// the Service asks the service CA for, and that the ServiceMonitor scrapes that Service's
// port over HTTPS under its name.
func TestMetricsManifestsAgree(t *testing.T) {
	objs := shipped(t)
	dep := find(t, objs, "Deployment", "quorumguard")
	svc := find(t, objs, "Service", "quorumguard-metrics")
	sm := find(t, objs, "ServiceMonitor", "quorumguard")

	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	volumes, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "volumes")
	c := containers[0].(map[string]any)
	args, _, _ := unstructured.NestedStringSlice(c, "args")
	flag := func(name string) string {
		for _, a := range args {
			if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
				return v
			}
		}
		return ""
	}
	if flag("metrics-secure") != "true" {
		t.Errorf("the Deployment does not pass --metrics-secure=true")
	}
	certDir := flag("metrics-cert-dir")
	mounts, _, _ := unstructured.NestedSlice(c, "volumeMounts")
	secret := ""
	for _, m := range mounts {
		mm := m.(map[string]any)
		if filepath.Clean(mm["mountPath"].(string)) != filepath.Clean(certDir) {
			continue
		}
		for _, v := range volumes {
			vm := v.(map[string]any)
			if vm["name"] == mm["name"] {
				secret, _, _ = unstructured.NestedString(vm, "secret", "secretName")
			}
		}
	}
	if want := svc.GetAnnotations()["service.beta.openshift.io/serving-cert-secret-name"]; secret == "" || secret != want {
		t.Errorf("--metrics-cert-dir %q is Secret %q, want the Secret the Service's serving-cert annotation names (%q)", certDir, secret, want)
	}

	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	var portNames []string
	for _, p := range ports {
		portNames = append(portNames, p.(map[string]any)["name"].(string))
	}
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	for k, v := range sel {
		if svc.GetLabels()[k] != v {
			t.Errorf("the ServiceMonitor selects %s=%s, which the Service does not carry", k, v)
		}
	}
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(eps) == 0 {
		t.Fatal("the ServiceMonitor has no endpoint")
	}
	for _, e := range eps {
		em := e.(map[string]any)
		if !slices.Contains(portNames, fmt.Sprint(em["port"])) {
			t.Errorf("the ServiceMonitor scrapes port %v, the Service has %v", em["port"], portNames)
		}
		if em["scheme"] != "https" || em["bearerTokenFile"] == nil {
			t.Errorf("the ServiceMonitor scrapes with scheme %v and bearerTokenFile %v, want https with a token", em["scheme"], em["bearerTokenFile"])
		}
		if sn, _, _ := unstructured.NestedString(em, "tlsConfig", "serverName"); sn != svc.GetName()+"."+svc.GetNamespace()+".svc" {
			t.Errorf("the ServiceMonitor verifies the name %q, want %s.%s.svc", sn, svc.GetName(), svc.GetNamespace())
		}
	}
}
