package artifact_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/patchctl/patchctl/artifact"
	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/nutcracker"
)

func newCache(t *testing.T) *artifact.Cache {
	return artifact.New(t.TempDir(), slog.New(slog.DiscardHandler))
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func sum(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// server serves files by URL path and counts requests per path.
type server struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string]string // URL path → local file
	hits  map[string]int
}

func newServer(t testing.TB, files map[string]string) *server {
	s := &server{files: files, hits: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.mu.Unlock()
		p, ok := s.files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, p)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

// assertBinary checks that a resolved artifact is the real nutcracker of its version.
func assertBinary(t *testing.T, c *artifact.Cache, a artifact.Artifact, version string) {
	t.Helper()
	if a.Version != version {
		t.Fatalf("version = %q, want %q", a.Version, version)
	}
	if want := filepath.Join(c.Dir, "sha256", a.SHA256); a.Path != want {
		t.Fatalf("path = %s, want %s", a.Path, want)
	}
	if got, want := sum(t, a.Path), sum(t, testenv.Nutcracker(t, version)); got != a.SHA256 || got != want {
		t.Fatalf("binary sha256 %s (artifact says %s), want the real nutcracker %s", got, a.SHA256, want)
	}
	fi, err := os.Stat(a.Path)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("stat %s: %v, %v; want mode 0700", a.Path, fi, err)
	}
	if err := artifact.CheckVersion(ctx(t), a.Path, version); err != nil {
		t.Fatal(err)
	}
}

func TestResolveDebFromPath(t *testing.T) {
	c := newCache(t)
	src := artifact.Source{Kind: artifact.KindDeb, Path: filepath.Join(testenv.BinDir(), "nutcracker_{{.Version}}.deb")}
	for _, v := range testenv.Versions {
		testenv.Deb(t, v)
		a, err := c.Resolve(ctx(t), src, v, nil)
		if err != nil {
			t.Fatal(err)
		}
		assertBinary(t, c, a, v)
	}
}

func TestResolveDebFromURL(t *testing.T) {
	files := map[string]string{}
	pins := map[string]string{}
	for _, v := range testenv.Versions {
		files["/pool/nutcracker_"+v+".deb"] = testenv.Deb(t, v)
		pins[v] = sum(t, testenv.Deb(t, v))
	}
	srv := newServer(t, files)
	src := artifact.Source{Kind: artifact.KindDeb, URL: srv.URL + "/pool/nutcracker_{{.Version}}.deb", SHA256: pins}
	c := newCache(t)
	for _, v := range testenv.Versions {
		var progress bytes.Buffer
		a, err := c.Resolve(ctx(t), src, v, &progress)
		if err != nil {
			t.Fatal(err)
		}
		assertBinary(t, c, a, v)
		if out := progress.String(); !strings.HasPrefix(out, "\rnutcracker_"+v+".deb") || !strings.HasSuffix(out, "100%\n") {
			t.Fatalf("progress output %q", out)
		}
		// The second resolve finds the package in the cache.
		progress.Reset()
		again, err := c.Resolve(ctx(t), src, v, &progress)
		if err != nil {
			t.Fatal(err)
		}
		if again != a || progress.Len() != 0 {
			t.Fatalf("second resolve = %+v with progress %q, want %+v and no download", again, progress.String(), a)
		}
		if n := srv.count("/pool/nutcracker_" + v + ".deb"); n != 1 {
			t.Fatalf("%d downloads of %s, want 1", n, v)
		}
	}
}

func TestResolveWithSHA256Sums(t *testing.T) {
	dir := t.TempDir()
	var sums strings.Builder
	files := map[string]string{"/SHA256SUMS": filepath.Join(dir, "SHA256SUMS")}
	for _, v := range testenv.Versions {
		fmt.Fprintf(&sums, "%s  nutcracker_%s.deb\n", sum(t, testenv.Deb(t, v)), v)
		files["/nutcracker_"+v+".deb"] = testenv.Deb(t, v)
	}
	if err := os.WriteFile(files["/SHA256SUMS"], []byte(sums.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, files)
	src := artifact.Source{Kind: artifact.KindDeb, URL: srv.URL + "/nutcracker_{{.Version}}.deb", SHA256Sums: srv.URL + "/SHA256SUMS"}
	c := newCache(t)
	a, err := c.Resolve(ctx(t), src, "0.5.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	assertBinary(t, c, a, "0.5.0")

	_, err = c.Resolve(ctx(t), src, "0.6.0", nil)
	if !errors.Is(err, artifact.ErrNoChecksum) || !strings.Contains(err.Error(), "nutcracker_0.6.0.deb") {
		t.Fatalf("err = %v, want ErrNoChecksum naming the file", err)
	}
}

func TestResolveRefuses(t *testing.T) {
	deb041 := testenv.Deb(t, "0.4.1")
	srv := newServer(t, map[string]string{"/nutcracker_0.4.1.deb": deb041})
	debURL := srv.URL + "/nutcracker_{{.Version}}.deb"
	wrongSum := strings.Repeat("ab", 32)

	tests := []struct {
		name    string
		src     artifact.Source
		version string
		check   func(t *testing.T, err error)
	}{
		{"WrongSHA256", artifact.Source{Kind: artifact.KindDeb, URL: debURL, SHA256: map[string]string{"0.4.1": wrongSum}}, "0.4.1",
			func(t *testing.T, err error) {
				var ce *artifact.ChecksumError
				if !errors.As(err, &ce) || ce.Want != wrongSum || ce.Got != sum(t, deb041) {
					t.Fatalf("err = %v, want *ChecksumError", err)
				}
			}},
		{"WrongSHA256LocalFile", artifact.Source{Kind: artifact.KindDeb, Path: deb041, SHA256: map[string]string{"0.4.1": wrongSum}}, "0.4.1",
			func(t *testing.T, err error) {
				if !errors.As(err, new(*artifact.ChecksumError)) {
					t.Fatalf("err = %v, want *ChecksumError", err)
				}
			}},
		{"WrongVersion", artifact.Source{Kind: artifact.KindDeb, Path: deb041}, "0.5.0",
			func(t *testing.T, err error) {
				var ve *artifact.VersionMismatchError
				if !errors.As(err, &ve) || ve.Got != "0.4.1" || ve.Want != "0.5.0" {
					t.Fatalf("err = %v, want *VersionMismatchError 0.4.1 != 0.5.0", err)
				}
				// The message names the file the user gave, not the cache's copy.
				if ve.Path != deb041 || !strings.HasPrefix(err.Error(), deb041+" reports nutcracker 0.4.1") {
					t.Fatalf("err = %v, want it to name %s", err, deb041)
				}
			}},
		{"NoChecksumForDownload", artifact.Source{Kind: artifact.KindDeb, URL: debURL}, "0.4.1",
			func(t *testing.T, err error) {
				if !errors.Is(err, artifact.ErrNoChecksum) {
					t.Fatalf("err = %v, want ErrNoChecksum", err)
				}
			}},
		{"NotFound", artifact.Source{Kind: artifact.KindDeb, URL: debURL, SHA256: map[string]string{"9.9.9": wrongSum}}, "9.9.9",
			func(t *testing.T, err error) {
				var he *artifact.HTTPError
				if !errors.As(err, &he) || he.StatusCode != 404 || !strings.Contains(err.Error(), "/nutcracker_9.9.9.deb: 404 Not Found") {
					t.Fatalf("err = %v, want *HTTPError 404 naming the URL", err)
				}
			}},
		{"MissingLocalFile", artifact.Source{Kind: artifact.KindDeb, Path: filepath.Join(t.TempDir(), "nope.deb")}, "0.4.1",
			func(t *testing.T, err error) {
				if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "nope.deb") {
					t.Fatalf("err = %v, want not-exist naming the file", err)
				}
			}},
		{"NotADeb", artifact.Source{Kind: artifact.KindDeb, Path: testenv.Nutcracker(t, "0.4.1")}, "0.4.1",
			func(t *testing.T, err error) {
				if err == nil || !strings.Contains(err.Error(), "not a Debian package") {
					t.Fatalf("err = %v, want not a Debian package", err)
				}
			}},
		{"BadVersion", artifact.Source{Kind: artifact.KindDeb, Path: deb041}, "../0.4.1",
			func(t *testing.T, err error) {
				if err == nil || !strings.Contains(err.Error(), "not a version") {
					t.Fatalf("err = %v", err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache(t)
			_, err := c.Resolve(ctx(t), tt.src, tt.version, nil)
			tt.check(t, err)
			assertNoTemp(t, c)
		})
	}
}

// assertNoTemp fails if a failed resolve left a temp file in the cache.
func assertNoTemp(t *testing.T, c *artifact.Cache) {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(c.Dir, "sha256"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("temp file %s left in the cache", e.Name())
		}
	}
}

func TestResolveHTTPFailures(t *testing.T) {
	deb := testenv.Deb(t, "0.5.0")
	content, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	pin := map[string]string{"0.5.0": sum(t, deb)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/500/nutcracker.deb":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "/truncated/nutcracker.deb":
			w.Header().Set("Content-Length", fmt.Sprint(len(content)))
			w.Write(content[:len(content)/2])
			// Returning with fewer bytes than announced makes net/http close the connection.
		case "/stall/nutcracker.deb":
			w.Header().Set("Content-Length", fmt.Sprint(len(content)))
			w.Write(content[:1000])
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}
	}))
	defer srv.Close()
	tests := []struct {
		path string
		is   error
		msg  string
	}{
		{"/500/nutcracker.deb", nil, "500 Internal Server Error"},
		{"/truncated/nutcracker.deb", artifact.ErrTruncated, "truncated"},
		{"/stall/nutcracker.deb", artifact.ErrStalled, "stalled"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			c := newCache(t)
			// Only the stalling server needs the stall timeout to end; the others end on their
			// own, and a short timeout would misreport a loaded machine's pause as a stall.
			c.StallTimeout = testenv.WaitTimeout
			if tt.is == artifact.ErrStalled {
				c.StallTimeout = 300 * time.Millisecond
			}
			src := artifact.Source{Kind: artifact.KindDeb, URL: srv.URL + tt.path, SHA256: pin}
			start := time.Now()
			_, err := c.Resolve(ctx(t), src, "0.5.0", nil)
			if err == nil || tt.is != nil && !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), srv.URL+tt.path) {
				t.Fatalf("err = %v, want %v saying %q and naming the URL", err, tt.is, tt.msg)
			}
			if d := time.Since(start); d > testenv.WaitTimeout {
				t.Fatalf("took %s", d)
			}
			assertNoTemp(t, c)
		})
	}
}

func TestResolveBinary(t *testing.T) {
	bin := testenv.Nutcracker(t, "0.5.0")
	srv := newServer(t, map[string]string{"/bin/nutcracker-0.5.0": bin})
	c := newCache(t)
	for name, src := range map[string]artifact.Source{
		"url":  {Kind: artifact.KindBinary, URL: srv.URL + "/bin/nutcracker-{{.Version}}", SHA256: map[string]string{"0.5.0": sum(t, bin)}},
		"path": {Kind: artifact.KindBinary, Path: filepath.Join(testenv.BinDir(), "nutcracker-{{.Version}}")},
	} {
		t.Run(name, func(t *testing.T) {
			a, err := c.Resolve(ctx(t), src, "0.5.0", nil)
			if err != nil {
				t.Fatal(err)
			}
			assertBinary(t, c, a, "0.5.0")
		})
	}
}

func TestResolveTarball(t *testing.T) {
	for _, v := range testenv.Versions {
		bin, err := os.ReadFile(testenv.Nutcracker(t, v))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "twemproxy-"+v+".tar.gz")
		writeTarGz(t, path, []tarEntry{
			{h: tar.Header{Name: "twemproxy-" + v + "/", Typeflag: tar.TypeDir, Mode: 0o755}},
			{h: tar.Header{Name: "twemproxy-" + v + "/README", Typeflag: tar.TypeReg, Mode: 0o644}, body: []byte("readme\n")},
			{h: tar.Header{Name: "twemproxy-" + v + "/sbin/nutcracker", Typeflag: tar.TypeReg, Mode: 0o755}, body: bin},
			{h: tar.Header{Name: "twemproxy-" + v + "/bin/nc", Typeflag: tar.TypeSymlink, Linkname: "../sbin/nutcracker"}},
		})
		c := newCache(t)
		src := artifact.Source{Kind: artifact.KindTarball, Path: filepath.Join(filepath.Dir(path), "twemproxy-{{.Version}}.tar.gz"),
			Member: "twemproxy-{{.Version}}/sbin/nutcracker"}
		a, err := c.Resolve(ctx(t), src, v, nil)
		if err != nil {
			t.Fatal(err)
		}
		assertBinary(t, c, a, v)
	}
}

type tarEntry struct {
	h    tar.Header
	body []byte
}

func writeTarGz(t *testing.T, path string, entries []tarEntry) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	writeTar(t, zw, entries)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeTar(t *testing.T, w io.Writer, entries []tarEntry) {
	t.Helper()
	tw := tar.NewWriter(w)
	for _, e := range entries {
		h := e.h
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCheckVersionRealBinaries(t *testing.T) {
	for _, v := range testenv.Versions {
		bin := testenv.Nutcracker(t, v)
		got, err := artifact.ReportedVersion(ctx(t), bin)
		if err != nil || got != v {
			t.Fatalf("%s: version %q, %v; want %s", bin, got, err, v)
		}
		var ve *artifact.VersionMismatchError
		if err := artifact.CheckVersion(ctx(t), bin, "9.9.9"); !errors.As(err, &ve) || ve.Got != v {
			t.Fatalf("CheckVersion(%s, 9.9.9) = %v", v, err)
		}
	}
	// A program that is not nutcracker.
	if err := artifact.CheckVersion(ctx(t), testenv.LookPath(t, "true"), "0.5.0"); !errors.Is(err, nutcracker.ErrNoVersion) {
		t.Fatalf("err = %v", err)
	}
}

func TestSourceValidate(t *testing.T) {
	ok := strings.Repeat("0", 64)
	tests := []struct {
		src artifact.Source
		err string // "" = valid
	}{
		{artifact.Source{Kind: "deb", URL: "https://mirror.example/nutcracker_{{.Version}}.deb", SHA256: map[string]string{"0.5.0": ok}}, ""},
		{artifact.Source{Kind: "tarball", Path: "/srv/twemproxy-{{.Version}}.tar.gz", Member: "twemproxy-{{.Version}}/nutcracker"}, ""},
		{artifact.Source{Kind: "binary", URL: "http://h/nutcracker", SHA256Sums: "http://h/SHA256SUMS"}, ""},
		{artifact.Source{}, "kind: required"},
		{artifact.Source{Kind: "rpm", Path: "x"}, `kind "rpm"`},
		{artifact.Source{Kind: "deb"}, "url or path: one is required"},
		{artifact.Source{Kind: "deb", URL: "http://h/x", Path: "x"}, "url and path"},
		{artifact.Source{Kind: "deb", URL: "ftp://h/x"}, `url "ftp://h/x"`},
		{artifact.Source{Kind: "deb", URL: "https://user:secret@h/x{{.Version"}, "url: template"},
		{artifact.Source{Kind: "deb", Path: "x-{{.Release}}"}, "path: template"},
		{artifact.Source{Kind: "deb", Path: "x", SHA256Sums: "SHA256SUMS"}, "sha256sums"},
		{artifact.Source{Kind: "deb", Path: "x", SHA256: map[string]string{"0.5.0": "abc"}}, "sha256: 0.5.0"},
		{artifact.Source{Kind: "deb", Path: "x", SHA256: map[string]string{"a/b": ok}}, `sha256: version "a/b"`},
		{artifact.Source{Kind: "binary", Path: "x", Member: "y"}, "member: not allowed"},
		{artifact.Source{Kind: "tarball", Path: "x"}, "member: required"},
		{artifact.Source{Kind: "deb", Path: "x", Member: "../etc/passwd"}, "member:"},
		{artifact.Source{Kind: "deb", Path: "x", Member: "/usr/sbin/nutcracker"}, "member:"},
	}
	for _, tt := range tests {
		err := tt.src.Validate()
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%+v: err = %v, want %q", tt.src, err, tt.err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error leaks a credential: %v", err)
		}
	}
}

func TestProgressOutput(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if w := artifact.ProgressOutput(f); w != nil {
		t.Fatal("progress goes to a regular file")
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if w := artifact.ProgressOutput(null); w != nil {
		t.Fatal("progress goes to a character device that is not a terminal")
	}
}

// An uploaded binary is kept only if it has the digest the client announced, and the
// cache is the daemon user's alone whatever the umask.
func TestIngestAndModes(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	c := newCache(t)
	if err := os.Chmod(c.Dir, 0o755); err != nil { // a cache made by an older, laxer patchctl
		t.Fatal(err)
	}
	bin := testenv.Nutcracker(t, "0.5.0")
	want := sum(t, bin)
	f, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := c.Ingest(ctx(t), f, want, "0.5.0")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Uploaded(want, "0.5.0"); err != nil || got.Path != a.Path || sum(t, a.Path) != want {
		t.Fatalf("Uploaded = %+v, %v; Ingest gave %+v", got, err, a)
	}
	for path, mode := range map[string]os.FileMode{c.Dir: 0o700, filepath.Join(c.Dir, "sha256"): 0o700, a.Path: 0o700} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, %v; want mode %v", path, fi, err, mode)
		}
	}
	other := strings.Repeat("ab", 32)
	_, err = c.Ingest(ctx(t), strings.NewReader("#!/bin/sh\ncat /root/.ssh/id_ed25519\n"), other, "0.5.0")
	var ce *artifact.ChecksumError
	if !errors.As(err, &ce) {
		t.Fatalf("content that is not the announced digest: %v, want a ChecksumError", err)
	}
	if _, err := c.Uploaded(other, "0.5.0"); err == nil {
		t.Fatal("refused content was kept")
	}
	for _, bad := range []string{"", "../../etc/passwd", strings.ToUpper(want)} {
		if _, err := c.Uploaded(bad, "0.5.0"); err == nil {
			t.Errorf("Uploaded(%q) accepted", bad)
		}
	}
}

func TestValidVersion(t *testing.T) {
	for v, ok := range map[string]bool{"0.5.0": true, "0.5.0-RC1": true, "1.2.3+deb1~x_y": true,
		"0.5.0;id": false, "": false, "../0.5.0": false, "-rf": false, "0.5.0 x": false, "$(id)": false} {
		err := artifact.ValidVersion(v)
		if (err == nil) != ok || !ok && !errors.Is(err, artifact.ErrBadVersion) {
			t.Errorf("ValidVersion(%q) = %v", v, err)
		}
	}
}
