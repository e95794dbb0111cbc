// Package nutcracker talks to a running nutcracker (twemproxy): its stats port and the
// version banner of `nutcracker -V`.
package nutcracker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Errors callers branch on; FetchStats and ParseStats wrap them together with the cause.
var (
	// ErrUnreachable: nothing accepted the connection.
	ErrUnreachable = errors.New("stats port unreachable")
	// ErrTimeout: the port accepted but did not send a complete answer in time.
	ErrTimeout = errors.New("stats port did not answer in time")
	// ErrTooLarge: the answer exceeded MaxStatsSize.
	ErrTooLarge = errors.New("stats answer too large")
	// ErrMalformed: the answer is not one complete JSON object.
	ErrMalformed = errors.New("malformed stats")
	// ErrNotNutcracker: valid JSON, but not what nutcracker writes.
	ErrNotNutcracker = errors.New("not nutcracker stats")
	// ErrNoVersion: `nutcracker -V` output without the version banner.
	ErrNoVersion = errors.New("no nutcracker version banner")
)

// MaxStatsSize caps a stats answer. Each server adds about 300 bytes, so this allows
// pools totalling well over 10,000 servers.
const MaxStatsSize = 8 << 20

// DefaultTimeout applies to FetchStats when ctx has no deadline.
const DefaultTimeout = 5 * time.Second

// Stats is one snapshot of nutcracker's stats port.
type Stats struct {
	Service          string    `json:"service"`
	Source           string    `json:"source"` // the host name nutcracker runs on
	Version          string    `json:"version"`
	Uptime           int64     `json:"uptime"`    // seconds since the stats module started
	Timestamp        time.Time `json:"timestamp"` // when nutcracker aggregated this snapshot
	TotalConnections int64     `json:"total_connections"`
	CurrConnections  int64     `json:"curr_connections"`
	Pools            []Pool    `json:"pools"` // in the order nutcracker wrote them
}

// Pool holds the counters of one server pool.
type Pool struct {
	Name              string   `json:"name"`
	ClientEOF         int64    `json:"client_eof"`
	ClientErr         int64    `json:"client_err"`
	ClientConnections int64    `json:"client_connections"`
	ServerEjects      int64    `json:"server_ejects"`
	ForwardError      int64    `json:"forward_error"`
	Fragments         int64    `json:"fragments"`
	Servers           []Server `json:"servers"`
}

// Server holds the counters of one backend, named by its hash name.
type Server struct {
	Name              string `json:"name"`
	ServerEOF         int64  `json:"server_eof"`
	ServerErr         int64  `json:"server_err"`
	ServerTimedout    int64  `json:"server_timedout"`
	ServerConnections int64  `json:"server_connections"`
	ServerEjectedAt   int64  `json:"server_ejected_at"` // µs since the epoch, 0 = never
	Requests          int64  `json:"requests"`
	RequestBytes      int64  `json:"request_bytes"`
	Responses         int64  `json:"responses"`
	ResponseBytes     int64  `json:"response_bytes"`
	InQueue           int64  `json:"in_queue"`
	InQueueBytes      int64  `json:"in_queue_bytes"`
	OutQueue          int64  `json:"out_queue"`
	OutQueueBytes     int64  `json:"out_queue_bytes"`
}

// UptimeDuration returns Uptime as a duration.
func (s *Stats) UptimeDuration() time.Duration { return time.Duration(s.Uptime) * time.Second }

// FetchStats connects to nutcracker's stats port at addr and reads the snapshot it writes
// unasked. The whole exchange is bounded by ctx's deadline, or DefaultTimeout without one.
func FetchStats(ctx context.Context, addr string) (*Stats, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		// A ctx that ended (deadline or cancel) while connecting is not an unreachable port.
		if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("read stats %s: %w: %w", addr, ErrTimeout, err)
		}
		return nil, fmt.Errorf("read stats %s: %w: %w", addr, ErrUnreachable, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	// A cancelled (not only expired) ctx must unblock the read too.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	data, err := io.ReadAll(io.LimitReader(conn, MaxStatsSize+1))
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if ctx.Err() != nil {
				err = context.Cause(ctx)
			}
			return nil, fmt.Errorf("read stats %s: %w after %d bytes: %w", addr, ErrTimeout, len(data), err)
		}
		return nil, fmt.Errorf("read stats %s: %w", addr, err)
	}
	if len(data) > MaxStatsSize {
		return nil, fmt.Errorf("read stats %s: %w: more than %d bytes", addr, ErrTooLarge, MaxStatsSize)
	}
	st, err := ParseStats(data)
	if err != nil {
		return nil, fmt.Errorf("read stats %s: %w", addr, err)
	}
	return st, nil
}

// ParseStats parses one stats snapshot. Pool and server names are chosen by the user and may
// equal a counter name, so they are told apart by their value: every object is a pool (at the
// top) or a server (inside a pool), everything else is a counter.
func ParseStats(data []byte) (*Stats, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	p := &parser{dec: dec}
	st, err := p.stats()
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the stats object at byte %d", ErrMalformed, dec.InputOffset())
	}
	if st.Service != "nutcracker" {
		return nil, fmt.Errorf("%w: service is %q", ErrNotNutcracker, st.Service)
	}
	if st.Version == "" {
		return nil, fmt.Errorf("%w: no version", ErrNotNutcracker)
	}
	return st, nil
}

type parser struct {
	dec *json.Decoder
}

func (p *parser) fail(format string, args ...any) error {
	return fmt.Errorf("%w: "+format+" at byte %d", append([]any{ErrMalformed}, append(args, p.dec.InputOffset())...)...)
}

func (p *parser) token() (json.Token, error) {
	t, err := p.dec.Token()
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, p.fail("truncated")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return t, nil
}

// object walks the members of the object whose '{' was just read, calling scalar for
// non-object values and nested after reading a nested object's '{'.
func (p *parser) object(scalar func(key string, v json.Token) error, nested func(key string) error) error {
	for p.dec.More() {
		t, err := p.token()
		if err != nil {
			return err
		}
		key, _ := t.(string)
		v, err := p.token()
		if err != nil {
			return err
		}
		switch v {
		case json.Delim('{'):
			if nested == nil {
				return p.fail("unexpected object %q", key)
			}
			if err := nested(key); err != nil {
				return err
			}
		case json.Delim('['):
			return p.fail("unexpected array %q", key)
		default:
			if err := scalar(key, v); err != nil {
				return err
			}
		}
	}
	_, err := p.token() // '}'
	return err
}

func (p *parser) stats() (*Stats, error) {
	t, err := p.token()
	if err != nil {
		return nil, err
	}
	if t != json.Delim('{') {
		return nil, fmt.Errorf("%w: not a JSON object", ErrNotNutcracker)
	}
	st := &Stats{}
	var ts int64
	err = p.object(func(key string, v json.Token) error {
		switch key {
		case "service":
			return p.str(key, v, &st.Service)
		case "source":
			return p.str(key, v, &st.Source)
		case "version":
			return p.str(key, v, &st.Version)
		case "uptime":
			return p.num(v, &st.Uptime, key)
		case "timestamp":
			return p.num(v, &ts, key)
		case "total_connections":
			return p.num(v, &st.TotalConnections, key)
		case "curr_connections":
			return p.num(v, &st.CurrConnections, key)
		}
		return nil // fields of other builds are not ours to reject
	}, func(key string) error {
		pool, err := p.pool(key)
		if err != nil {
			return err
		}
		st.Pools = append(st.Pools, pool)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if ts != 0 {
		st.Timestamp = time.Unix(ts, 0).UTC()
	}
	return st, nil
}

func (p *parser) pool(name string) (Pool, error) {
	pool := Pool{Name: name}
	err := p.object(func(key string, v json.Token) error {
		if dst := pool.counter(key); dst != nil {
			return p.num(v, dst, name, key)
		}
		return nil
	}, func(key string) error {
		srv, err := p.server(name, key)
		if err != nil {
			return err
		}
		pool.Servers = append(pool.Servers, srv)
		return nil
	})
	return pool, err
}

func (p *parser) server(pool, name string) (Server, error) {
	s := Server{Name: name}
	err := p.object(func(key string, v json.Token) error {
		if dst := s.counter(key); dst != nil {
			return p.num(v, dst, pool, name, key)
		}
		return nil // ≤0.1.20 per-command counters
	}, nil)
	return s, err
}

// counter returns the field a pool-level counter name maps to, or nil.
func (p *Pool) counter(name string) *int64 {
	switch name {
	case "client_eof":
		return &p.ClientEOF
	case "client_err":
		return &p.ClientErr
	case "client_connections":
		return &p.ClientConnections
	case "server_ejects":
		return &p.ServerEjects
	case "forward_error":
		return &p.ForwardError
	case "fragments":
		return &p.Fragments
	}
	return nil
}

// counter returns the field a server-level counter name maps to, or nil.
func (s *Server) counter(name string) *int64 {
	switch name {
	case "server_eof":
		return &s.ServerEOF
	case "server_err":
		return &s.ServerErr
	case "server_timedout":
		return &s.ServerTimedout
	case "server_connections":
		return &s.ServerConnections
	case "server_ejected_at":
		return &s.ServerEjectedAt
	case "requests":
		return &s.Requests
	case "request_bytes":
		return &s.RequestBytes
	case "responses":
		return &s.Responses
	case "response_bytes":
		return &s.ResponseBytes
	case "in_queue":
		return &s.InQueue
	case "in_queue_bytes":
		return &s.InQueueBytes
	case "out_queue":
		return &s.OutQueue
	case "out_queue_bytes":
		return &s.OutQueueBytes
	}
	return nil
}

func (p *parser) str(field string, v json.Token, dst *string) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("%w: %s is %v, want a string", ErrNotNutcracker, field, v)
	}
	*dst = s
	return nil
}

// num stores an integer counter; field names it (pool, server, counter) in errors.
func (p *parser) num(v json.Token, dst *int64, field ...string) error {
	n, ok := v.(json.Number)
	if !ok {
		return fmt.Errorf("%w: %s is %v, want a number", ErrNotNutcracker, strings.Join(field, "."), v)
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s is %s, want an integer", ErrNotNutcracker, strings.Join(field, "."), n)
	}
	*dst = i
	return nil
}

var versionBanner = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?m)^This is nutcracker-(\S+?)\r?$`)
})

// ParseVersionOutput extracts the version from what `nutcracker -V` printed (on stderr).
// Builds up to 0.4.1 end the banner line with "\r".
func ParseVersionOutput(stderr []byte) (string, error) {
	m := versionBanner().FindSubmatch(stderr)
	if m == nil {
		line, _, _ := bytes.Cut(bytes.TrimSpace(stderr), []byte("\n"))
		if len(line) > 80 {
			line = line[:80]
		}
		return "", fmt.Errorf("%w in %q", ErrNoVersion, line)
	}
	return string(m[1]), nil
}
