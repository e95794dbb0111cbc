// Package metrics is the daemon's Prometheus instrumentation: counters, gauges and
// histograms with labels, a registry, and the text exposition format (version 0.0.4) for
// /metrics. It replaces prometheus/client_golang, whose package initialisation (and that of
// procfs, protobuf and expvar it pulls in) every patchctl command paid at start-up, the
// daemon's scrape endpoint being its only user.
package metrics

import (
	"bufio"
	"cmp"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// ContentType is what /metrics answers with, as client_golang did.
const ContentType = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"

// Type is a metric family's type line.
type Type string

// The family types patchctl exposes.
const (
	TypeCounter   Type = "counter"
	TypeGauge     Type = "gauge"
	TypeHistogram Type = "histogram"
	TypeSummary   Type = "summary"
)

// Label is one name="value" pair of a sample.
type Label struct{ Name, Value string }

// Sample is one line of a family: the family name plus Suffix (_bucket, _sum, _count or
// nothing), its labels and value.
type Sample struct {
	Suffix string
	Labels []Label
	Value  float64
}

// Family is one metric name with its help, type and samples.
type Family struct {
	Name    string
	Help    string
	Type    Type
	Samples []Sample
}

// Collector produces families at scrape time.
type Collector interface {
	Collect() []Family
}

// Registry is the set of collectors one /metrics endpoint shows.
type Registry struct {
	mu sync.Mutex
	cs []Collector
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

// MustRegister adds collectors. A nil registry ignores them, so that a component can be
// built without being exposed.
func (r *Registry) MustRegister(cs ...Collector) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cs = append(r.cs, cs...)
}

// Gather collects every family, sorted by name; families without samples are left out.
// It panics when two collectors produce the same name: that is a programming error.
func (r *Registry) Gather() []Family {
	r.mu.Lock()
	cs := slices.Clone(r.cs)
	r.mu.Unlock()
	var out []Family
	for _, c := range cs {
		for _, f := range c.Collect() {
			if len(f.Samples) > 0 {
				out = append(out, f)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Family) int { return cmp.Compare(a.Name, b.Name) })
	for i := 1; i < len(out); i++ {
		if out[i].Name == out[i-1].Name {
			panic("metrics: family " + out[i].Name + " collected twice")
		}
	}
	return out
}

// Write writes every family in the text exposition format.
func (r *Registry) Write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, f := range r.Gather() {
		writeFamily(bw, f)
	}
	return bw.Flush()
}

// Handler serves the registry in the text exposition format.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ContentType)
		_ = r.Write(w) // a failed write is the scraper's broken connection
	})
}

func writeFamily(w *bufio.Writer, f Family) {
	w.WriteString("# HELP " + f.Name + " ")
	w.WriteString(escape(f.Help, false))
	w.WriteString("\n# TYPE " + f.Name + " " + string(f.Type) + "\n")
	for _, s := range f.Samples {
		w.WriteString(f.Name + s.Suffix)
		if len(s.Labels) > 0 {
			w.WriteByte('{')
			for i, l := range s.Labels {
				if i > 0 {
					w.WriteByte(',')
				}
				w.WriteString(l.Name + `="` + escape(l.Value, true) + `"`)
			}
			w.WriteByte('}')
		}
		w.WriteByte(' ')
		w.WriteString(formatValue(s.Value))
		w.WriteByte('\n')
	}
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escape(s string, label bool) string {
	if label {
		return labelEscaper.Replace(s)
	}
	return helpEscaper.Replace(s)
}

func formatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// value is a float64 updated atomically.
type value struct{ bits atomic.Uint64 }

func (v *value) load() float64 { return math.Float64frombits(v.bits.Load()) }

func (v *value) set(f float64) { v.bits.Store(math.Float64bits(f)) }

func (v *value) add(f float64) {
	for {
		old := v.bits.Load()
		if v.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+f)) {
			return
		}
	}
}

// Counter only goes up.
type Counter struct{ v value }

// Inc adds 1.
func (c *Counter) Inc() { c.v.add(1) }

// Add adds d, which must not be negative.
func (c *Counter) Add(d float64) {
	if d < 0 {
		panic("metrics: counter decreased")
	}
	c.v.add(d)
}

// Gauge is a value that goes up and down.
type Gauge struct{ v value }

// Set sets the gauge.
func (g *Gauge) Set(f float64) { g.v.set(f) }

// Add adds d (negative to subtract).
func (g *Gauge) Add(d float64) { g.v.add(d) }

// Inc adds 1.
func (g *Gauge) Inc() { g.v.add(1) }

// Histogram counts observations in buckets.
type Histogram struct {
	mu     sync.Mutex
	upper  []float64 // ascending; +Inf is implicit
	counts []uint64  // per bucket, not cumulative; the last is +Inf
	sum    float64
}

// Observe records one observation.
func (h *Histogram) Observe(f float64) {
	i, _ := slices.BinarySearch(h.upper, f) // first bound >= f: buckets are "less or equal"
	h.mu.Lock()
	h.counts[i]++
	h.sum += f
	h.mu.Unlock()
}

// ExponentialBuckets returns n upper bounds: start, start·factor, start·factor², ….
func ExponentialBuckets(start, factor float64, n int) []float64 {
	b := make([]float64, n)
	for i := range b {
		b[i] = start
		start *= factor
	}
	return b
}

// vec is the labelled series of one family, created on first use.
type vec[M any] struct {
	name, help string
	typ        Type
	labels     []string
	newM       func() *M
	samples    func(m *M, labels []Label) []Sample

	mu     sync.Mutex
	series map[string]*series[M]
}

type series[M any] struct {
	labels []Label // sorted by name, as the exposition format shows them
	m      *M
}

func (v *vec[M]) with(values []string) *M {
	if len(values) != len(v.labels) {
		panic("metrics: " + v.name + ": want " + strconv.Itoa(len(v.labels)) + " label values")
	}
	key := strings.Join(values, "\xff")
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.series[key]; ok {
		return s.m
	}
	ls := make([]Label, len(values))
	for i, val := range values {
		ls[i] = Label{v.labels[i], val}
	}
	slices.SortFunc(ls, func(a, b Label) int { return cmp.Compare(a.Name, b.Name) })
	s := &series[M]{labels: ls, m: v.newM()}
	if v.series == nil {
		v.series = map[string]*series[M]{}
	}
	v.series[key] = s
	return s.m
}

// Reset removes every series.
func (v *vec[M]) Reset() {
	v.mu.Lock()
	clear(v.series)
	v.mu.Unlock()
}

// Collect implements Collector.
func (v *vec[M]) Collect() []Family {
	v.mu.Lock()
	all := make([]*series[M], 0, len(v.series))
	for _, s := range v.series {
		all = append(all, s)
	}
	v.mu.Unlock()
	slices.SortFunc(all, func(a, b *series[M]) int { return compareLabels(a.labels, b.labels) })
	f := Family{Name: v.name, Help: v.help, Type: v.typ}
	for _, s := range all {
		f.Samples = append(f.Samples, v.samples(s.m, s.labels)...)
	}
	return []Family{f}
}

func compareLabels(a, b []Label) int {
	for i := range min(len(a), len(b)) {
		if c := cmp.Or(cmp.Compare(a[i].Name, b[i].Name), cmp.Compare(a[i].Value, b[i].Value)); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

// CounterVec is a counter family with labels.
type CounterVec struct{ vec[Counter] }

// NewCounterVec returns a counter family with the given label names.
func NewCounterVec(name, help string, labels ...string) *CounterVec {
	return &CounterVec{vec[Counter]{name: name, help: help, typ: TypeCounter, labels: labels,
		newM: func() *Counter { return &Counter{} },
		samples: func(c *Counter, ls []Label) []Sample {
			return []Sample{{Labels: ls, Value: c.v.load()}}
		}}}
}

// WithLabelValues returns the counter of these label values, in the order of the names.
func (v *CounterVec) WithLabelValues(values ...string) *Counter { return v.with(values) }

// GaugeVec is a gauge family with labels.
type GaugeVec struct{ vec[Gauge] }

// NewGaugeVec returns a gauge family with the given label names.
func NewGaugeVec(name, help string, labels ...string) *GaugeVec {
	return &GaugeVec{vec[Gauge]{name: name, help: help, typ: TypeGauge, labels: labels,
		newM: func() *Gauge { return &Gauge{} },
		samples: func(g *Gauge, ls []Label) []Sample {
			return []Sample{{Labels: ls, Value: g.v.load()}}
		}}}
}

// WithLabelValues returns the gauge of these label values, in the order of the names.
func (v *GaugeVec) WithLabelValues(values ...string) *Gauge { return v.with(values) }

// HistogramVec is a histogram family with labels.
type HistogramVec struct{ vec[Histogram] }

// NewHistogramVec returns a histogram family with the given bucket upper bounds
// (ascending) and label names.
func NewHistogramVec(name, help string, buckets []float64, labels ...string) *HistogramVec {
	if !slices.IsSorted(buckets) {
		panic("metrics: " + name + ": buckets not ascending")
	}
	return &HistogramVec{vec[Histogram]{name: name, help: help, typ: TypeHistogram, labels: labels,
		newM: func() *Histogram {
			return &Histogram{upper: buckets, counts: make([]uint64, len(buckets)+1)}
		},
		samples: histogramSamples}}
}

// WithLabelValues returns the histogram of these label values, in the order of the names.
func (v *HistogramVec) WithLabelValues(values ...string) *Histogram { return v.with(values) }

func histogramSamples(h *Histogram, ls []Label) []Sample {
	h.mu.Lock()
	counts, sum := slices.Clone(h.counts), h.sum
	h.mu.Unlock()
	out := make([]Sample, 0, len(counts)+2)
	var cum uint64
	for i, n := range counts {
		cum += n
		le := "+Inf"
		if i < len(h.upper) {
			le = formatValue(h.upper[i])
		}
		out = append(out, Sample{Suffix: "_bucket", Labels: append(slices.Clip(ls), Label{"le", le}), Value: float64(cum)})
	}
	return append(out, Sample{Suffix: "_sum", Labels: ls, Value: sum}, Sample{Suffix: "_count", Labels: ls, Value: float64(cum)})
}

// GaugeFunc is a gauge without labels whose value is read at scrape time.
type GaugeFunc struct {
	name, help string
	f          func() float64
}

// NewGaugeFunc returns a gauge that calls f at every scrape.
func NewGaugeFunc(name, help string, f func() float64) *GaugeFunc {
	return &GaugeFunc{name: name, help: help, f: f}
}

// Collect implements Collector.
func (g *GaugeFunc) Collect() []Family {
	return []Family{{Name: g.name, Help: g.help, Type: TypeGauge, Samples: []Sample{{Value: g.f()}}}}
}

var (
	_ Collector = (*CounterVec)(nil)
	_ Collector = (*GaugeVec)(nil)
	_ Collector = (*HistogramVec)(nil)
	_ Collector = (*GaugeFunc)(nil)
)
