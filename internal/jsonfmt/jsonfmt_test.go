package jsonfmt_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/patchctl/patchctl/internal/jsonfmt"
)

func TestSecondsRoundTrip(t *testing.T) {
	for _, d := range []time.Duration{0, 512 * time.Microsecond, 1500 * time.Millisecond, 36 * time.Hour, -time.Second} {
		b, err := json.Marshal(jsonfmt.Seconds(d))
		if err != nil {
			t.Fatal(err)
		}
		var back jsonfmt.Seconds
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if back.D() != d {
			t.Errorf("%v → %s → %v", d, b, back.D())
		}
	}
	if b, _ := json.Marshal(jsonfmt.Seconds(512 * time.Microsecond)); string(b) != "0.000512" {
		t.Errorf("512µs = %s, want 0.000512", b)
	}
	var s jsonfmt.Seconds
	for _, bad := range []string{`"1s"`, `1e300`, `null x`} {
		if json.Unmarshal([]byte(bad), &s) == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
