// Package jsonfmt holds the JSON conventions every patchctl output shares (docs/json.md):
// durations are a number of seconds in a key ending in _seconds.
package jsonfmt

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Seconds is a duration written to JSON as seconds, a float (0.000512 for 512µs).
type Seconds time.Duration

// D returns the duration.
func (s Seconds) D() time.Duration { return time.Duration(s) }

// MarshalJSON writes the duration in seconds.
func (s Seconds) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(s).Seconds())
}

// UnmarshalJSON reads seconds, rounded to the nanosecond.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("duration in seconds: %w", err)
	}
	if math.IsNaN(f) || math.Abs(f) > math.MaxInt64/1e9 {
		return fmt.Errorf("duration in seconds out of range: %v", f)
	}
	*s = Seconds(math.Round(f * 1e9))
	return nil
}
