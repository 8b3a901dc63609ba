package etcdjoin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// DataMember reads the member ID recorded in an etcd data dir: every WAL file starts with
// the member's and the cluster's IDs. It returns 0 without error when the data dir does not
// exist or holds no WAL (a member that has never run here). It only reads.
func DataMember(dataDir string) (uint64, error) {
	walDir := filepath.Join(dataDir, "member", "wal")
	if !wal.Exist(walDir) {
		return 0, nil
	}
	lg := zap.NewNop()
	snaps, err := wal.ValidSnapshotEntries(lg, walDir)
	if err != nil {
		return 0, fmt.Errorf("read the WAL in %s: %w", walDir, err)
	}
	at := &walpb.Snapshot{}
	if len(snaps) > 0 {
		at = snaps[len(snaps)-1]
	}
	w, err := wal.OpenForRead(lg, walDir, at)
	if err != nil {
		return 0, fmt.Errorf("open the WAL in %s: %w", walDir, err)
	}
	defer func() { _ = w.Close() }()
	// A WAL cut short by a crash ends in a torn record; its metadata is still good.
	raw, _, _, err := w.ReadAll()
	if raw == nil {
		if err == nil {
			err = errors.New("no metadata record")
		}
		return 0, fmt.Errorf("read the WAL in %s: %w", walDir, err)
	}
	var md etcdserverpb.Metadata
	if err := proto.Unmarshal(raw, &md); err != nil {
		return 0, fmt.Errorf("decode the WAL metadata in %s: %w", walDir, err)
	}
	if md.GetNodeID() == 0 {
		return 0, fmt.Errorf("the WAL in %s records member ID 0", walDir)
	}
	return md.GetNodeID(), nil
}

// MoveAside renames dataDir to <dataDir>.stale-<UTC time>, so that nothing is deleted and
// etcd starts from an empty data dir. It returns the new name.
func MoveAside(dataDir string, now time.Time) (string, error) {
	to := fmt.Sprintf("%s.stale-%s", filepath.Clean(dataDir), now.UTC().Format("20060102T150405Z"))
	if _, err := os.Lstat(to); err == nil {
		return "", fmt.Errorf("cannot move %s aside: %s already exists", dataDir, to)
	}
	if err := os.Rename(dataDir, to); err != nil {
		return "", fmt.Errorf("move %s aside: %w", dataDir, err)
	}
	return to, nil
}
