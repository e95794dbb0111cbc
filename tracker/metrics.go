package tracker

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the tracker's Prometheus series. A nil *Metrics records nothing.
type Metrics struct {
	polls         *prometheus.CounterVec
	requests      *prometheus.CounterVec
	notModified   *prometheus.CounterVec
	rateRemaining *prometheus.GaugeVec
}

// NewMetrics registers the tracker's series with reg (nil: not registered anywhere).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		polls: f.NewCounterVec(prometheus.CounterOpts{
			Name: "patchctl_tracker_polls_total",
			Help: "Polls of a release source, by outcome (ok, unchanged, rate_limited, deferred, error).",
		}, []string{"source", "outcome"}),
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "patchctl_tracker_http_requests_total",
			Help: "HTTP requests sent to the GitHub API, by endpoint and status code (error when no answer).",
		}, []string{"endpoint", "code"}),
		notModified: f.NewCounterVec(prometheus.CounterOpts{
			Name: "patchctl_tracker_http_not_modified_total",
			Help: "Conditional requests answered 304 Not Modified (they cost no rate-limit unit).",
		}, []string{"endpoint"}),
		rateRemaining: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "patchctl_tracker_rate_limit_remaining",
			Help: "X-RateLimit-Remaining of the latest answer, by source.",
		}, []string{"source"}),
	}
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
