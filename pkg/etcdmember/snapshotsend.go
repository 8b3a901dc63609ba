package etcdmember

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// SnapshotSend is a leader's report of the database snapshots it sends one member, read
// from the leader's own metrics. etcd counts a snapshot's bytes only once it is sent whole,
// so a transfer shows as under way or not, with the size it carries.
type SnapshotSend struct {
	// InFlight says a send is under way.
	InFlight bool
	// Failures and Successes count the sends to the member that failed and that completed
	// since the leader started.
	Failures, Successes uint64
	// Bytes is the size of the leader's database, what a snapshot carries.
	Bytes int64
}

// The leader's metrics of the snapshots it sends, each labelled To="<member ID in hex>".
const (
	metricSnapshotSendInFlight = "etcd_network_snapshot_send_inflights_total"
	metricSnapshotSendFailures = "etcd_network_snapshot_send_failures"
	metricSnapshotSendSuccess  = "etcd_network_snapshot_send_success"
	metricsBodyLimit           = 16 << 20
)

// metricsHTTP is the HTTP client that reads members' metrics, over the etcd client's TLS.
type metricsHTTP struct {
	once sync.Once
	http *http.Client
}

func (c *Client) metricsClient() *http.Client {
	c.metrics.once.Do(func() {
		c.metrics.http = &http.Client{Transport: &http.Transport{TLSClientConfig: c.cfg.TLS.Clone(), MaxIdleConnsPerHost: 1}}
	})
	return c.metrics.http
}

// SnapshotSends reads the metrics a member serves on its client URL (endpoint) and returns,
// by member ID, what it reports of the snapshots it sends: asked of the leader, the only
// member that sends any. Bytes is left zero.
func (c *Client) SnapshotSends(ctx context.Context, endpoint string) (map[uint64]SnapshotSend, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(endpoint, "/")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.metricsClient().Do(req)
	if err != nil {
		return nil, &CallError{Where{Op: "read snapshot sends", Endpoint: endpoint}, err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &CallError{Where{Op: "read snapshot sends", Endpoint: endpoint}, fmt.Errorf("metrics answered %s", resp.Status)}
	}
	out, err := parseSnapshotSends(io.LimitReader(resp.Body, metricsBodyLimit))
	if err != nil {
		return nil, &CallError{Where{Op: "read snapshot sends", Endpoint: endpoint}, err}
	}
	return out, nil
}

// parseSnapshotSends picks the snapshot send metrics out of Prometheus's text format.
func parseSnapshotSends(r io.Reader) (map[uint64]SnapshotSend, error) {
	out := map[uint64]SnapshotSend{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, rest, ok := strings.Cut(line, "{")
		if !ok || name != metricSnapshotSendInFlight && name != metricSnapshotSendFailures && name != metricSnapshotSendSuccess {
			continue
		}
		labels, value, ok := strings.Cut(rest, "}")
		if !ok {
			return nil, fmt.Errorf("malformed metric line %q", line)
		}
		to, ok := label(labels, "To")
		if !ok {
			continue
		}
		id, err := strconv.ParseUint(to, 16, 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: member ID %q: %w", name, to, err)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: value %q: %w", name, strings.TrimSpace(value), err)
		}
		s := out[id]
		switch name {
		case metricSnapshotSendInFlight:
			s.InFlight = v > 0
		case metricSnapshotSendFailures:
			s.Failures = uint64(max(v, 0))
		default:
			s.Successes = uint64(max(v, 0))
		}
		out[id] = s
	}
	return out, sc.Err()
}

// label is the value of one label in a metric's label list (`a="x",b="y"`).
func label(labels, name string) (string, bool) {
	for part := range strings.SplitSeq(labels, ",") {
		k, v, ok := strings.Cut(part, "=")
		if ok && strings.TrimSpace(k) == name {
			return strings.Trim(strings.TrimSpace(v), `"`), true
		}
	}
	return "", false
}
