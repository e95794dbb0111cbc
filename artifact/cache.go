package artifact

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Errors callers may branch on.
var (
	// ErrNoChecksum: a download was asked for without a pinned or published SHA-256.
	ErrNoChecksum = errors.New("no sha256 for the download")
	// ErrTruncated: the server sent less than it announced.
	ErrTruncated = errors.New("download truncated")
	// ErrStalled: no bytes arrived for Cache.StallTimeout.
	ErrStalled = errors.New("download stalled")
)

// ChecksumError reports content whose SHA-256 is not the expected one.
type ChecksumError struct {
	Source string // URL or path
	Want   string
	Got    string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s: sha256 %s, want %s", e.Source, e.Got, e.Want)
}

// HTTPError reports a download answered with a status other than 200.
type HTTPError struct {
	URL        string // credentials redacted
	StatusCode int
	Status     string
}

func (e *HTTPError) Error() string { return fmt.Sprintf("GET %s: %s", e.URL, e.Status) }

// Modes of the cache, whatever the umask: only the daemon's user reads the cache, and
// only binaries it checks with -V are executable.
const (
	modeDir    fs.FileMode = 0o700
	modeData   fs.FileMode = 0o600
	modeBinary fs.FileMode = 0o700
)

// validSum is a blob name: a lowercase hex SHA-256.
// isHexDigest reports a SHA-256 written as 64 hex digits, lowercase only when lower is set.
// (A loop, not a regexp: `[0-9a-f]{64}` compiles to a large program at every start-up.)
func isHexDigest(s string, lower bool) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || !lower && 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// Artifact is a verified nutcracker binary in the cache.
type Artifact struct {
	Path    string `json:"path"`    // executable, under the cache directory; never modified once written
	SHA256  string `json:"sha256"`  // of the binary
	Version string `json:"version"` // as reported by `nutcracker -V`
}

// Cache resolves sources to binaries and keeps every file it fetched or extracted under
// Dir/sha256/<hex>, so a second resolve of a pinned download does not fetch it again.
type Cache struct {
	Dir    string
	Client *http.Client
	Logger *slog.Logger
	// MaxMemberSize caps each archive entry and each download.
	MaxMemberSize int64
	// StallTimeout aborts a download that receives nothing for this long.
	StallTimeout time.Duration
}

// New returns a cache in dir (created on first use; logger may be nil) with an HTTP client that bounds connecting, TLS and waiting for
// response headers; downloads themselves are bounded by ctx and StallTimeout.
func New(dir string, logger *slog.Logger) *Cache {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Cache{
		Dir:           dir,
		Client:        &http.Client{Transport: tr},
		Logger:        logger,
		MaxMemberSize: DefaultMaxMemberSize,
		StallTimeout:  30 * time.Second,
	}
}

// Resolve returns the binary of version from src: fetched (or found in the cache), verified
// against its SHA-256, extracted if src is an archive, and accepted only if it reports
// version. progress, if not nil, receives a carriage-return progress line during downloads
// (see ProgressOutput).
func (c *Cache) Resolve(ctx context.Context, src Source, version string, progress io.Writer) (Artifact, error) {
	if err := src.Validate(); err != nil {
		return Artifact{}, fmt.Errorf("artifact source: %w", err)
	}
	if err := ValidVersion(version); err != nil {
		return Artifact{}, err
	}
	field, tmpl := "url", src.URL
	if src.Path != "" {
		field, tmpl = "path", src.Path
	}
	loc, err := expand(field, tmpl, version)
	if err != nil {
		return Artifact{}, err
	}
	want, err := c.expectedSum(ctx, src, version, loc)
	if err != nil {
		return Artifact{}, err
	}
	mode := modeData
	if src.Kind == KindBinary {
		mode = modeBinary
	}
	var blob string
	if src.URL != "" {
		blob, err = c.download(ctx, loc, want, mode, progress)
	} else {
		blob, err = c.ingestFile(ctx, loc, want, mode)
	}
	if err != nil {
		return Artifact{}, err
	}
	bin := blob
	if src.Kind != KindBinary {
		if bin, err = c.extract(ctx, src, version, blob, redact(loc)); err != nil {
			return Artifact{}, err
		}
	}
	if err := CheckVersion(ctx, bin, version); err != nil {
		// Name what the user gave (a file, a package, a URL), not the cache's copy of it.
		var vm *VersionMismatchError
		if errors.As(err, &vm) {
			vm.Path = redact(loc)
		}
		return Artifact{}, err
	}
	sum := filepath.Base(bin)
	c.Logger.Info("artifact resolved", "version", version, "source", redact(loc), "sha256", sum)
	return Artifact{Path: bin, SHA256: sum, Version: version}, nil
}

// expectedSum returns the pinned or published SHA-256 of loc, or "" for a local file that
// has neither. Downloads must have one.
func (c *Cache) expectedSum(ctx context.Context, src Source, version, loc string) (string, error) {
	if sum, ok := src.SHA256[version]; ok {
		return strings.ToLower(sum), nil
	}
	if src.SHA256Sums == "" {
		if src.URL != "" {
			return "", fmt.Errorf("%s: %w: pin sha256 for %s or set sha256sums", redact(loc), ErrNoChecksum, version)
		}
		return "", nil
	}
	sumsURL, err := expand("sha256sums", src.SHA256Sums, version)
	if err != nil {
		return "", err
	}
	body, err := c.get(ctx, sumsURL)
	if err != nil {
		return "", err
	}
	defer body.Close()
	sums, err := ParseSHA256Sums(io.LimitReader(body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("%s: %w", redact(sumsURL), err)
	}
	name := path.Base(loc)
	if src.URL != "" {
		if u, err := url.Parse(loc); err == nil {
			name = path.Base(u.Path)
		}
	}
	sum, ok := sums[name]
	if !ok {
		return "", fmt.Errorf("%s: %w: no entry for %s", redact(sumsURL), ErrNoChecksum, name)
	}
	return sum, nil
}

// blobPath is where content with the given digest lives.
func (c *Cache) blobPath(sum string) string { return filepath.Join(c.Dir, "sha256", sum) }

// cached reports whether the blob for sum exists and still has that digest; a corrupted one
// is removed so that it is fetched again.
func (c *Cache) cached(ctx context.Context, sum string) bool {
	p := c.blobPath(sum)
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
		return false
	}
	if hex.EncodeToString(h.Sum(nil)) != sum {
		c.Logger.Warn("removing corrupted cache entry", "path", p)
		os.Remove(p)
		return false
	}
	return true
}

func (c *Cache) download(ctx context.Context, rawURL, want string, mode fs.FileMode, progress io.Writer) (string, error) {
	if c.cached(ctx, want) {
		c.Logger.Debug("artifact cached", "url", redact(rawURL), "sha256", want)
		return c.blobPath(want), nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	body, err := c.get(ctx, rawURL)
	if err != nil {
		return "", err
	}
	defer body.Close()
	if body.length > c.MaxMemberSize {
		return "", fmt.Errorf("%s: %d bytes, over the limit of %d", redact(rawURL), body.length, c.MaxMemberSize)
	}
	// A watchdog cancels the request when no bytes arrive for StallTimeout.
	watchdog := time.AfterFunc(c.StallTimeout, func() { cancel(ErrStalled) })
	defer watchdog.Stop()
	var r io.Reader = &stallReader{r: body, reset: func() { watchdog.Reset(c.StallTimeout) }}
	if progress != nil {
		p := newProgress(progress, path.Base(rawURL), body.length)
		defer p.done()
		r = io.TeeReader(r, p)
	}
	r = io.LimitReader(r, c.MaxMemberSize+1)
	c.Logger.Info("downloading artifact", "url", redact(rawURL))
	p, _, err := c.store(ctx, r, want, mode, redact(rawURL))
	switch {
	case err == nil:
		return p, nil
	case errors.Is(context.Cause(ctx), ErrStalled):
		return "", fmt.Errorf("%s: %w: nothing received for %s", redact(rawURL), ErrStalled, c.StallTimeout)
	case errors.Is(err, io.ErrUnexpectedEOF):
		// net/http's report of a body shorter than its Content-Length or a cut chunked body.
		return "", fmt.Errorf("%s: %w", redact(rawURL), ErrTruncated)
	}
	return "", fmt.Errorf("download %s: %w", redact(rawURL), err)
}

type response struct {
	io.ReadCloser
	length int64 // -1 if unknown
}

func (c *Cache) get(ctx context.Context, rawURL string) (*response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", redact(rawURL), err)
	}
	resp, err := c.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download: %w", err) // the client's error names the URL
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, &HTTPError{URL: redact(rawURL), StatusCode: resp.StatusCode, Status: resp.Status}
	}
	return &response{ReadCloser: resp.Body, length: resp.ContentLength}, nil
}

// Ingest stores a binary a client sent (its content, never a path the daemon would open)
// if its SHA-256 is want, and returns it in the cache. It is not executed here: the
// deploy's pre-flight runs it with -V on the host, and refuses it if it is not version.
func (c *Cache) Ingest(ctx context.Context, r io.Reader, want, version string) (Artifact, error) {
	if !validVersion().MatchString(version) {
		return Artifact{}, fmt.Errorf("version %q: not a version", version)
	}
	if !isHexDigest(want, true) {
		return Artifact{}, fmt.Errorf("sha256 %q: not a hex SHA-256", want)
	}
	blob, _, err := c.store(ctx, r, want, modeBinary, "uploaded binary")
	if err != nil {
		return Artifact{}, err
	}
	return Artifact{Path: blob, SHA256: want, Version: version}, nil
}

// Uploaded returns a binary stored by Ingest, or an error if the cache has none with that
// SHA-256.
func (c *Cache) Uploaded(sum, version string) (Artifact, error) {
	if !isHexDigest(sum, true) {
		return Artifact{}, fmt.Errorf("sha256 %q: not a hex SHA-256", sum)
	}
	if _, err := os.Stat(c.blobPath(sum)); err != nil {
		return Artifact{}, fmt.Errorf("no uploaded binary with sha256 %s: %w", sum, err)
	}
	return Artifact{Path: c.blobPath(sum), SHA256: sum, Version: version}, nil
}

func (c *Cache) ingestFile(ctx context.Context, p, want string, mode fs.FileMode) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err // *fs.PathError names the file
	}
	defer f.Close()
	blob, _, err := c.store(ctx, f, want, mode, p)
	return blob, err
}

// extract copies the binary out of the archive blob into the cache.
func (c *Cache) extract(ctx context.Context, src Source, version, blob, from string) (string, error) {
	member := src.Member
	if member == "" {
		member = DefaultDebMember
	}
	member, err := expand("member", member, version)
	if err != nil {
		return "", err
	}
	member, _ = cleanArchivePath(member) // Validate has checked it
	f, err := os.Open(blob)
	if err != nil {
		return "", err
	}
	defer f.Close()
	// The archive is read in a goroutine that streams the member into the cache.
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		var err error
		if src.Kind == KindDeb {
			err = extractFromDeb(f, member, c.MaxMemberSize, pw)
		} else {
			err = extractFromTarball(f, member, c.MaxMemberSize, pw)
		}
		pw.CloseWithError(err)
	}()
	bin, _, err := c.store(ctx, pr, "", modeBinary, from)
	pr.CloseWithError(errors.New("extraction stopped")) // unblocks the goroutine if store gave up
	<-done
	if err != nil {
		return "", fmt.Errorf("%s: %w", from, err)
	}
	return bin, nil
}

// store writes r into the cache under its SHA-256 (temp file, fsync, rename, fsync of the
// directory) and returns its path and the number of bytes read. With want set, content with
// another digest is refused with *ChecksumError and not kept.
func (c *Cache) store(ctx context.Context, r io.Reader, want string, mode fs.FileMode, source string) (_ string, n int64, err error) {
	dir := filepath.Join(c.Dir, "sha256")
	if err := os.MkdirAll(dir, modeDir); err != nil {
		return "", 0, fmt.Errorf("cache: %w", err)
	}
	// Explicit modes: MkdirAll leaves an existing directory (an older, laxer cache) as it is.
	for _, d := range []string{c.Dir, dir} {
		if err := os.Chmod(d, modeDir); err != nil {
			return "", 0, fmt.Errorf("cache: %w", err)
		}
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", 0, fmt.Errorf("cache: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 64<<10)
	n, err = io.Copy(w, ctxReader{ctx, r})
	if err != nil {
		return "", n, err
	}
	if n > c.MaxMemberSize {
		return "", n, fmt.Errorf("%s: over the limit of %d bytes", source, c.MaxMemberSize)
	}
	if err := w.Flush(); err != nil {
		return "", n, fmt.Errorf("cache: %w", err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if want != "" && got != want {
		return "", n, &ChecksumError{Source: source, Want: want, Got: got}
	}
	if err := f.Chmod(mode); err != nil {
		return "", n, fmt.Errorf("cache: %w", err)
	}
	if err := f.Sync(); err != nil {
		return "", n, fmt.Errorf("cache: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", n, fmt.Errorf("cache: %w", err)
	}
	final := c.blobPath(got)
	if err := os.Rename(f.Name(), final); err != nil {
		return "", n, fmt.Errorf("cache: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return "", n, err
	}
	return final, n, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("cache: sync %s: %w", dir, err)
	}
	return nil
}

// ctxReader stops a copy once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if c.ctx.Err() != nil {
		return 0, context.Cause(c.ctx)
	}
	return c.r.Read(p)
}

// stallReader calls reset whenever bytes arrive.
type stallReader struct {
	r     io.Reader
	reset func()
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.reset()
	}
	return n, err
}
