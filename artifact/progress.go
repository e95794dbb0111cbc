package artifact

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"
)

// ProgressOutput returns f if it is a terminal and nil otherwise, for Resolve's progress
// argument: progress lines are for people watching, not for logs.
func ProgressOutput(f *os.File) io.Writer {
	if f == nil || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return f
}

// progressInterval keeps redraws cheap on fast links.
const progressInterval = 100 * time.Millisecond

// progress redraws one line ("name  12.0 KiB / 88.9 KiB  13%") as bytes pass through Write.
type progress struct {
	out   io.Writer
	name  string
	total int64 // -1 if unknown
	n     int64
	last  time.Time
}

func newProgress(out io.Writer, name string, total int64) *progress {
	return &progress{out: out, name: name, total: total}
}

func (p *progress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if now := time.Now(); now.Sub(p.last) >= progressInterval {
		p.last = now
		p.draw()
	}
	return len(b), nil
}

// done draws the final state and ends the line.
func (p *progress) done() {
	p.draw()
	fmt.Fprintln(p.out)
}

func (p *progress) draw() {
	if p.total > 0 {
		fmt.Fprintf(p.out, "\r%s  %s / %s  %3d%%", p.name, byteSize(p.n), byteSize(p.total), p.n*100/p.total)
		return
	}
	fmt.Fprintf(p.out, "\r%s  %s", p.name, byteSize(p.n))
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
