package snapshot

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The metric names.
const (
	MetricLastSuccess   = "quorumguard_snapshot_last_success_timestamp_seconds"
	MetricLastSize      = "quorumguard_snapshot_last_size_bytes"
	MetricLastDuration  = "quorumguard_snapshot_last_duration_seconds"
	MetricFailures      = "quorumguard_snapshot_failures_total"
	MetricRetained      = "quorumguard_snapshot_retained"
	MetricRetainedBytes = "quorumguard_snapshot_retained_bytes"
)

// Metrics are the snapshot series of one process. A nil *Metrics records nothing.
type Metrics struct {
	lastSuccess, lastSize, lastDuration, retainedFiles, retainedBytes prometheus.Gauge
	failures                                                          *prometheus.CounterVec
}

// NewMetrics registers the series on reg; a series already registered (several controllers
// in one test process) is reused. Every stage of the failures counter starts at 0, so that
// the first failure is an increase Prometheus sees.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	m := &Metrics{
		lastSuccess:   gauge(MetricLastSuccess, "Unix time of the last etcd snapshot taken before a member removal; 0 before the first."),
		lastSize:      gauge(MetricLastSize, "Bytes of the last etcd snapshot taken, its digest included."),
		lastDuration:  gauge(MetricLastDuration, "Seconds the last etcd snapshot took, from the stream's opening to the file's rename."),
		retainedFiles: gauge(MetricRetained, "etcd snapshots kept in --snapshot-dir after the last retention."),
		retainedBytes: gauge(MetricRetainedBytes, "Bytes of the etcd snapshots kept in --snapshot-dir after the last retention."),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricFailures,
			Help: "etcd snapshots that could not be taken, each holding a member removal, by the stage that failed."}, []string{"stage"}),
	}
	var errs []error
	register := func(c prometheus.Collector) prometheus.Collector {
		err := reg.Register(c)
		var are prometheus.AlreadyRegisteredError
		switch {
		case err == nil:
			return c
		case errors.As(err, &are):
			return are.ExistingCollector
		default:
			errs = append(errs, err)
			return c
		}
	}
	m.lastSuccess = register(m.lastSuccess).(prometheus.Gauge)
	m.lastSize = register(m.lastSize).(prometheus.Gauge)
	m.lastDuration = register(m.lastDuration).(prometheus.Gauge)
	m.retainedFiles = register(m.retainedFiles).(prometheus.Gauge)
	m.retainedBytes = register(m.retainedBytes).(prometheus.Gauge)
	m.failures = register(m.failures).(*prometheus.CounterVec)
	if len(errs) > 0 {
		return nil, fmt.Errorf("register snapshot metrics: %w", errors.Join(errs...))
	}
	for _, s := range stages {
		m.failures.WithLabelValues(s)
	}
	return m, nil
}

func (m *Metrics) failed(stage string) {
	if m != nil {
		m.failures.WithLabelValues(stage).Inc()
	}
}

func (m *Metrics) taken(r Result, at time.Time) {
	if m == nil {
		return
	}
	m.lastSuccess.Set(float64(at.UnixNano()) / 1e9)
	m.lastSize.Set(float64(r.Size))
	m.lastDuration.Set(r.Duration.Seconds())
}

func (m *Metrics) retained(files []File, err error) {
	if m == nil || err != nil {
		return
	}
	var total int64
	for _, f := range files {
		total += f.Size
	}
	m.retainedFiles.Set(float64(len(files)))
	m.retainedBytes.Set(float64(total))
}
