package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quorumguard/quorumguard/pkg/app"
)

// TestSnapshotOptions: the snapshot flags are refused by name when they cannot work, and a
// directory that does not exist yet is made.
func TestSnapshotOptions(t *testing.T) {
	readOnly := filepath.Join(t.TempDir(), "read-only")
	if err := os.Mkdir(readOnly, 0o500); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(*app.Options)
		want   string
		// root says the check cannot hold for root, who writes anywhere.
		root bool
	}{
		{name: "off", change: func(*app.Options) {}},
		{name: "a directory made on the way", change: func(o *app.Options) { o.SnapshotDir = filepath.Join(t.TempDir(), "a", "b") }},
		{name: "keep 0", change: func(o *app.Options) { o.SnapshotKeep = 0 }, want: "--snapshot-keep must be at least 1"},
		{name: "a negative budget", change: func(o *app.Options) { o.SnapshotBudget = -1 }, want: "--snapshot-budget must not be negative"},
		{name: "a file, not a directory", change: func(o *app.Options) { o.SnapshotDir = file }, want: "--snapshot-dir " + file + ": cannot be created"},
		{name: "a directory under a file", change: func(o *app.Options) { o.SnapshotDir = filepath.Join(file, "x") }, want: "--snapshot-dir"},
		{name: "a read-only directory", change: func(o *app.Options) { o.SnapshotDir = readOnly }, want: "--snapshot-dir " + readOnly + ": is not writable", root: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && os.Geteuid() == 0 {
				t.Skip("root writes into a read-only directory")
			}
			o := app.DefaultOptions()
			o.EtcdCA, o.EtcdCert, o.EtcdKey = "ca.crt", "tls.crt", "tls.key"
			tc.change(&o)
			err := o.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v; want %q", err, tc.want)
			}
			if tc.want == "" && o.SnapshotDir != "" {
				if info, err := os.Stat(o.SnapshotDir); err != nil || !info.IsDir() {
					t.Errorf("%s was not made: %v", o.SnapshotDir, err)
				}
				if entries, _ := os.ReadDir(o.SnapshotDir); len(entries) != 0 {
					t.Errorf("the write check left %v", entries)
				}
			}
		})
	}
	o := app.Options{}
	o.Complete()
	if o.SnapshotKeep != app.DefaultOptions().SnapshotKeep || o.SnapshotKeep < 1 {
		t.Errorf("Complete leaves --snapshot-keep at %d", o.SnapshotKeep)
	}
}
