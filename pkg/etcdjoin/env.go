package etcdjoin

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Env is what etcd starts from, as the environment variables etcd reads.
type Env struct {
	Name           string // ETCD_NAME
	DataDir        string // ETCD_DATA_DIR
	PeerURL        string // ETCD_INITIAL_ADVERTISE_PEER_URLS
	InitialCluster string // ETCD_INITIAL_CLUSTER
	// State is ETCD_INITIAL_CLUSTER_STATE; always "existing": a join never founds a cluster.
	State string
}

func (e Env) lines() []string {
	return []string{
		"ETCD_NAME=" + e.Name,
		"ETCD_DATA_DIR=" + e.DataDir,
		"ETCD_INITIAL_ADVERTISE_PEER_URLS=" + e.PeerURL,
		"ETCD_INITIAL_CLUSTER=" + e.InitialCluster,
		"ETCD_INITIAL_CLUSTER_STATE=" + e.State,
	}
}

// WriteEnv writes the file atomically (a temporary file renamed over it), one KEY=value per
// line with no quoting: it can be sourced by a shell (`set -a; . file`) and read as a
// systemd EnvironmentFile. No value holds a space or a quote.
func WriteEnv(path string, e Env) error {
	for _, l := range e.lines() {
		if strings.ContainsAny(l, " \t\n\"'$`\\") {
			return fmt.Errorf("refusing to write %q to %s: it would need quoting", l, path)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(e.lines(), "\n")+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadEnv reads a file WriteEnv wrote.
func ReadEnv(path string) (Env, error) {
	f, err := os.Open(path)
	if err != nil {
		return Env{}, err
	}
	defer f.Close()
	vals := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok {
			vals[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		return Env{}, err
	}
	e := Env{Name: vals["ETCD_NAME"], DataDir: vals["ETCD_DATA_DIR"], PeerURL: vals["ETCD_INITIAL_ADVERTISE_PEER_URLS"],
		InitialCluster: vals["ETCD_INITIAL_CLUSTER"], State: vals["ETCD_INITIAL_CLUSTER_STATE"]}
	if e.Name == "" || e.InitialCluster == "" || e.State == "" {
		return Env{}, fmt.Errorf("%s lacks ETCD_NAME, ETCD_INITIAL_CLUSTER or ETCD_INITIAL_CLUSTER_STATE", path)
	}
	return e, nil
}

// Cluster parses InitialCluster into name → peer URLs.
func (e Env) Cluster() map[string][]string {
	out := map[string][]string{}
	for _, p := range strings.Split(e.InitialCluster, ",") {
		if n, u, ok := strings.Cut(p, "="); ok {
			out[n] = append(out[n], u)
		}
	}
	return out
}
