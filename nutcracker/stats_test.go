package nutcracker_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/nutcracker"
)

func TestParseStatsSample(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "stats-0.5.0.json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := nutcracker.ParseStats(data)
	if err != nil {
		t.Fatal(err)
	}
	if st.Service != "nutcracker" || st.Source != "vm" || st.Version != "0.5.0" || st.Uptime != 11 ||
		st.TotalConnections != 70 || st.CurrConnections != 3 || st.Timestamp.Unix() != 1795312868 {
		t.Errorf("top level = %+v", st)
	}
	if len(st.Pools) != 1 {
		t.Fatalf("pools = %d, want 1", len(st.Pools))
	}
	p := st.Pools[0]
	if p.Name != "alpha" || p.ClientEOF != 64 || p.ClientErr != 2 || p.ServerEjects != 1 || p.ForwardError != 1 {
		t.Errorf("pool = %+v", p)
	}
	var names []string
	for _, s := range p.Servers {
		names = append(names, s.Name)
	}
	if got, want := strings.Join(names, ","), "beta-node,127.0.0.1:16379,127.0.0.1:16399"; got != want {
		t.Errorf("servers = %s, want %s (in the order written)", got, want)
	}
	dead := p.Servers[2]
	if dead.ServerErr != 1 || dead.ServerEjectedAt != 1795312866671101 || dead.Requests != 1 || dead.RequestBytes != 39 {
		t.Errorf("dead server = %+v", dead)
	}
	if b := p.Servers[0]; b.Requests != 27 || b.ResponseBytes != 164 || b.ServerConnections != 1 {
		t.Errorf("beta-node = %+v", b)
	}
}

// Pool and server names are the user's; they may equal counter names.
func TestParseStatsNamesLikeCounters(t *testing.T) {
	in := `{"service":"nutcracker", "source":"h", "version":"0.4.1", "uptime":1, "timestamp":2,
	"total_connections":3, "curr_connections":4,
	"version": {"client_eof":5, "requests": {"requests":6, "server_eof":7}},
	"uptime": {"fragments":8}}`
	st, err := nutcracker.ParseStats([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != "0.4.1" || st.Uptime != 1 || len(st.Pools) != 2 {
		t.Fatalf("stats = %+v", st)
	}
	if p := st.Pools[0]; p.Name != "version" || p.ClientEOF != 5 || len(p.Servers) != 1 ||
		p.Servers[0].Name != "requests" || p.Servers[0].Requests != 6 || p.Servers[0].ServerEOF != 7 {
		t.Errorf("pool 0 = %+v", p)
	}
	if p := st.Pools[1]; p.Name != "uptime" || p.Fragments != 8 || len(p.Servers) != 0 {
		t.Errorf("pool 1 = %+v", p)
	}
}

func TestParseStatsErrors(t *testing.T) {
	sample, err := os.ReadFile(filepath.Join("testdata", "stats-0.5.0.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", nutcracker.ErrMalformed},
		{"garbage", "HTTP/1.1 400 Bad Request\r\n\r\n", nutcracker.ErrMalformed},
		{"truncated", string(sample[:len(sample)/2]), nutcracker.ErrMalformed},
		{"missing last brace", string(sample[:len(sample)-1]), nutcracker.ErrMalformed},
		{"two objects", string(sample) + string(sample), nutcracker.ErrMalformed},
		{"array", `[1,2]`, nutcracker.ErrNotNutcracker},
		{"string", `"nutcracker"`, nutcracker.ErrNotNutcracker},
		{"other service", `{"service":"redis","version":"7.0"}`, nutcracker.ErrNotNutcracker},
		{"no version", `{"service":"nutcracker"}`, nutcracker.ErrNotNutcracker},
		{"version not a string", `{"service":"nutcracker","version":5}`, nutcracker.ErrNotNutcracker},
		{"uptime not a number", `{"service":"nutcracker","version":"0.5.0","uptime":"1"}`, nutcracker.ErrNotNutcracker},
		{"counter float", `{"service":"nutcracker","version":"0.5.0","p":{"client_eof":1.5}}`, nutcracker.ErrNotNutcracker},
		{"array value", `{"service":"nutcracker","version":"0.5.0","p":[]}`, nutcracker.ErrMalformed},
		{"object in server", `{"service":"nutcracker","version":"0.5.0","p":{"s":{"x":{}}}}`, nutcracker.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := nutcracker.ParseStats([]byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseStats = %+v, %v; want %v", st, err, tt.want)
			}
		})
	}
}

func TestFetchStatsFailures(t *testing.T) {
	sample, err := os.ReadFile(filepath.Join("testdata", "stats-0.5.0.json"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(b []byte) func(net.Conn) { return func(c net.Conn) { c.Write(b) } }
	silent := func(c net.Conn) { c.Read(make([]byte, 1)) } // holds until the client gives up
	huge := func(c net.Conn) {
		c.Write([]byte(`{"service":"nutcracker","version":"0.5.0","p":{`))
		chunk := []byte(strings.Repeat(`"s":{"requests":1},`, 1000))
		for n := 0; n <= nutcracker.MaxStatsSize; n += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}
	refused := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}()
	// Each failure but the silent server's happens on its own, so those cases get a deadline
	// they never need (a busy machine may take seconds to move 1 MB); the silent server's
	// case is about the deadline itself, and only checks that FetchStats returns on it.
	const never = testenv.WaitTimeout
	tests := []struct {
		name     string
		addr     string
		deadline time.Duration
		want     error
	}{
		{"garbage", testenv.ServeTCP(t, write([]byte("-ERR unknown command\r\n"))), never, nutcracker.ErrMalformed},
		{"truncated", testenv.ServeTCP(t, write(sample[:300])), never, nutcracker.ErrMalformed},
		{"other json", testenv.ServeTCP(t, write([]byte(`{"status":"ok"}`))), never, nutcracker.ErrNotNutcracker},
		{"never answers", testenv.ServeTCP(t, silent), 300 * time.Millisecond, nutcracker.ErrTimeout},
		{"too large", testenv.ServeTCP(t, huge), never, nutcracker.ErrTooLarge},
		{"refused", refused, never, nutcracker.ErrUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), tt.deadline)
			defer cancel()
			st, err := nutcracker.FetchStats(ctx, tt.addr)
			if !errors.Is(err, tt.want) {
				t.Fatalf("FetchStats = %+v, %v; want %v", st, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.addr) {
				t.Errorf("error %q does not name %s", err, tt.addr)
			}
		})
	}
}

// TestFetchStatsCancel cancels once the server holds the connection, and FetchStats must
// return (the server never answers, so only the cancel can end it).
func TestFetchStatsCancel(t *testing.T) {
	accepted := make(chan struct{}, 1)
	addr := testenv.ServeTCP(t, func(c net.Conn) { accepted <- struct{}{}; c.Read(make([]byte, 1)) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-accepted; cancel() }()
	_, err := nutcracker.FetchStats(ctx, addr)
	if !errors.Is(err, nutcracker.ErrTimeout) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrTimeout and context.Canceled", err)
	}
}

func TestFetchStatsReal(t *testing.T) {
	for _, v := range testenv.Versions {
		t.Run(v, func(t *testing.T) {
			redis := testenv.Redis(t)
			listen := testenv.Addr(testenv.FreePort(t))
			unused := testenv.Addr(testenv.FreePort(t))
			conf := fmt.Sprintf(`alpha:
  listen: %s
  redis: true
  servers:
   - %s:1 primary
beta:
  listen: %s
  servers:
   - 127.0.0.1:11211:1
   - 127.0.0.1:11212:1
`, listen, redis.Addr, unused)
			proxy := testenv.StartNutcracker(t, v, conf, listen)

			c, err := net.DialTimeout("tcp", listen, testenv.WaitTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(testenv.WaitTimeout))
			if _, err := c.Write([]byte("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")); err != nil {
				t.Fatal(err)
			}
			if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "$-1\r\n" {
				t.Fatalf("GET through %s = %q, %v", v, line, err)
			}

			// The snapshot is refreshed every 100 ms; wait for the request and its response to show.
			var st *nutcracker.Stats
			// Wait for the whole exchange: a snapshot can fall between request and response.
			testenv.Eventually(t, "the GET and its response in the stats snapshot", func() bool {
				ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitTimeout)
				defer cancel()
				st, err = nutcracker.FetchStats(ctx, proxy.Stats)
				if err != nil {
					t.Fatal(err)
				}
				return len(st.Pools) == 2 && len(st.Pools[1].Servers) == 1 && st.Pools[1].Servers[0].Responses >= 1
			})
			if st.Version != v || st.Service != "nutcracker" || st.Source == "" {
				t.Errorf("top level = %+v", st)
			}
			if st.Timestamp.IsZero() || st.CurrConnections < 2 || st.TotalConnections < 3 {
				t.Errorf("connections/timestamp = %+v", st)
			}
			// nutcracker writes pools sorted by (name length, bytes).
			if len(st.Pools) != 2 || st.Pools[0].Name != "beta" || st.Pools[1].Name != "alpha" {
				t.Fatalf("pools = %+v", st.Pools)
			}
			beta, alpha := st.Pools[0], st.Pools[1]
			if len(alpha.Servers) != 1 || alpha.Servers[0].Name != "primary" || alpha.Servers[0].Requests < 1 ||
				alpha.Servers[0].Responses < 1 || alpha.Servers[0].ServerConnections != 1 {
				t.Errorf("alpha servers = %+v", alpha.Servers)
			}
			if alpha.ClientConnections != 1 {
				t.Errorf("alpha client_connections = %d, want 1", alpha.ClientConnections)
			}
			// Port 11211 servers are named by host only (ketama naming).
			if len(beta.Servers) != 2 || beta.Servers[0].Name != "127.0.0.1" || beta.Servers[1].Name != "127.0.0.1:11212" {
				t.Errorf("beta servers = %+v", beta.Servers)
			}
		})
	}
}

func TestParseVersionOutput(t *testing.T) {
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"0.5.0", "This is nutcracker-0.5.0\nasync event backend: epoll\n\n", "0.5.0", nil},
		{"0.4.1 CRLF", "This is nutcracker-0.4.1\r\n\n", "0.4.1", nil},
		{"debug build", "This is nutcracker-0.5.0\ndebugging assertions are enabled (--enable-debug=yes|full), nutcracker may be less efficient\n", "0.5.0", nil},
		{"fork", "This is nutcracker-0.5.2-tmg19\n", "0.5.2-tmg19", nil},
		{"no newline", "This is nutcracker-0.4.1", "0.4.1", nil},
		{"empty", "", "", nutcracker.ErrNoVersion},
		{"other program", "redis-server v=7.0.15\n", "", nutcracker.ErrNoVersion},
		{"usage error", "nutcracker: invalid option -- 'Z'\n", "", nutcracker.ErrNoVersion},
		{"no version", "This is nutcracker-\n", "", nutcracker.ErrNoVersion},
		{"trailing text", "This is nutcracker-0.5.0 beta\n", "", nutcracker.ErrNoVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := nutcracker.ParseVersionOutput([]byte(tt.in))
			if got != tt.want || !errors.Is(err, tt.err) {
				t.Errorf("ParseVersionOutput(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestParseVersionOutputReal(t *testing.T) {
	for _, v := range testenv.Versions {
		t.Run(v, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitTimeout)
			defer cancel()
			stderr, err := runVersion(ctx, testenv.Nutcracker(t, v))
			if err != nil {
				t.Fatal(err)
			}
			got, err := nutcracker.ParseVersionOutput(stderr)
			if err != nil || got != v {
				t.Fatalf("ParseVersionOutput(%q) = %q, %v; want %s", stderr, got, err, v)
			}
		})
	}
}

func FuzzParseStats(f *testing.F) {
	sample, err := os.ReadFile(filepath.Join("testdata", "stats-0.5.0.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sample)
	f.Add(sample[:500])
	f.Add([]byte(`{"service":"nutcracker","version":"0.4.1","p":{"s":{}}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := nutcracker.ParseStats(data)
		if err != nil {
			if !errors.Is(err, nutcracker.ErrMalformed) && !errors.Is(err, nutcracker.ErrNotNutcracker) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if st.Service != "nutcracker" || st.Version == "" {
			t.Fatalf("accepted %+v", st)
		}
	})
}

func FuzzParseVersionOutput(f *testing.F) {
	f.Add([]byte("This is nutcracker-0.5.0\nasync event backend: epoll\n\n"))
	f.Add([]byte("This is nutcracker-0.4.1\r\n\n"))
	f.Add([]byte("x\nThis is nutcracker-1\r"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := nutcracker.ParseVersionOutput(data)
		if err != nil {
			if !errors.Is(err, nutcracker.ErrNoVersion) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if v == "" || strings.ContainsAny(v, " \t\r\n") {
			t.Fatalf("version %q", v)
		}
		if !strings.Contains(string(data), "This is nutcracker-"+v) {
			t.Fatalf("version %q not in input", v)
		}
	})
}

func BenchmarkParseStats(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "stats-0.5.0.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := nutcracker.ParseStats(data); err != nil {
			b.Fatal(err)
		}
	}
}
