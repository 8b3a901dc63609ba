package etcdmember

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestClassify(t *testing.T) {
	w := Where{Op: "promote", Endpoint: "https://10.0.0.1:2379", Member: "c (3)"}
	for _, tc := range []struct {
		name      string
		err, last error
		want      string
	}{
		{"a refused connection is unreachable",
			status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 10.0.0.1:2379: connect: connection refused"`), nil,
			"*etcdmember.UnreachableError"},
		{"a deadline after a failed handshake is a certificate rejection",
			context.DeadlineExceeded,
			status.Error(codes.DeadlineExceeded, `latest balancer error: connection error: desc = "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"`),
			"*etcdmember.CertificateError"},
		{"a server alert about our certificate is a certificate rejection",
			status.Error(codes.Unavailable, `connection error: desc = "error reading server preface: remote error: tls: bad certificate"`), nil,
			"*etcdmember.CertificateError"},
		{"a bare deadline is a timeout", context.DeadlineExceeded, nil, "*etcdmember.TimeoutError"},
		{"a handshake that ran out of time is a timeout",
			context.DeadlineExceeded,
			status.Error(codes.DeadlineExceeded, `latest balancer error: connection error: desc = "transport: authentication handshake failed: context deadline exceeded"`),
			"*etcdmember.TimeoutError"},
		{"etcd's own request timeout is a timeout", rpctypes.ErrGRPCTimeout, nil, "*etcdmember.TimeoutError"},
		{"a leader change is an etcd refusal, not a lost endpoint", rpctypes.ErrGRPCLeaderChanged, nil, "*etcdmember.CallError"},
		{"anything else is a call error", errors.New("boom"), nil, "*etcdmember.CallError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(w, tc.err, tc.last)
			if typ := fmt.Sprintf("%T", got); typ != tc.want {
				t.Fatalf("classify = %s (%v), want %s", typ, got, tc.want)
			}
			for _, s := range []string{w.Endpoint, "member c (3)", "promote"} {
				if !strings.Contains(got.Error(), s) {
					t.Fatalf("%q does not name %q", got.Error(), s)
				}
			}
			if again := classify(Where{Op: "other"}, got, nil); again != got { //nolint:errorlint // the very same error value must come back
				t.Fatalf("classifying a classified error changed it to %v", again)
			}
		})
	}
}
