package etcdmember

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Where names a call: what it did, the endpoint it went to and the member it was about.
// Endpoint is one client URL, or the client's endpoints joined by "," for a call etcd's
// balancer may have sent to any of them.
type Where struct {
	Op       string
	Endpoint string
	Member   string
}

func (w Where) String() string {
	s := w.Op
	if w.Member != "" {
		s += " member " + w.Member
	}
	return s + " at etcd " + w.Endpoint
}

// UnreachableError: no connection could be made to the endpoint.
type UnreachableError struct {
	Where
	Err error
}

func (e *UnreachableError) Error() string {
	return e.String() + ": unreachable: " + e.Err.Error()
}
func (e *UnreachableError) Unwrap() error { return e.Err }

// CertificateError: the TLS handshake with the endpoint failed on a certificate, ours or
// the server's (unknown authority, expired, wrong name).
type CertificateError struct {
	Where
	Err error
}

func (e *CertificateError) Error() string {
	return e.String() + ": certificate rejected: " + e.Err.Error()
}
func (e *CertificateError) Unwrap() error { return e.Err }

// TimeoutError: the call did not finish in time.
type TimeoutError struct {
	Where
	Err error
}

func (e *TimeoutError) Error() string { return e.String() + ": timed out: " + e.Err.Error() }
func (e *TimeoutError) Unwrap() error { return e.Err }

// CallError is any other failed call, such as a refusal by the etcd server.
type CallError struct {
	Where
	Err error
}

func (e *CallError) Error() string { return e.String() + ": " + e.Err.Error() }
func (e *CallError) Unwrap() error { return e.Err }

// MemberNotFoundError: no member has this ID.
type MemberNotFoundError struct {
	ID       uint64
	Endpoint string
}

func (e *MemberNotFoundError) Error() string {
	s := "etcd member " + strconv.FormatUint(e.ID, 16) + " not found"
	if e.Endpoint != "" {
		s += " at etcd " + e.Endpoint
	}
	return s
}

// UnsafeChangeError is CheckChange's refusal, with the counts before and after the change.
type UnsafeChangeError struct {
	Change        Change
	Before, After Counts
	Reason        string
	// Passes says etcd refused only because the member handling the change has not been
	// connected to enough voting members for its health interval (5 s), as right after a
	// promotion: the refusal passes by itself, and the change is expected to be tried again.
	Passes bool
}

func (e *UnsafeChangeError) Error() string {
	return fmt.Sprintf("unsafe etcd membership change %s: %s (now %s; after %s)", e.Change, e.Reason, e.Before, e.After)
}

// NoQuorumError: the linearizable member list failed, and one member's own view of the
// membership, probed member by member, shows fewer healthy voting members than a quorum.
// etcd can commit nothing until enough of them are back. Counts come from that view;
// Answering is how many voting members answered their Status call at all.
type NoQuorumError struct {
	Where
	Counts    Counts
	Answering int
	// Err is the linearizable list's failure.
	Err error
}

func (e *NoQuorumError) Error() string {
	// Err names the call and its endpoints already.
	return "etcd has no quorum: " + e.Summary() + "; " + e.Err.Error()
}

// Summary is the counts in words, without the failed call.
func (e *NoQuorumError) Summary() string {
	return fmt.Sprintf("%d of %d voting members are healthy and %d are needed, %d answer on their own",
		e.Counts.Healthy, e.Counts.Voters, e.Counts.Quorum, e.Answering)
}
func (e *NoQuorumError) Unwrap() error { return e.Err }

// FencedError: a token larger than the offered one is stored, so the caller is no longer
// the one allowed to change membership.
type FencedError struct {
	Stored, Offered uint64
	// Raw is the stored value when it is not a token this package wrote.
	Raw string
}

func (e *FencedError) Error() string {
	if e.Raw != "" {
		return fmt.Sprintf("fenced: stored fence %q is not a token, offered %d", e.Raw, e.Offered)
	}
	return fmt.Sprintf("fenced: stored token %d is larger than offered token %d", e.Stored, e.Offered)
}

// NotInSyncError is etcd's refusal to promote a learner whose log is not yet in sync with
// the leader's, with the progress read right after. Progress is zero when it could not be
// read.
type NotInSyncError struct {
	Where
	ID       uint64
	Progress Progress
	Err      error
}

func (e *NotInSyncError) Error() string {
	return fmt.Sprintf("%s: learner not in sync with leader (%s): %v", e.Where, e.Progress, e.Err)
}
func (e *NotInSyncError) Unwrap() error { return e.Err }

func isServerError(err, want error) bool {
	return err != nil && rpctypes.ErrorDesc(err) == rpctypes.ErrorDesc(want)
}

// classify turns a failed call into a typed error. last is the last error a single attempt
// saw, which may explain a call that ended on its deadline.
func classify(w Where, err, last error) error {
	if err == nil {
		return nil
	}
	var (
		ue *UnreachableError
		ce *CertificateError
		te *TimeoutError
		xe *CallError
	)
	if errors.As(err, &ue) || errors.As(err, &ce) || errors.As(err, &te) || errors.As(err, &xe) {
		return err
	}
	cause := err
	deadline := errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded
	if last != nil && (deadline || errors.Is(err, context.Canceled)) {
		cause = last
	}
	msg := cause.Error()
	switch {
	case certificateRejected(cause):
		return &CertificateError{w, cause}
	case containsAny(msg, "connection refused", "no route to host", "network is unreachable",
		"connection reset", "broken pipe", "error reading server preface", "transport is closing"):
		return &UnreachableError{w, cause}
	case deadline || isServerError(err, rpctypes.ErrGRPCTimeout) || isServerError(err, rpctypes.ErrGRPCTimeoutDueToLeaderFail) ||
		isServerError(err, rpctypes.ErrGRPCTimeoutDueToConnectionLost):
		return &TimeoutError{w, cause}
	case status.Code(cause) == codes.Unavailable && !strings.Contains(msg, "etcdserver:"):
		return &UnreachableError{w, cause}
	default:
		return &CallError{w, err}
	}
}

// certificateRejected finds a certificate failure in an error chain or, once gRPC has
// flattened it, in the message.
func certificateRejected(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
	)
	if errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &hostname) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "x509:") || (strings.Contains(msg, "tls:") && strings.Contains(msg, "certificate"))
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// StaleError: the change's own reason no longer holds on the state read after the fence
// (see Guard). Nothing was changed; the next pass decides again on what it reads then.
type StaleError struct {
	Op  string
	Err error
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("%s not made: its reason no longer holds on the member list read after the fence: %v", e.Op, e.Err)
}
func (e *StaleError) Unwrap() error { return e.Err }
