package main

import (
	flag "github.com/spf13/pflag"
	"io"
	"strings"
	"testing"
)

// TestValidateRefusesBadDurations: every duration flag is checked; a negative poll interval
// used to be taken, and a replacement then waited for an unrelated event.
func TestValidateRefusesBadDurations(t *testing.T) {
	base := []string{"--etcd-ca-file=ca", "--etcd-cert-file=c", "--etcd-key-file=k"}
	for _, tc := range []struct {
		args []string
		// refused is a fragment of the error, empty when the flags are fine.
		refused string
	}{
		{nil, ""},
		{[]string{"--poll-interval=-1s"}, "--poll-interval must be positive"},
		{[]string{"--poll-interval=0"}, "--poll-interval must be positive"},
		{[]string{"--hook-held-threshold=0s"}, "--hook-held-threshold must be positive"},
		{[]string{"--learner-start-timeout=-5m"}, "--learner-start-timeout must not be negative"},
		{[]string{"--learner-start-timeout=0"}, ""},
		{[]string{"--retry-period=-2s"}, "--retry-period must be positive"},
		{[]string{"--healthz-stall-timeout=-1m"}, "--healthz-stall-timeout must be at least 30s"},
		{[]string{"--healthz-stall-timeout=5s"}, "--healthz-stall-timeout must be at least 30s"},
		{[]string{"--healthz-stall-timeout=30s"}, ""},
		{[]string{"--lease-duration=15s", "--renew-deadline=20s", "--retry-period=2s"}, "lease timings"},
		{[]string{"--lease-duration=15s", "--renew-deadline=10s", "--retry-period=9s"}, "lease timings"},
		{[]string{"--lease-duration=15s", "--renew-deadline=10s", "--retry-period=2s"}, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var o options
			fs := flag.NewFlagSet("quorumguard", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o.bind(fs)
			if err := fs.Parse(append(base, tc.args...)); err != nil {
				t.Fatal(err)
			}
			err := o.validate()
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
				t.Fatalf("validate = %v; want an error with %q", err, tc.refused)
			}
		})
	}
}
