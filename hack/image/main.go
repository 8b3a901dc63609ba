// Command image assembles quorumguard's container image from a static binary and writes it as
// an OCI archive that `podman load` and `docker load` accept. It needs no container daemon and
// pulls no base image: the image has one layer holding the binary, and runs it as uid 65532.
//
// The output depends only on its inputs: every timestamp is --created (the commit's time in
// `make image`), so one commit gives one digest.
//
// It is a module of its own so that the image library stays out of the controller's go.mod.
package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The path of the binary in the image and the user it runs as (the distroless "nonroot").
const (
	entrypoint = "/quorumguard"
	user       = "65532:65532"
)

type options struct {
	binary, out, repository, version, revision, source, arch string
	created                                                  int64
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "", "static quorumguard binary to put in the image")
	flag.StringVar(&o.out, "out", "", "OCI archive to write")
	flag.StringVar(&o.repository, "repository", "", "image repository; the tag is --version")
	flag.StringVar(&o.version, "version", "", "release version: the tag and the org.opencontainers.image.version label")
	flag.StringVar(&o.revision, "revision", "", "git commit, for the org.opencontainers.image.revision label")
	flag.StringVar(&o.source, "source", "", "source repository URL, for the org.opencontainers.image.source label")
	flag.StringVar(&o.arch, "arch", "amd64", "GOARCH the binary was built for")
	flag.Int64Var(&o.created, "created", 0, "creation time, seconds since the epoch; every timestamp in the image is this")
	flag.Parse()
	ref, digest, err := build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %s@%s\n", o.out, ref, digest)
}

func build(o options) (ref string, digest v1.Hash, err error) {
	for name, v := range map[string]string{"--binary": o.binary, "--out": o.out, "--repository": o.repository, "--version": o.version, "--revision": o.revision} {
		if v == "" {
			return "", v1.Hash{}, fmt.Errorf("%s is required", name)
		}
	}
	created := time.Unix(o.created, 0).UTC()
	bin, err := os.ReadFile(o.binary)
	if err != nil {
		return "", v1.Hash{}, err
	}
	layerTar, err := binaryLayer(bin, created)
	if err != nil {
		return "", v1.Hash{}, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return "", v1.Hash{}, err
	}
	labels := map[string]string{
		"org.opencontainers.image.title":    "quorumguard",
		"org.opencontainers.image.version":  o.version,
		"org.opencontainers.image.revision": o.revision,
	}
	if o.source != "" {
		labels["org.opencontainers.image.source"] = o.source
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: created}, CreatedBy: "make image", Comment: "the quorumguard binary"}})
	if err != nil {
		return "", v1.Hash{}, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", v1.Hash{}, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", o.arch
	cfg.Created = v1.Time{Time: created}
	cfg.Config = v1.Config{
		Entrypoint: []string{entrypoint},
		User:       user,
		WorkingDir: "/",
		Labels:     labels,
	}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return "", v1.Hash{}, err
	}
	img = mutate.Annotations(img, labels).(v1.Image)
	ref = o.repository + ":" + o.version
	digest, err = writeArchive(o.out, img, ref, o.version, created)
	return ref, digest, err
}

// binaryLayer is a tar holding only the binary, owned by root and executable by all, so the
// non-root user runs it but cannot change it.
func binaryLayer(bin []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: entrypoint[1:], Mode: 0o755, Size: int64(len(bin)),
		ModTime: mtime, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeArchive writes img as an OCI image layout in a tar (an "oci-archive"), with a
// manifest.json beside it as `docker save` writes, so that older Docker releases load it too.
// The index names the image both ways: org.opencontainers.image.ref.name (the tag) and
// io.containerd.image.name (the full reference).
func writeArchive(out string, img v1.Image, ref, tag string, mtime time.Time) (v1.Hash, error) {
	manifest, err := img.RawManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return v1.Hash{}, err
	}
	configName, err := img.ConfigName()
	if err != nil {
		return v1.Hash{}, err
	}
	layers, err := img.Layers()
	if err != nil {
		return v1.Hash{}, err
	}
	type blob struct {
		digest v1.Hash
		data   []byte
	}
	blobs := []blob{{digest, manifest}, {configName, config}}
	var layerPaths []string
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return v1.Hash{}, err
		}
		rc, err := l.Compressed()
		if err != nil {
			return v1.Hash{}, err
		}
		data, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			return v1.Hash{}, err
		}
		blobs = append(blobs, blob{d, data})
		layerPaths = append(layerPaths, blobPath(d))
	}
	index, err := json.Marshal(v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType: types.OCIManifestSchema1,
			Size:      int64(len(manifest)),
			Digest:    digest,
			Annotations: map[string]string{
				"org.opencontainers.image.ref.name": tag,
				"io.containerd.image.name":          ref,
			},
		}},
	})
	if err != nil {
		return v1.Hash{}, err
	}
	dockerManifest, err := json.Marshal([]map[string]any{{
		"Config":   blobPath(configName),
		"RepoTags": []string{ref},
		"Layers":   layerPaths,
	}})
	if err != nil {
		return v1.Hash{}, err
	}

	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return v1.Hash{}, err
	}
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return v1.Hash{}, err
	}
	tw := tar.NewWriter(f)
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX})
	}
	file := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	werr := errors.Join(
		file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)),
		file("index.json", index),
		file("manifest.json", dockerManifest),
		dir("blobs/"),
		dir("blobs/sha256/"),
	)
	for _, b := range blobs {
		werr = errors.Join(werr, file(blobPath(b.digest), b.data))
	}
	werr = errors.Join(werr, tw.Close(), f.Close())
	if werr != nil {
		_ = os.Remove(tmp)
		return v1.Hash{}, werr
	}
	return digest, os.Rename(tmp, out)
}

func blobPath(h v1.Hash) string {
	return path.Join("blobs", h.Algorithm, h.Hex)
}
