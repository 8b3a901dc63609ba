package etcdmember

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"strings"
	"time"
)

const tlsCheckTimeout = time.Second

// classify is the package's classify plus one check: with TLS 1.3 a server refuses a
// client certificate only after the handshake has completed on the client's side, so a
// rejected certificate can show as nothing more than a dropped connection. When a call
// fails that way, a plain TLS connection to each endpoint reads the server's alert.
func (c *Client) classify(ctx context.Context, w Where, err, last error) error {
	err = classify(w, err, last)
	var ue *UnreachableError
	if !errors.As(err, &ue) || !containsAny(ue.Err.Error(), "broken pipe", "connection reset", "EOF", "server preface") {
		return err
	}
	for _, ep := range strings.Split(w.Endpoint, ",") {
		if cerr := c.checkTLS(ctx, ep); cerr != nil {
			w.Endpoint = ep
			return &CertificateError{w, cerr}
		}
	}
	return err
}

// checkTLS connects to endpoint and waits briefly for the server's first word, and
// returns the certificate error it finds, if any.
func (c *Client) checkTLS(ctx context.Context, endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, tlsCheckTimeout)
	defer cancel()
	cfg := c.cfg.TLS.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	cfg.NextProtos = []string{"h2"}
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		if certificateRejected(err) {
			return err
		}
		return nil
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetReadDeadline(deadline)
	if _, err := conn.Read(make([]byte, 1)); err != nil && certificateRejected(err) {
		return err
	}
	return nil
}
