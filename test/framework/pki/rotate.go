package pki

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Rotator keeps a short-lived certificate in a directory laid out as a Kubernetes Secret
// volume: dir/tls.crt and dir/tls.key are links through dir/..data to a versioned directory,
// and a renewal writes a new versioned directory and swaps ..data in one rename, so a reader
// never sees a certificate with another one's key. Each certificate is valid for Valid and is
// replaced every Every, so a client that keeps the certificate it read first cannot open a
// connection once Valid has passed.
type Rotator struct {
	ca    *CA
	dir   string
	opts  Options
	valid time.Duration

	mu    sync.Mutex
	count int
	stop  chan struct{}
	done  chan struct{}
}

// StartRotating writes the first certificate at once and renews it every every until Stop.
func (ca *CA) StartRotating(dir string, o Options, every, valid time.Duration) (*Rotator, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	r := &Rotator{ca: ca, dir: dir, opts: o, valid: valid, stop: make(chan struct{}), done: make(chan struct{})}
	if err := r.Rotate(); err != nil {
		return nil, err
	}
	for _, f := range []string{"tls.crt", "tls.key"} {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(dir, f)); err != nil {
			return nil, err
		}
	}
	go func() {
		defer close(r.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				_ = r.Rotate() // a failed renewal leaves the last certificate, as a stuck rotator would
			}
		}
	}()
	return r, nil
}

// CertFile and KeyFile are the stable paths a client is configured with.
func (r *Rotator) CertFile() string { return filepath.Join(r.dir, "tls.crt") }

// KeyFile is the key's stable path.
func (r *Rotator) KeyFile() string { return filepath.Join(r.dir, "tls.key") }

// Rotate issues a new certificate, valid from a minute ago for Valid, and swaps it in.
func (r *Rotator) Rotate() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.opts
	o.NotBefore, o.NotAfter = time.Now().Add(-time.Minute), time.Now().Add(r.valid)
	p, err := r.ca.Issue(o)
	if err != nil {
		return err
	}
	version := fmt.Sprintf("..%d", r.count+1)
	vdir := filepath.Join(r.dir, version)
	if err := os.MkdirAll(vdir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(vdir, "tls.crt"), p.CertPEM, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(vdir, "tls.key"), p.KeyPEM, 0o600); err != nil {
		return err
	}
	tmp := filepath.Join(r.dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(version, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(r.dir, "..data")); err != nil {
		return err
	}
	// The previous version stays for a reader that resolved ..data just before the swap;
	// the one before it goes.
	if r.count > 1 {
		_ = os.RemoveAll(filepath.Join(r.dir, fmt.Sprintf("..%d", r.count-1)))
	}
	r.count++
	return nil
}

// Count is how many certificates have been written, the first included.
func (r *Rotator) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

// Stop ends the renewals; the last certificate stays.
func (r *Rotator) Stop() {
	close(r.stop)
	<-r.done
}
