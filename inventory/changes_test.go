package inventory_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/advisory"
	"github.com/patchctl/patchctl/inventory"
)

// pass is one discovery pass of one host, in the test's shorthand.
type pass struct {
	version   string // "" = unknown this time
	answering bool
	findings  []string
}

func exposure(at int, p pass) inventory.Exposure {
	e := inventory.Exposure{Host: "h", Environment: "prod", At: time.Unix(int64(at), 0), Version: p.version, Answering: p.answering}
	for _, id := range p.findings {
		e.Findings = append(e.Findings, inventory.Finding{ID: id, Severity: advisory.SeverityMedium})
	}
	if !p.answering {
		e.Error = "refused"
	}
	return e
}

func describe(evs []inventory.Event) []string {
	var out []string
	for _, e := range evs {
		s := string(e.Kind)
		switch e.Kind {
		case inventory.VersionChanged:
			s += " " + e.From + "->" + e.To
		case inventory.BecameExposed:
			s += " " + strings.Join(e.Advisories, ",")
		}
		out = append(out, s)
	}
	return out
}

func TestTrack(t *testing.T) {
	up41 := pass{"0.4.1", true, []string{"B"}}
	down41 := pass{"0.4.1", false, []string{"B"}}
	downUnknown := pass{"", false, nil}
	up50 := pass{"0.5.0", true, nil}
	tests := []struct {
		name     string
		passes   []pass
		expected map[string]string
		want     [][]string // events per pass
	}{
		{"first pass exposed, then quiet", []pass{up41, up41, up41},
			nil, [][]string{{"exposed B"}, nil, nil}},
		{"first pass down", []pass{downUnknown, downUnknown},
			nil, [][]string{{"stopped_answering"}, nil}},
		{"down and back once", []pass{up50, downUnknown, downUnknown, up50, up50},
			nil, [][]string{nil, {"stopped_answering"}, nil, {"came_back"}, nil}},
		{"down with -V version", []pass{up41, down41, down41, up41},
			nil, [][]string{{"exposed B"}, {"stopped_answering"}, nil, {"came_back"}}},
		{"unexpected downgrade", []pass{up50, up41, up41},
			nil, [][]string{nil, {"version_changed 0.5.0->0.4.1", "exposed B"}, nil}},
		{"expected upgrade", []pass{up41, up50, up50},
			map[string]string{"h": "0.5.0"}, [][]string{{"exposed B"}, nil, nil}},
		{"unexpected upgrade", []pass{up41, up50},
			map[string]string{"h": "0.5.1"}, [][]string{{"exposed B"}, {"version_changed 0.4.1->0.5.0"}}},
		// The version changed while nobody could see it: still reported, once.
		{"change across an outage", []pass{up50, downUnknown, up41, up41},
			nil, [][]string{nil, {"stopped_answering"}, {"came_back", "version_changed 0.5.0->0.4.1", "exposed B"}, nil}},
		// A feed update adds an advisory for the same version: only the new one is reported.
		{"new advisory", []pass{up41, {"0.4.1", true, []string{"B", "N"}}, {"0.4.1", true, []string{"B", "N"}}},
			nil, [][]string{{"exposed B"}, {"exposed N"}, nil}},
		{"fixed then exposed again", []pass{up41, up50, up41},
			nil, [][]string{{"exposed B"}, {"version_changed 0.4.1->0.5.0"}, {"version_changed 0.5.0->0.4.1", "exposed B"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := map[string]inventory.State{}
			for i, p := range tt.passes {
				next, evs := inventory.Track(state, []inventory.Exposure{exposure(i, p)}, tt.expected)
				if got := describe(evs); !slices.Equal(got, tt.want[i]) {
					t.Errorf("pass %d: events %v, want %v", i, got, tt.want[i])
				}
				for _, e := range evs {
					if e.Host != "h" || e.Environment != "prod" || e.At.Unix() != int64(i) {
						t.Errorf("pass %d: event %+v", i, e)
					}
				}
				state = next
			}
		})
	}
}

func TestTrackState(t *testing.T) {
	s, _ := inventory.Track(nil, []inventory.Exposure{exposure(5, pass{"0.4.1", true, []string{"B"}})}, nil)
	s, evs := inventory.Track(s, []inventory.Exposure{exposure(9, pass{"", false, nil})}, nil)
	got := s["h"]
	if got.Version != "0.4.1" || got.Answering || got.LastAnswered.Unix() != 5 || !slices.Equal(got.Advisories, []string{"B"}) {
		t.Errorf("state = %+v", got)
	}
	if len(evs) != 1 || evs[0].Error != "refused" {
		t.Errorf("events = %+v", evs)
	}
	// Hosts gone from the inventory are dropped from the state.
	s, _ = inventory.Track(s, nil, nil)
	if len(s) != 0 {
		t.Errorf("state = %v", s)
	}
}

func ExampleTrack() {
	prev := map[string]inventory.State{"cache-1": {Version: "0.5.0", Answering: true}}
	cur := []inventory.Exposure{{Host: "cache-1", Version: "0.4.1", Answering: true,
		Findings: []inventory.Finding{{ID: "PATCHCTL-2021-0001", Severity: advisory.SeverityHigh}}}}
	_, events := inventory.Track(prev, cur, nil)
	for _, e := range events {
		fmt.Println(e.Kind, e.From, e.To, e.Advisories, e.Severity)
	}
	// Output:
	// version_changed 0.5.0 0.4.1 [] unknown
	// exposed   [PATCHCTL-2021-0001] high
}
