package cli

import (
	"flag"
	"fmt"
	"strconv"
	"time"
)

// Numeric flags are range-checked when parsed, so a bad value is a usage error (exit 2)
// naming the flag, never a panic or a run that exhausts memory.

// intFlag defines an int flag accepting min..max.
func intFlag(fs *flag.FlagSet, p *int, name string, def, min, max int, usage string) {
	*p = def
	fs.Var(&boundedInt{p: p, min: min, max: max}, name, fmt.Sprintf("%s (%d to %d)", usage, min, max))
}

// durationFlag defines a duration flag accepting min..max.
func durationFlag(fs *flag.FlagSet, p *time.Duration, name string, def, min, max time.Duration, usage string) {
	*p = def
	fs.Var(&boundedDuration{p: p, min: min, max: max}, name, fmt.Sprintf("%s (%v to %v)", usage, min, max))
}

type boundedInt struct {
	p        *int
	min, max int
}

func (b *boundedInt) String() string {
	if b == nil || b.p == nil {
		return ""
	}
	return strconv.Itoa(*b.p)
}

func (b *boundedInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("not a whole number")
	}
	if n < b.min || n > b.max {
		return fmt.Errorf("must be between %d and %d", b.min, b.max)
	}
	*b.p = n
	return nil
}

type boundedDuration struct {
	p        *time.Duration
	min, max time.Duration
}

func (b *boundedDuration) String() string {
	if b == nil || b.p == nil {
		return ""
	}
	return b.p.String()
}

func (b *boundedDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("not a duration (like 500ms, 10s, 2m)")
	}
	if d < b.min || d > b.max {
		return fmt.Errorf("must be between %v and %v", b.min, b.max)
	}
	*b.p = d
	return nil
}
