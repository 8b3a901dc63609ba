package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// Member is one etcd member as the controller last observed it.
type Member struct {
	ID         uint64
	Name       string
	ClientURLs []string
	// Healthy says it passed its health probe; Learner that it does not vote.
	Healthy, Learner bool
}

// Request asks for the snapshot taken before Member, of Machine, is removed, from one of
// Members.
type Request struct {
	Member  uint64
	Machine string
	Members []Member
}

// Result is a snapshot on disk.
type Result struct {
	Path string
	Size int64
	// From is the member it was streamed from.
	From uint64
	// Reused says an earlier snapshot for the same member, younger than Taker.Fresh, stands
	// for this one (a removal tried again after etcd refused it, say).
	Reused   bool
	Duration time.Duration
	// Evicted are the files retention deleted.
	Evicted []string
}

// Streamer opens a snapshot stream from one member, given its client URLs.
type Streamer interface {
	Stream(ctx context.Context, clientURLs []string) (io.ReadCloser, error)
}

// Stages of a failure, the label of the failures counter.
const (
	StageSource    = "source"    // no healthy voting member with a client URL
	StageStream    = "stream"    // the stream could not be opened or read
	StageVerify    = "verify"    // the digest is missing or wrong
	StageWrite     = "write"     // the file could not be written, synced or renamed
	StageRetention = "retention" // the directory could not be read, or the budget is too small
)

var stages = []string{StageSource, StageStream, StageVerify, StageWrite, StageRetention}

// Error is a snapshot that was not taken, with the stage that failed.
type Error struct {
	Stage string
	Err   error
}

func (e *Error) Error() string { return "etcd snapshot (" + e.Stage + "): " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Defaults for Taker.
const (
	DefaultKeep    = 3
	DefaultFresh   = 10 * time.Minute
	DefaultTimeout = 10 * time.Minute
)

// tempFile is where a snapshot is written until it is complete.
type tempFile interface {
	io.Writer
	Name() string
	Sync() error
	Close() error
}

// Taker takes snapshots into Dir. One Take runs at a time.
type Taker struct {
	Dir      string
	Streamer Streamer
	// Keep is how many snapshots are kept, newest first (DefaultKeep when 0); Budget, when
	// above 0, is the most bytes they may take together.
	Keep   int
	Budget int64
	// Fresh is how long a snapshot taken for a member stands for the next one asked for the
	// same member (DefaultFresh when 0; negative never reuses one).
	Fresh time.Duration
	// Timeout bounds one snapshot from the first byte to the rename (DefaultTimeout when 0).
	Timeout time.Duration
	Metrics *Metrics
	Log     logr.Logger

	clock func() time.Time
	// create makes the temporary file in dir; os.CreateTemp when nil. Tests inject a file
	// whose writes fail.
	create func(dir, pattern string) (tempFile, error)
	mu     sync.Mutex
}

func (t *Taker) now() time.Time {
	if t.clock != nil {
		return t.clock()
	}
	return time.Now()
}

// Take writes a verified snapshot of etcd into Dir before member req.Member is removed, and
// applies the retention. It returns an *Error when no snapshot could be kept; the removal
// must then wait.
func (t *Taker) Take(ctx context.Context, req Request) (Result, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	start := t.now()
	res, err := t.take(ctx, req)
	var se *Error
	switch {
	case errors.As(err, &se):
		t.Metrics.failed(se.Stage)
	case err != nil:
		err = &Error{Stage: StageWrite, Err: err}
		t.Metrics.failed(StageWrite)
	case !res.Reused:
		res.Duration = t.now().Sub(start)
		t.Metrics.taken(res, t.now())
	}
	return res, err
}

func (t *Taker) take(ctx context.Context, req Request) (Result, error) {
	if err := os.MkdirAll(t.Dir, 0o700); err != nil {
		return Result{}, &Error{Stage: StageWrite, Err: err}
	}
	files, err := t.list()
	if err != nil {
		return Result{}, &Error{Stage: StageRetention, Err: err}
	}
	if r, ok := t.reuse(files, req.Member); ok {
		return r, nil
	}
	t.removeStale()
	sources := Sources(req.Members, req.Member)
	if len(sources) == 0 {
		return Result{}, &Error{Stage: StageSource, Err: errors.New("no healthy voting member with a client URL to stream a snapshot from")}
	}
	timeout := t.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var res Result
	var errs []error
	for _, src := range sources {
		res, err = t.write(ctx, src, req)
		if err == nil {
			break
		}
		cause := err
		var se *Error
		if errors.As(err, &se) {
			cause = se.Err
		}
		errs = append(errs, fmt.Errorf("from member %x (%s): %w", src.ID, strings.Join(src.ClientURLs, ","), cause))
		// Another member's stream would not make a full disk any emptier.
		if se != nil && se.Stage == StageWrite || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		stage := StageStream
		var se *Error
		if errors.As(err, &se) {
			stage = se.Stage
		}
		return Result{}, &Error{Stage: stage, Err: errors.Join(errs...)}
	}
	if res.Evicted, err = t.retain(res); err != nil {
		return Result{}, &Error{Stage: StageRetention, Err: err}
	}
	t.Log.Info("took an etcd snapshot before removing a member", "path", res.Path, "bytes", res.Size,
		"from", fmt.Sprintf("%x", res.From), "member", fmt.Sprintf("%x", req.Member), "machine", req.Machine, "evicted", res.Evicted)
	return res, nil
}

// Sources are the members a snapshot is streamed from, in the order they are tried: the
// healthy voting members with a client URL, the one to be removed last (its database is as
// good as the others', but it is the one about to go away, and may be why it is removed).
func Sources(members []Member, removing uint64) []Member {
	var out, last []Member
	for _, m := range members {
		if !m.Healthy || m.Learner || len(m.ClientURLs) == 0 {
			continue
		}
		if m.ID == removing {
			last = append(last, m)
		} else {
			out = append(out, m)
		}
	}
	return append(out, last...)
}

// reuse finds a snapshot already taken for member within Fresh.
func (t *Taker) reuse(files []File, member uint64) (Result, bool) {
	fresh := t.Fresh
	if fresh == 0 {
		fresh = DefaultFresh
	}
	now := t.now()
	for i := len(files) - 1; i >= 0; i-- {
		f := files[i]
		if f.Member == member && now.Sub(f.Time) < fresh && !f.Time.After(now) {
			return Result{Path: filepath.Join(t.Dir, f.Name), Size: f.Size, Reused: true}, true
		}
	}
	return Result{}, false
}

// write streams one member's snapshot into a temporary file, checks its digest, makes it
// durable and gives it its final name. Whatever fails, no file is left behind.
func (t *Taker) write(ctx context.Context, src Member, req Request) (res Result, err error) {
	stream, err := t.Streamer.Stream(ctx, src.ClientURLs)
	if err != nil {
		return Result{}, &Error{Stage: StageStream, Err: err}
	}
	defer stream.Close()
	create := t.create
	if create == nil {
		create = func(dir, pattern string) (tempFile, error) { return os.CreateTemp(dir, pattern) }
	}
	f, err := create(t.Dir, tempPrefix+"*"+tempSuffix)
	if err != nil {
		return Result{}, &Error{Stage: StageWrite, Err: err}
	}
	closed := false
	defer func() {
		if !closed {
			_ = f.Close()
		}
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	d := newDigester()
	n, err := copyStream(io.MultiWriter(f, d), stream)
	switch {
	case errors.Is(err, errWrite):
		return Result{}, &Error{Stage: StageWrite, Err: fmt.Errorf("write %s: %w", f.Name(), errors.Unwrap(err))}
	case err != nil:
		return Result{}, &Error{Stage: StageStream, Err: fmt.Errorf("after %d bytes: %w", n, err)}
	}
	if err := d.check(); err != nil {
		return Result{}, &Error{Stage: StageVerify, Err: err}
	}
	if err := f.Sync(); err != nil {
		return Result{}, &Error{Stage: StageWrite, Err: fmt.Errorf("sync %s: %w", f.Name(), err)}
	}
	closed = true
	if err := f.Close(); err != nil {
		return Result{}, &Error{Stage: StageWrite, Err: fmt.Errorf("close %s: %w", f.Name(), err)}
	}
	final := filepath.Join(t.Dir, nameFor(t.now(), req.Member, req.Machine))
	if err := os.Rename(f.Name(), final); err != nil {
		return Result{}, &Error{Stage: StageWrite, Err: err}
	}
	// The rename is durable only once the directory is synced.
	if err := syncDir(t.Dir); err != nil {
		_ = os.Remove(final)
		return Result{}, &Error{Stage: StageWrite, Err: fmt.Errorf("sync directory %s: %w", t.Dir, err)}
	}
	return Result{Path: final, Size: n, From: src.ID}, nil
}

// errWrite marks a failure to write, as opposed to one to read the stream.
var errWrite = errors.New("write")

type writeErr struct{ err error }

func (e writeErr) Error() string { return e.err.Error() }
func (e writeErr) Is(target error) bool {
	return target == errWrite
}
func (e writeErr) Unwrap() error { return e.err }

// copyStream copies like io.Copy, telling the writer's failures from the reader's.
func copyStream(dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, 256*1024)
	var n int64
	for {
		r, rerr := src.Read(buf)
		if r > 0 {
			w, werr := dst.Write(buf[:r])
			n += int64(w)
			if werr == nil && w < r {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return n, writeErr{werr}
			}
		}
		if errors.Is(rerr, io.EOF) {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// list reads the snapshots in Dir, oldest first.
func (t *Taker) list() ([]File, error) {
	entries, err := os.ReadDir(t.Dir)
	if err != nil {
		return nil, err
	}
	var out []File
	for _, e := range entries {
		f, ok := parseName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		f.Size = info.Size()
		out = append(out, f)
	}
	return out, nil
}

// removeStale deletes temporary files a crash left, once they are older than any snapshot in
// progress could be.
func (t *Taker) removeStale() {
	entries, err := os.ReadDir(t.Dir)
	if err != nil {
		return
	}
	timeout := t.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tempPrefix) || !strings.HasSuffix(e.Name(), tempSuffix) {
			continue
		}
		if info, err := e.Info(); err == nil && t.now().Sub(info.ModTime()) > timeout {
			_ = os.Remove(filepath.Join(t.Dir, e.Name()))
		}
	}
}

// retain applies the retention to Dir after res was written; when res alone breaks the
// budget it is deleted and the error says so.
func (t *Taker) retain(res Result) ([]string, error) {
	files, err := t.list()
	if err != nil {
		return nil, err
	}
	keep := t.Keep
	if keep == 0 {
		keep = DefaultKeep
	}
	evict, err := retain(files, filepath.Base(res.Path), keep, t.Budget)
	var be *BudgetError
	if errors.As(err, &be) {
		if rerr := os.Remove(res.Path); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	var names []string
	var errs []error
	for _, f := range evict {
		if err := os.Remove(filepath.Join(t.Dir, f.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		names = append(names, f.Name)
	}
	if len(evict) > 0 {
		if err := syncDir(t.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	t.Metrics.retained(t.list())
	// A snapshot that could not be evicted does not make this one any less taken.
	if len(errs) > 0 {
		t.Log.Error(errors.Join(errs...), "could not evict old etcd snapshots")
	}
	return names, nil
}
