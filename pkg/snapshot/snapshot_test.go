package snapshot

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/quorumguard/quorumguard/test/framework/etcdnet"
)

// cluster is a real two-member etcd cluster with mutual TLS, holding key=value.
type cluster struct {
	streamer ClientStreamer
	members  []Member
	ids      []uint64
}

const testKey, testValue = "/quorumguard/snapshot-test", "written before the snapshot"

func startCluster(t *testing.T) cluster {
	t.Helper()
	n, ms, tc := etcdnet.StartTest(t, "etcd-0", "etcd-1")
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcdnet.ClientURLs(ms), TLS: tc, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(t.Context(), testKey, testValue); err != nil {
		t.Fatal(err)
	}
	ca, cert, key := n.ClientFiles()
	c := cluster{streamer: ClientStreamer{Files: TLSFiles{CA: ca, Cert: cert, Key: key}}}
	for _, m := range ms {
		c.members = append(c.members, Member{ID: m.ID(), Name: m.Name, ClientURLs: []string{m.ClientURL()}, Healthy: true})
		c.ids = append(c.ids, m.ID())
	}
	return c
}

// taker writes into a fresh directory with a clock that moves a second on each reading, so
// that every snapshot has its own time and none is reused unless a test asks for it.
func (c cluster) taker(t *testing.T) *Taker {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return &Taker{Dir: filepath.Join(t.TempDir(), "snapshots"), Streamer: c.streamer, Fresh: -1,
		clock: func() time.Time { now = now.Add(time.Second); return now }}
}

func (c cluster) request(member uint64) Request {
	return Request{Member: member, Machine: "master-0", Members: c.members}
}

// dirFiles lists every file in dir, temporary ones included.
func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// readKey opens the snapshot's database, without its digest, with bbolt as etcd does, and
// returns the newest value of key in etcd's key bucket.
func readKey(t *testing.T, path, key string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(db, raw[:len(raw)-digestSize], 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := bolt.Open(db, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("bbolt cannot open the snapshot's database: %v", err)
	}
	defer b.Close()
	var value string
	err = b.View(func(tx *bolt.Tx) error {
		bucket := tx.Bucket([]byte("key"))
		if bucket == nil {
			return errors.New("no key bucket")
		}
		return bucket.ForEach(func(_, v []byte) error {
			var kv mvccpb.KeyValue
			if err := proto.Unmarshal(v, &kv); err != nil {
				return err
			}
			if string(kv.Key) == key {
				value = string(kv.Value)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return value
}

// mangled streams the real snapshot, changed by change before it is read.
type mangled struct {
	Streamer
	change func([]byte) []byte
}

func (m mangled) Stream(ctx context.Context, urls []string) (io.ReadCloser, error) {
	rc, err := m.Streamer.Stream(ctx, urls)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	raw, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(m.change(raw))), nil
}

// fullDisk is a temporary file in the snapshot directory whose writes, after the first
// 4 KiB, go to /dev/full: the kernel answers them ENOSPC, as a full volume would.
type fullDisk struct {
	*os.File
	full    *os.File
	written int
}

func (f *fullDisk) Write(p []byte) (int, error) {
	room := min(len(p), max(0, 4096-f.written))
	n, err := f.File.Write(p[:room])
	f.written += n
	if err != nil || room == len(p) {
		return n, err
	}
	m, err := f.full.Write(p[room:])
	return n + m, err
}

func (f *fullDisk) Close() error { return errors.Join(f.full.Close(), f.File.Close()) }

func TestTakeFromRealEtcd(t *testing.T) {
	c := startCluster(t)

	t.Run("a verified snapshot holding the data, streamed from a member other than the one removed", func(t *testing.T) {
		for _, removing := range c.ids {
			tk := c.taker(t)
			res, err := tk.Take(t.Context(), c.request(removing))
			if err != nil {
				t.Fatal(err)
			}
			if res.From == removing || !slices.Contains(c.ids, res.From) {
				t.Errorf("streamed from %x while removing %x; want the other member", res.From, removing)
			}
			if err := VerifyFile(res.Path); err != nil {
				t.Error(err)
			}
			if got := readKey(t, res.Path, testKey); got != testValue {
				t.Errorf("the snapshot's database holds %q for %s; want %q", got, testKey, testValue)
			}
			f, ok := parseName(filepath.Base(res.Path))
			if !ok || f.Member != removing || !strings.HasSuffix(res.Path, "-master-0.db") {
				t.Errorf("file %s does not name member %x and Machine master-0", res.Path, removing)
			}
			if got := dirFiles(t, tk.Dir); len(got) != 1 {
				t.Errorf("directory holds %q; want the one snapshot", got)
			}
		}
	})

	t.Run("the member being removed is used when no other is healthy", func(t *testing.T) {
		tk := c.taker(t)
		req := c.request(c.ids[0])
		req.Members = slices.Clone(req.Members)
		req.Members[1].Healthy = false
		res, err := tk.Take(t.Context(), req)
		if err != nil || res.From != c.ids[0] {
			t.Fatalf("took %+v, %v; want a snapshot from %x", res, err, c.ids[0])
		}
	})

	t.Run("a corrupted or truncated stream is refused and leaves no file", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			change func([]byte) []byte
			stage  string
			// digest says a *DigestError is wanted, otherwise want.
			digest bool
			want   error
		}{
			{"one byte of the database flipped", func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b }, StageVerify, true, nil},
			{"one byte of the digest flipped", func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }, StageVerify, true, nil},
			{"cut short by a whole page: the digest is read from database bytes", func(b []byte) []byte { return b[:len(b)-4096] }, StageVerify, true, nil},
			{"cut short mid-page", func(b []byte) []byte { return b[:len(b)-100] }, StageVerify, false, ErrNoDigest},
			{"without its digest", func(b []byte) []byte { return b[:len(b)-digestSize] }, StageVerify, false, ErrNoDigest},
			{"empty", func([]byte) []byte { return nil }, StageVerify, false, ErrNoDigest},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tk := c.taker(t)
				tk.Streamer = mangled{Streamer: c.streamer, change: tc.change}
				_, err := tk.Take(t.Context(), c.request(c.ids[0]))
				var se *Error
				if !errors.As(err, &se) || se.Stage != tc.stage {
					t.Fatalf("got %v; want a failure at stage %s", err, tc.stage)
				}
				var de *DigestError
				if tc.digest && !errors.As(err, &de) || !tc.digest && !errors.Is(err, tc.want) {
					t.Errorf("got %v; want %v", err, tc.want)
				}
				if got := dirFiles(t, tk.Dir); len(got) != 0 {
					t.Errorf("directory holds %q after a refused snapshot", got)
				}
			})
		}
	})

	t.Run("keep: the newest N stay", func(t *testing.T) {
		tk := c.taker(t)
		tk.Keep = 2
		var paths []string
		for i := range 4 {
			res, err := tk.Take(t.Context(), c.request(c.ids[i%2]))
			if err != nil {
				t.Fatal(err)
			}
			paths = append(paths, filepath.Base(res.Path))
		}
		if got := dirFiles(t, tk.Dir); !slices.Equal(got, paths[2:]) {
			t.Errorf("directory holds %q; want the newest two %q", got, paths[2:])
		}
	})

	t.Run("budget: the oldest are evicted while the total exceeds it", func(t *testing.T) {
		tk := c.taker(t)
		first, err := tk.Take(t.Context(), c.request(c.ids[1]))
		if err != nil {
			t.Fatal(err)
		}
		// Room for two snapshots and a half: the third evicts the first, though keep allows 3.
		tk.Keep, tk.Budget = 3, first.Size*5/2
		var paths []string
		for range 2 {
			res, err := tk.Take(t.Context(), c.request(c.ids[1]))
			if err != nil {
				t.Fatal(err)
			}
			paths = append(paths, filepath.Base(res.Path))
		}
		if got := dirFiles(t, tk.Dir); !slices.Equal(got, paths) {
			t.Errorf("directory holds %q; want %q (the first evicted for the budget)", got, paths)
		}
	})

	t.Run("a snapshot larger than the whole budget fails and keeps the older ones", func(t *testing.T) {
		tk := c.taker(t)
		first, err := tk.Take(t.Context(), c.request(c.ids[0]))
		if err != nil {
			t.Fatal(err)
		}
		tk.Budget = 4096 // less than any etcd database
		_, err = tk.Take(t.Context(), c.request(c.ids[1]))
		var be *BudgetError
		if !errors.As(err, &be) || !strings.Contains(err.Error(), "--snapshot-budget") {
			t.Fatalf("got %v; want a *BudgetError naming --snapshot-budget", err)
		}
		if got := dirFiles(t, tk.Dir); !slices.Equal(got, []string{filepath.Base(first.Path)}) {
			t.Errorf("directory holds %q; want only the older snapshot", got)
		}
	})

	t.Run("a full disk fails the snapshot and leaves no partial file", func(t *testing.T) {
		full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
		if err != nil {
			t.Skipf("no /dev/full: %v", err)
		}
		full.Close()
		tk := c.taker(t)
		var partial string
		tk.create = func(dir, pattern string) (tempFile, error) {
			f, err := os.CreateTemp(dir, pattern)
			if err != nil {
				return nil, err
			}
			partial = f.Name()
			full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
			if err != nil {
				return nil, err
			}
			return &fullDisk{File: f, full: full}, nil
		}
		_, err = tk.Take(t.Context(), c.request(c.ids[0]))
		var se *Error
		if !errors.As(err, &se) || se.Stage != StageWrite || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("got %v; want a write failure with ENOSPC", err)
		}
		if partial == "" {
			t.Fatal("no temporary file was made")
		}
		if got := dirFiles(t, tk.Dir); len(got) != 0 {
			t.Errorf("directory holds %q after the disk filled up", got)
		}
	})

	t.Run("a snapshot for the same member within Fresh is reused", func(t *testing.T) {
		tk := c.taker(t)
		tk.Fresh = time.Minute
		first, err := tk.Take(t.Context(), c.request(c.ids[0]))
		if err != nil {
			t.Fatal(err)
		}
		again, err := tk.Take(t.Context(), c.request(c.ids[0]))
		if err != nil || !again.Reused || again.Path != first.Path {
			t.Errorf("second Take %+v, %v; want %s reused", again, err, first.Path)
		}
		other, err := tk.Take(t.Context(), c.request(c.ids[1]))
		if err != nil || other.Reused {
			t.Errorf("Take for another member %+v, %v; want a new snapshot", other, err)
		}
	})

	t.Run("no healthy voting member fails at once", func(t *testing.T) {
		tk := c.taker(t)
		req := c.request(c.ids[0])
		req.Members = []Member{{ID: 1, ClientURLs: []string{"https://127.0.0.1:1"}, Healthy: true, Learner: true}, {ID: 2, Healthy: true}}
		_, err := tk.Take(t.Context(), req)
		var se *Error
		if !errors.As(err, &se) || se.Stage != StageSource {
			t.Fatalf("got %v; want a failure at stage %s", err, StageSource)
		}
	})
}

func TestMetricsFollowSnapshots(t *testing.T) {
	// The series are checked without etcd: a stream that fails, then one that passes.
	reg := newRegistry(t)
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	tk := &Taker{Dir: t.TempDir(), Metrics: m, Fresh: -1, Streamer: fixed{data: fakeSnapshot(2)}}
	if got := gatheredValue(t, reg, MetricFailures, "stage", StageVerify); got != 0 {
		t.Fatalf("failures start at %v; want 0", got)
	}
	tk.Streamer = fixed{data: fakeSnapshot(2)[:100]}
	if _, err := tk.Take(t.Context(), Request{Member: 1, Members: []Member{{ID: 2, ClientURLs: []string{"x"}, Healthy: true}}}); err == nil {
		t.Fatal("a truncated snapshot was taken")
	}
	if got := gatheredValue(t, reg, MetricFailures, "stage", StageVerify); got != 1 {
		t.Errorf("verify failures %v; want 1", got)
	}
	tk.Streamer = fixed{data: fakeSnapshot(2)}
	res, err := tk.Take(t.Context(), Request{Member: 1, Members: []Member{{ID: 2, ClientURLs: []string{"x"}, Healthy: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := gatheredValue(t, reg, MetricLastSize, "", ""); got != float64(res.Size) {
		t.Errorf("last size %v; want %d", got, res.Size)
	}
	if got := gatheredValue(t, reg, MetricLastSuccess, "", ""); got <= 0 {
		t.Errorf("last success %v; want a time", got)
	}
	if got := gatheredValue(t, reg, MetricRetained, "", ""); got != 1 {
		t.Errorf("retained %v; want 1", got)
	}
}

// fakeSnapshot is pages 4 KiB pages of bytes followed by their digest, shaped as etcd's.
func fakeSnapshot(pages int) []byte {
	db := bytes.Repeat([]byte("page"), pages*1024)
	d := newDigester()
	d.h.Write(db)
	return append(db, d.h.Sum(nil)...)
}

type fixed struct{ data []byte }

func (f fixed) Stream(context.Context, []string) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(bytes.Clone(f.data))), nil
}
