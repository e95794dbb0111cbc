package metrics_test

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/patchctl/patchctl/internal/metrics"
)

// scrape serves reg through its handler and parses the answer with Prometheus's own
// text-format parser, so that what we write is what a Prometheus server reads.
func scrape(t *testing.T, reg *metrics.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(reg.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != metrics.ContentType {
		t.Errorf("Content-Type = %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("Prometheus cannot parse our exposition: %v", err)
	}
	return fams
}

// series returns the metric of fam whose labels are exactly the pairs given.
func series(t *testing.T, fams map[string]*dto.MetricFamily, name string, pairs ...string) *dto.Metric {
	t.Helper()
	fam, ok := fams[name]
	if !ok {
		t.Fatalf("family %s missing", name)
	}
next:
	for _, m := range fam.GetMetric() {
		if len(m.GetLabel())*2 != len(pairs) {
			continue
		}
		for _, l := range m.GetLabel() {
			found := false
			for i := 0; i < len(pairs); i += 2 {
				found = found || (pairs[i] == l.GetName() && pairs[i+1] == l.GetValue())
			}
			if !found {
				continue next
			}
		}
		return m
	}
	t.Fatalf("%s%v missing", name, pairs)
	return nil
}

func TestExpositionParsesAsPrometheus(t *testing.T) {
	reg := metrics.NewRegistry()
	c := metrics.NewCounterVec("t_requests_total", "Requests, by \\ path\nand code.", "path", "code")
	g := metrics.NewGaugeVec("t_remaining", "Remaining.", "source")
	h := metrics.NewHistogramVec("t_duration_seconds", "Durations.", metrics.ExponentialBuckets(0.5, 2, 3), "outcome")
	empty := metrics.NewCounterVec("t_unused_total", "Never incremented.", "x")
	reg.MustRegister(c, g, h, empty, metrics.NewGaugeFunc("t_size_bytes", "Size.", func() float64 { return 1e21 }),
		metrics.GoCollector{}, metrics.ProcessCollector{})

	c.WithLabelValues(`/a"b\c`+"\n", "200").Inc()
	c.WithLabelValues(`/a"b\c`+"\n", "200").Add(2.5)
	c.WithLabelValues("/", "500").Inc()
	g.WithLabelValues("acme/proxy").Set(4998)
	g.WithLabelValues("acme/proxy").Add(-1)
	for _, v := range []float64{0.25, 0.5, 0.75, 2, 9} { // 0.5 is in the 0.5 bucket: bounds are inclusive
		h.WithLabelValues("ok").Observe(v)
	}

	fams := scrape(t, reg)
	if fam := fams["t_requests_total"]; fam.GetType() != dto.MetricType_COUNTER || fam.GetHelp() != "Requests, by \\ path\nand code." {
		t.Errorf("counter family = %v", fam)
	}
	if v := series(t, fams, "t_requests_total", "path", `/a"b\c`+"\n", "code", "200").GetCounter().GetValue(); v != 3.5 {
		t.Errorf("escaped series = %v, want 3.5", v)
	}
	if v := series(t, fams, "t_remaining", "source", "acme/proxy").GetGauge().GetValue(); v != 4997 {
		t.Errorf("gauge = %v", v)
	}
	if v := series(t, fams, "t_size_bytes").GetGauge().GetValue(); v != 1e21 {
		t.Errorf("gauge func = %v", v)
	}
	if _, ok := fams["t_unused_total"]; ok {
		t.Error("a family without series is shown")
	}
	hist := series(t, fams, "t_duration_seconds", "outcome", "ok").GetHistogram()
	if hist.GetSampleCount() != 5 || hist.GetSampleSum() != 12.5 {
		t.Errorf("histogram count/sum = %d/%v", hist.GetSampleCount(), hist.GetSampleSum())
	}
	want := []struct{ le, n float64 }{{0.5, 2}, {1, 3}, {2, 4}, {math.Inf(1), 5}}
	got := hist.GetBucket()
	if len(got) != len(want) {
		t.Fatalf("buckets = %v", got)
	}
	for i, b := range got {
		if b.GetUpperBound() != want[i].le || float64(b.GetCumulativeCount()) != want[i].n {
			t.Errorf("bucket %d = le %v: %d, want le %v: %v", i, b.GetUpperBound(), b.GetCumulativeCount(), want[i].le, want[i].n)
		}
	}
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "go_threads", "process_resident_memory_bytes",
		"process_open_fds", "process_cpu_seconds_total", "process_start_time_seconds"} {
		m := series(t, fams, name)
		if v := m.GetGauge().GetValue() + m.GetCounter().GetValue(); !(v > 0) {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	if s := series(t, fams, "go_gc_duration_seconds").GetSummary(); len(s.GetQuantile()) != 5 {
		t.Errorf("gc pause summary = %v", s)
	}
}

func TestWriteOrder(t *testing.T) {
	reg := metrics.NewRegistry()
	c := metrics.NewCounterVec("b_total", "B.", "z", "a")
	reg.MustRegister(c, metrics.NewGaugeFunc("a_gauge", "A.", func() float64 { return 0.25 }))
	c.WithLabelValues("2", "y").Inc()
	c.WithLabelValues("1", "y").Inc()
	c.WithLabelValues("1", "x").Inc()
	var b strings.Builder
	if err := reg.Write(&b); err != nil {
		t.Fatal(err)
	}
	// Families by name; labels by name; series by their labels: the order client_golang wrote.
	want := `# HELP a_gauge A.
# TYPE a_gauge gauge
a_gauge 0.25
# HELP b_total B.
# TYPE b_total counter
b_total{a="x",z="1"} 1
b_total{a="y",z="1"} 1
b_total{a="y",z="2"} 1
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestCollectedTwicePanics(t *testing.T) {
	reg := metrics.NewRegistry()
	reg.MustRegister(metrics.NewGaugeFunc("same", "", func() float64 { return 1 }), metrics.NewGaugeFunc("same", "", func() float64 { return 2 }))
	defer func() {
		if recover() == nil {
			t.Error("two families with one name were written")
		}
	}()
	reg.Gather()
}
