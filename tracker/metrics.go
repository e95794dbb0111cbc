package tracker

import "github.com/patchctl/patchctl/internal/metrics"

// Metrics are the tracker's Prometheus series. A nil *Metrics records nothing.
type Metrics struct {
	polls         *metrics.CounterVec
	requests      *metrics.CounterVec
	notModified   *metrics.CounterVec
	rateRemaining *metrics.GaugeVec
}

// NewMetrics registers the tracker's series with reg (nil: not registered anywhere).
func NewMetrics(reg *metrics.Registry) *Metrics {
	m := &Metrics{
		polls: metrics.NewCounterVec("patchctl_tracker_polls_total",
			"Polls of a release source, by outcome (ok, unchanged, rate_limited, deferred, error).", "source", "outcome"),
		requests: metrics.NewCounterVec("patchctl_tracker_http_requests_total",
			"HTTP requests sent to the GitHub API, by endpoint and status code (error when no answer).", "endpoint", "code"),
		notModified: metrics.NewCounterVec("patchctl_tracker_http_not_modified_total",
			"Conditional requests answered 304 Not Modified (they cost no rate-limit unit).", "endpoint"),
		rateRemaining: metrics.NewGaugeVec("patchctl_tracker_rate_limit_remaining",
			"X-RateLimit-Remaining of the latest answer, by source.", "source"),
	}
	reg.MustRegister(m.polls, m.requests, m.notModified, m.rateRemaining)
	return m
}

func (m *Metrics) poll(source, outcome string) {
	if m != nil {
		m.polls.WithLabelValues(source, outcome).Inc()
	}
}

func (m *Metrics) request(endpoint, code string) {
	if m != nil {
		m.requests.WithLabelValues(endpoint, code).Inc()
		if code == "304" {
			m.notModified.WithLabelValues(endpoint).Inc()
		}
	}
}

func (m *Metrics) remaining(source string, n int) {
	if m != nil && n >= 0 {
		m.rateRemaining.WithLabelValues(source).Set(float64(n))
	}
}
