// Package image_test checks what `make image` ships: the OCI archive's layout and config, the
// binary inside it, the version the manifests deploy, and (where podman is installed) the
// image run by a container engine.
package image_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorumguard/quorumguard/test/framework"
)

const (
	wantUser       = "65532:65532"
	wantEntrypoint = "/quorumguard"
	defaultRepo    = "quay.io/quorumguard/quorumguard"
)

// archive is an OCI archive read with the standard library only, so the check does not
// share the builder's image library.
type archive struct {
	files map[string][]byte
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
}

type index struct {
	MediaType string       `json:"mediaType"`
	Manifests []descriptor `json:"manifests"`
}

type manifest struct {
	MediaType   string            `json:"mediaType"`
	Config      descriptor        `json:"config"`
	Layers      []descriptor      `json:"layers"`
	Annotations map[string]string `json:"annotations"`
}

type imageConfig struct {
	Architecture string    `json:"architecture"`
	OS           string    `json:"os"`
	Created      time.Time `json:"created"`
	Config       struct {
		User       string            `json:"User"`
		Entrypoint []string          `json:"Entrypoint"`
		Cmd        []string          `json:"Cmd"`
		Env        []string          `json:"Env"`
		Labels     map[string]string `json:"Labels"`
	} `json:"config"`
	RootFS struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// built is one `make image` run.
type built struct {
	path    string
	raw     []byte
	version string // from the VERSION file
}

// makeImage runs the repository's own `make image` into dir.
func makeImage(t *testing.T, dir string) built {
	t.Helper()
	root := framework.RepoRoot()
	out := filepath.Join(dir, "image.tar")
	cmd := exec.CommandContext(t.Context(), "make", "-s", "-C", root, "image",
		"IMAGE_OUT="+out, "IMAGE_BINARY="+filepath.Join(dir, "quorumguard"))
	// A make above this test (make test) must not hand its job server to this one.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MFLAGS" && k != "MAKELEVEL" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, b)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	v, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	return built{path: out, raw: raw, version: strings.TrimSpace(string(v))}
}

func readArchive(raw []byte) (*archive, error) {
	a := &archive{files: map[string][]byte{}}
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return a, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		a.files[h.Name] = b
	}
}

// blob returns a blob by digest and checks that its content has that digest and size.
func (a *archive) blob(d descriptor) ([]byte, error) {
	algo, hexDigest, ok := strings.Cut(d.Digest, ":")
	if !ok || algo != "sha256" {
		return nil, fmt.Errorf("digest %q is not sha256", d.Digest)
	}
	b, ok := a.files["blobs/sha256/"+hexDigest]
	if !ok {
		return nil, fmt.Errorf("blob %s missing from the archive", d.Digest)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != hexDigest {
		return nil, fmt.Errorf("blob %s has digest sha256:%s", d.Digest, got)
	}
	if d.Size != int64(len(b)) {
		return nil, fmt.Errorf("blob %s is %d bytes, its descriptor says %d", d.Digest, len(b), d.Size)
	}
	return b, nil
}

// image reads the archive's one image: the index entry, its manifest, config and layers.
func (a *archive) image() (descriptor, manifest, imageConfig, [][]byte, error) {
	var idx index
	var m manifest
	var cfg imageConfig
	if string(a.files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		return descriptor{}, m, cfg, nil, fmt.Errorf("oci-layout is %q", a.files["oci-layout"])
	}
	if err := json.Unmarshal(a.files["index.json"], &idx); err != nil {
		return descriptor{}, m, cfg, nil, fmt.Errorf("index.json: %w", err)
	}
	if len(idx.Manifests) != 1 {
		return descriptor{}, m, cfg, nil, fmt.Errorf("index.json lists %d manifests, want 1", len(idx.Manifests))
	}
	d := idx.Manifests[0]
	mb, err := a.blob(d)
	if err != nil {
		return d, m, cfg, nil, err
	}
	if err := json.Unmarshal(mb, &m); err != nil {
		return d, m, cfg, nil, fmt.Errorf("manifest: %w", err)
	}
	cb, err := a.blob(m.Config)
	if err != nil {
		return d, m, cfg, nil, err
	}
	if err := json.Unmarshal(cb, &cfg); err != nil {
		return d, m, cfg, nil, fmt.Errorf("config: %w", err)
	}
	var layers [][]byte
	for _, l := range m.Layers {
		b, err := a.blob(l)
		if err != nil {
			return d, m, cfg, nil, err
		}
		layers = append(layers, b)
	}
	return d, m, cfg, layers, nil
}

// layerFile is one regular file of a layer.
type layerFile struct {
	hdr  *tar.Header
	data []byte
}

func readLayer(gz []byte) (diffID string, files []layerFile, err error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return "", nil, err
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		return "", nil, err
	}
	sum := sha256.Sum256(plain)
	tr := tar.NewReader(bytes.NewReader(plain))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "sha256:" + hex.EncodeToString(sum[:]), files, nil
		}
		if err != nil {
			return "", nil, err
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return "", nil, err
		}
		files = append(files, layerFile{h, b})
	}
}

func git(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "git", args...)
	cmd.Dir = framework.RepoRoot()
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(b))
}

// checkImage checks everything about one built archive that does not need a container engine,
// and returns the binary's --version line, run from the extracted layer.
func checkImage(t *testing.T, b built) (manifestDigest, versionLine string) {
	t.Helper()
	a, err := readArchive(b.raw)
	if err != nil {
		t.Fatal(err)
	}
	d, m, cfg, layers, err := a.image()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != "application/vnd.oci.image.manifest.v1+json" || m.Config.MediaType != "application/vnd.oci.image.config.v1+json" {
		t.Errorf("manifest %q with config %q, want OCI media types", m.MediaType, m.Config.MediaType)
	}
	wantRef := defaultRepo + ":" + b.version
	if got := d.Annotations["io.containerd.image.name"]; got != wantRef {
		t.Errorf("index names the image %q, want %q", got, wantRef)
	}
	if got := d.Annotations["org.opencontainers.image.ref.name"]; got != b.version {
		t.Errorf("index tag %q, want %q", got, b.version)
	}

	if cfg.Config.User != wantUser {
		t.Errorf("config User %q, want %q", cfg.Config.User, wantUser)
	}
	if len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != wantEntrypoint || len(cfg.Config.Cmd) != 0 {
		t.Errorf("config Entrypoint %q Cmd %q, want [%s] and no Cmd", cfg.Config.Entrypoint, cfg.Config.Cmd, wantEntrypoint)
	}
	if cfg.OS != "linux" {
		t.Errorf("config os %q, want linux", cfg.OS)
	}
	head := git(t, "rev-parse", "HEAD")
	labels := cfg.Config.Labels
	if got := labels["org.opencontainers.image.version"]; got != b.version {
		t.Errorf("label version %q, want %q (VERSION)", got, b.version)
	}
	if got := labels["org.opencontainers.image.revision"]; got != head && got != head+"-dirty" {
		t.Errorf("label revision %q, want %s (HEAD, with -dirty for a changed work tree)", got, head)
	}
	if got := labels["org.opencontainers.image.source"]; !strings.HasPrefix(got, "https://") {
		t.Errorf("label source %q, want the repository's URL", got)
	}
	for k, v := range labels {
		if m.Annotations[k] != v {
			t.Errorf("manifest annotation %s=%q, want the label's %q", k, m.Annotations[k], v)
		}
	}
	commitTime, err := strconv.ParseInt(git(t, "log", "-1", "--format=%ct"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(commitTime, 0).UTC(); !cfg.Created.Equal(want) {
		t.Errorf("config created %s, want the commit's time %s", cfg.Created, want)
	}

	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1 (the binary)", len(layers))
	}
	diffID, files, err := readLayer(layers[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != diffID {
		t.Errorf("config diff_ids %q, want [%s]", cfg.RootFS.DiffIDs, diffID)
	}
	if len(files) != 1 || files[0].hdr.Name != strings.TrimPrefix(wantEntrypoint, "/") {
		names := make([]string, len(files))
		for i, f := range files {
			names[i] = f.hdr.Name
		}
		t.Fatalf("layer holds %q, want only %s", names, wantEntrypoint)
	}
	bin := files[0]
	if bin.hdr.Mode != 0o755 || bin.hdr.Uid != 0 || bin.hdr.Gid != 0 {
		t.Errorf("binary mode %o owner %d:%d, want 755 owned by root (runnable, not writable, by %s)", bin.hdr.Mode, bin.hdr.Uid, bin.hdr.Gid, wantUser)
	}
	if !bin.hdr.ModTime.Equal(cfg.Created) {
		t.Errorf("binary mtime %s, want the image's creation time %s", bin.hdr.ModTime, cfg.Created)
	}

	exe := filepath.Join(t.TempDir(), "quorumguard")
	if err := os.WriteFile(exe, bin.data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), exe, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version from the layer: %v\n%s", wantEntrypoint, err, out)
	}
	versionLine = strings.TrimSpace(string(out))
	if want := fmt.Sprintf("quorumguard %s (revision %s)", b.version, labels["org.opencontainers.image.revision"]); versionLine != want {
		t.Errorf("the layer's binary says %q, want %q", versionLine, want)
	}
	return d.Digest, versionLine
}

// TestImage builds the image twice with `make image` and checks the archive, the binary it
// runs, that one commit gives one digest, and that the manifests deploy the stamped version.
func TestImage(t *testing.T) {
	first := makeImage(t, t.TempDir())
	digest, versionLine := checkImage(t, first)

	second := makeImage(t, t.TempDir())
	if !bytes.Equal(first.raw, second.raw) {
		a := sha256.Sum256(first.raw)
		b := sha256.Sum256(second.raw)
		t.Errorf("two builds of one tree differ: archives %x and %x", a, b)
	}
	t.Logf("image %s:%s@%s, %d bytes", defaultRepo, first.version, digest, len(first.raw))

	// The tag the manifests deploy is the version the build stamps into the binary.
	stamped := strings.Fields(versionLine)[1]
	ms, err := framework.Manifests()
	if err != nil {
		t.Fatal(err)
	}
	var images int
	for _, m := range ms {
		if m.Obj.GetKind() != "Deployment" {
			continue
		}
		for _, c := range containers(m.Obj.Object) {
			images++
			img, _ := c["image"].(string)
			if want := defaultRepo + ":" + stamped; img != want {
				t.Errorf("%s: container %v runs %q, want %q (the version the build stamps)", m.File, c["name"], img, want)
			}
			for _, e := range envs(c) {
				if e["name"] == "RELEASE_VERSION" && e["value"] != stamped {
					t.Errorf("%s: RELEASE_VERSION %v, want %q", m.File, e["value"], stamped)
				}
			}
		}
	}
	if images == 0 {
		t.Error("no Deployment container in manifests/")
	}

	t.Run("podman runs it", func(t *testing.T) { runWithPodman(t, first, versionLine) })
}

func containers(obj map[string]any) []map[string]any {
	spec, _ := obj["spec"].(map[string]any)
	tmpl, _ := spec["template"].(map[string]any)
	pod, _ := tmpl["spec"].(map[string]any)
	list, _ := pod["containers"].([]any)
	var out []map[string]any
	for _, c := range list {
		if m, ok := c.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func envs(c map[string]any) []map[string]any {
	list, _ := c["env"].([]any)
	var out []map[string]any
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// runWithPodman loads the archive and runs the image. podman needs runc and explicit ulimits on
// these machines (crun and the default limits fail in their sandbox).
func runWithPodman(t *testing.T, b built, wantVersion string) {
	podman, err := exec.LookPath("podman")
	if err != nil {
		t.Skip("podman is not installed: the image was checked from its archive, not run by a container engine (install podman and runc to run it)")
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(t.Context(), podman, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	loaded := run("load", "-q", "-i", b.path)
	ref := defaultRepo + ":" + b.version
	if !strings.Contains(loaded, ref) {
		t.Fatalf("podman load said %q, want it to load %s", loaded, ref)
	}
	id := run("image", "inspect", "--format", "{{.Id}}", ref)
	t.Cleanup(func() { _ = exec.Command(podman, "rmi", "-f", id).Run() })
	if user := run("image", "inspect", "--format", "{{.Config.User}}", id); user != wantUser {
		t.Errorf("podman sees User %q, want %q", user, wantUser)
	}
	got := run("run", "--rm", "--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
		"--read-only", "--cap-drop", "ALL", id, "--version")
	if got != wantVersion {
		t.Errorf("the container says %q, want %q", got, wantVersion)
	}
}
