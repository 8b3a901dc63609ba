package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
)

// A snapshot stream is the member's bbolt database followed by the sha256 digest of those
// bytes (etcd's maintenance server sends the digest as the stream's last message). The
// database is a whole number of pages and pages are a multiple of 512 bytes, so a stream
// that carries its digest is 32 bytes past a multiple of 512: etcdutl's restore relies on
// the same arithmetic to tell a snapshot with a digest from a bare database file.
const (
	digestSize = sha256.Size
	sectorSize = 512
)

// ErrNoDigest is a stream whose length shows no digest at its end: it was cut short, or is
// not an etcd snapshot.
var ErrNoDigest = errors.New("no sha256 digest at the end of the snapshot (the stream was cut short, or is not an etcd snapshot)")

// DigestError is a snapshot whose digest does not match its database.
type DigestError struct {
	Want, Got []byte
}

func (e *DigestError) Error() string {
	return fmt.Sprintf("snapshot digest mismatch: the stream carries sha256 %s but its database hashes to %s", hex.EncodeToString(e.Want), hex.EncodeToString(e.Got))
}

// digester hashes everything written to it except the last digestSize bytes, which it holds
// back as the digest the stream claims.
type digester struct {
	h     hash.Hash
	tail  [digestSize]byte
	held  int
	total int64
}

func newDigester() *digester { return &digester{h: sha256.New()} }

func (d *digester) Write(p []byte) (int, error) {
	d.total += int64(len(p))
	if len(p) >= digestSize {
		d.h.Write(d.tail[:d.held])
		d.h.Write(p[:len(p)-digestSize])
		copy(d.tail[:], p[len(p)-digestSize:])
		d.held = digestSize
		return len(p), nil
	}
	if over := d.held + len(p) - digestSize; over > 0 {
		d.h.Write(d.tail[:over])
		copy(d.tail[:], d.tail[over:d.held])
		d.held -= over
	}
	copy(d.tail[d.held:], p)
	d.held += len(p)
	return len(p), nil
}

// check says whether what was written is a database followed by its own digest.
func (d *digester) check() error {
	if d.total < digestSize+sectorSize || d.total%sectorSize != digestSize {
		return fmt.Errorf("%w: %d bytes", ErrNoDigest, d.total)
	}
	if got := d.h.Sum(nil); !bytes.Equal(got, d.tail[:]) {
		return &DigestError{Want: bytes.Clone(d.tail[:]), Got: got}
	}
	return nil
}

// Verify reads a snapshot from r and checks that it ends with the sha256 digest of the
// database before it; it returns the bytes read.
func Verify(r io.Reader) (int64, error) {
	d := newDigester()
	n, err := io.Copy(d, r)
	if err != nil {
		return n, err
	}
	return n, d.check()
}

// VerifyFile is Verify on a file written by Take (or by `etcdctl snapshot save`).
func VerifyFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := Verify(f); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
