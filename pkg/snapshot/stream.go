package snapshot

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// TLSFiles are the PEM files of the etcd client: the CA that signed the members'
// certificates, the client certificate and its key. They are read at every snapshot, so
// rotated files are used.
type TLSFiles struct {
	CA, Cert, Key string
}

// ClientStreamer streams a snapshot through etcd's client (Maintenance.Snapshot), over a
// client made for that one snapshot and dialling only the one member's client URLs.
type ClientStreamer struct {
	Files TLSFiles
	// DialTimeout bounds the connection to the member (5 s when 0).
	DialTimeout time.Duration
}

// Stream opens the snapshot stream of the member at clientURLs; closing it closes the client.
func (s ClientStreamer) Stream(ctx context.Context, clientURLs []string) (io.ReadCloser, error) {
	info := transport.TLSInfo{CertFile: s.Files.Cert, KeyFile: s.Files.Key, TrustedCAFile: s.Files.CA}
	tc, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("etcd client TLS from %s, %s, %s: %w", s.Files.CA, s.Files.Cert, s.Files.Key, err)
	}
	dial := s.DialTimeout
	if dial == 0 {
		dial = 5 * time.Second
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: slices.Clone(clientURLs), TLS: tc, DialTimeout: dial, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd client for %s: %w", strings.Join(clientURLs, ","), err)
	}
	rc, err := cli.Snapshot(ctx)
	if err != nil {
		cli.Close()
		return nil, err
	}
	return &clientStream{ReadCloser: rc, cli: cli}, nil
}

type clientStream struct {
	io.ReadCloser
	cli *clientv3.Client
}

func (c *clientStream) Close() error {
	err := c.ReadCloser.Close()
	c.cli.Close()
	return err
}
