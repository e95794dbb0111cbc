package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/patchctl/patchctl/internal/readfile"
)

// DefaultTimeout bounds connecting and the SSH handshake when Spec.Timeout is zero;
// MaxTimeout is the largest Spec.Timeout accepted.
const (
	DefaultTimeout = 10 * time.Second
	MaxTimeout     = 10 * time.Minute
)

// SSH runs commands on a host over one SSH connection. The commands of an operation go to one
// remote shell that the first command starts (see shellScript), so the login shell starts once
// per operation, not once per command; only a cancel's kill, and stdin beyond maxShellStdin,
// take a session of their own. If the connection breaks (the server restarted, a firewall dropped it), the
// next command dials again; a command that had started is never repeated. The remote user's
// login shell must be a POSIX shell (sh, bash, dash, zsh, ash); a host that cannot keep the
// remote shell gets one session per command (Stats says why). Safe for concurrent use:
// commands that overlap get a shell each.
type SSH struct {
	host         string // address as given, for messages
	spec         Spec
	shellCommand string // starts shellScript, less its marker argument

	mu     sync.Mutex
	conn   *sshConn // nil after Close
	closed bool

	shellMu      sync.Mutex
	idle         []*remoteShell
	noShell      error // why commands take a session each; nil while shells work
	shellsClosed bool

	dials, sessions, shells atomic.Int64
}

var _ Transport = (*SSH)(nil)

// sshConn is one connection; dead is closed when it ends.
type sshConn struct {
	client *ssh.Client
	dead   chan struct{}
}

func newSSHConn(c *ssh.Client) *sshConn {
	conn := &sshConn{client: c, dead: make(chan struct{})}
	go func() { _ = c.Wait(); close(conn.dead) }()
	return conn
}

// SSHStats counts what an SSH transport opened, for benchmarks and operators' figures.
type SSHStats struct {
	Dials    int64 // connections (the first and every reconnect)
	Sessions int64 // sessions: the remote shells, a cancel's kill, stdin beyond maxShellStdin
	Shells   int64 // remote shells started (each also counts as a session)
	// NoShell says why the host could not keep a remote shell, so that every command took a
	// session of its own; empty when shells work.
	NoShell string
}

// Stats returns the counts so far.
func (s *SSH) Stats() SSHStats {
	st := SSHStats{Dials: s.dials.Load(), Sessions: s.sessions.Load(), Shells: s.shells.Load()}
	s.shellMu.Lock()
	if s.noShell != nil {
		st.NoShell = s.noShell.Error()
	}
	s.shellMu.Unlock()
	return st
}

// Typed errors a caller may branch on when DialSSH fails.
var (
	// ErrHostKeyUnknown: known_hosts has no key for the host.
	ErrHostKeyUnknown = errors.New("host key unknown")
	// ErrHostKeyMismatch: the host presented a key other than the one(s) in known_hosts.
	ErrHostKeyMismatch = errors.New("host key mismatch")
	// ErrAuth: the server accepted none of our keys.
	ErrAuth = errors.New("authentication failed")
)

// DialSSH connects and authenticates to spec.Address. Host keys are checked against
// spec.KnownHosts (default ~/.ssh/known_hosts). Authentication uses the key in
// spec.IdentityFile, or if it is empty the ssh-agent's keys and ~/.ssh/id_{ed25519,ecdsa,rsa}.
func DialSSH(ctx context.Context, spec Spec) (*SSH, error) {
	c, err := dialSSH(ctx, spec)
	if err != nil {
		return nil, err
	}
	s := &SSH{host: spec.Address, spec: spec, conn: newSSHConn(c),
		shellCommand: "exec sh -c " + shellQuote([]string{shellScript}) + " sh"}
	s.dials.Add(1)
	return s, nil
}

func dialSSH(ctx context.Context, spec Spec) (*ssh.Client, error) {
	addr := spec.Address
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "22")
	}
	cfg, agentConn, err := clientConfig(spec, addr)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", spec.Address, err)
	}
	if agentConn != nil {
		defer agentConn.Close()
	}
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", spec.Address, err)
	}
	// The handshake has no context of its own: closing the connection when ctx ends (its
	// deadline is the handshake timeout) interrupts it.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	stop()
	if err == nil && ctx.Err() != nil {
		c.Close()
	}
	if ctx.Err() != nil {
		// ctx ended and cut the handshake: report why, not the I/O error.
		return nil, fmt.Errorf("ssh %s: handshake: %w", spec.Address, context.Cause(ctx))
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ssh %s: %w", spec.Address, classifyHandshake(err))
	}
	return ssh.NewClient(c, chans, reqs), nil
}

// current returns the live connection, dialing again if the last one ended.
func (s *SSH) current(ctx context.Context) (*sshConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, net.ErrClosed
	}
	select {
	case <-s.conn.dead:
	default:
		return s.conn, nil
	}
	s.conn.client.Close()
	c, err := dialSSH(ctx, s.spec)
	if err != nil {
		return nil, fmt.Errorf("reconnect: %w", err)
	}
	s.dials.Add(1)
	s.conn = newSSHConn(c)
	return s.conn, nil
}

// newSession opens a session. If the connection turns out to be broken it dials again, once:
// a session that could not be opened ran nothing, so opening it again is safe.
func (s *SSH) newSession(ctx context.Context) (*ssh.Session, *sshConn, error) {
	for attempt := 0; ; attempt++ {
		c, err := s.current(ctx)
		if err != nil {
			return nil, nil, err
		}
		sess, err := c.open(ctx)
		if err == nil {
			s.sessions.Add(1)
			return sess, c, nil
		}
		if attempt > 0 || ctx.Err() != nil || !c.broken(ctx) {
			return nil, nil, fmt.Errorf("new session: %w", err)
		}
	}
}

// open opens a session, giving up when ctx ends: a connection whose peer vanished without a
// reset never answers. A session that arrives after that is closed.
func (c *sshConn) open(ctx context.Context) (*ssh.Session, error) {
	type opened struct {
		sess *ssh.Session
		err  error
	}
	ch := make(chan opened, 1)
	go func() {
		sess, err := c.client.NewSession()
		ch <- opened{sess, err}
	}()
	select {
	case o := <-ch:
		return o.sess, o.err
	case <-ctx.Done():
		go func() {
			if o := <-ch; o.sess != nil {
				o.sess.Close()
			}
		}()
		return nil, context.Cause(ctx)
	}
}

// broken reports whether the connection has ended or no longer answers a keepalive.
func (c *sshConn) broken(ctx context.Context) bool {
	ch := make(chan error, 1)
	go func() {
		_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
		ch <- err
	}()
	select {
	case err := <-ch:
		if err != nil {
			c.client.Close() // so that current sees it dead
			<-c.dead
		}
		return err != nil
	case <-c.dead:
		return true
	case <-ctx.Done():
		return false
	}
}

// clientConfig builds the handshake configuration; the closer, if not nil, is an ssh-agent
// connection to close after the handshake.
func clientConfig(spec Spec, addr string) (*ssh.ClientConfig, io.Closer, error) {
	home, _ := os.UserHomeDir()
	known := spec.KnownHosts
	if known == "" {
		known = filepath.Join(home, ".ssh", "known_hosts")
	}
	hostKeys, err := knownhosts.New(known)
	if err != nil {
		return nil, nil, fmt.Errorf("known_hosts: %w", err)
	}
	name := spec.User
	if name == "" {
		u, err := user.Current()
		if err != nil {
			return nil, nil, fmt.Errorf("user: %w", err)
		}
		name = u.Username
	}
	keys, agentConn, err := signers(spec.IdentityFile, home)
	if err != nil {
		return nil, nil, err
	}
	return &ssh.ClientConfig{
		User:              name,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(keys...)},
		HostKeyCallback:   hostKeys,
		HostKeyAlgorithms: hostKeyAlgorithms(hostKeys, addr),
	}, agentConn, nil
}

// hostKeyAlgorithms lists the algorithms of the keys known_hosts holds for addr, so that the
// server is asked for a key we can check: x/crypto prefers ECDSA, and a host that also has one
// would otherwise be refused when only its ed25519 key is known. It asks the callback with a
// key that cannot match and reads the known keys from the mismatch it reports.
func hostKeyAlgorithms(cb ssh.HostKeyCallback, addr string) []string {
	var probe probeKey
	err := cb(addr, &net.TCPAddr{IP: net.IPv4zero}, probe)
	var keyErr *knownhosts.KeyError
	if !errors.As(err, &keyErr) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range keyErr.Want {
		for _, a := range algorithmsForKey(k.Key.Type()) {
			if !seen[a] {
				seen[a] = true
				algos = append(algos, a)
			}
		}
	}
	return algos
}

func algorithmsForKey(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// probeKey is a public key no known_hosts entry matches.
type probeKey struct{}

func (probeKey) Type() string                        { return "patchctl-probe" }
func (probeKey) Marshal() []byte                     { return []byte("patchctl-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe key") }

// signers returns the keys to offer: the key in file alone if it is set; otherwise the keys
// of the ssh-agent at $SSH_AUTH_SOCK, then those default key files that exist and are not
// encrypted. The closer, if not nil, releases the agent once the handshake is over.
func signers(file, home string) ([]ssh.Signer, io.Closer, error) {
	if file != "" {
		s, err := parseKeyFile(file)
		if err != nil {
			return nil, nil, fmt.Errorf("identity_file: %w", err)
		}
		return []ssh.Signer{s}, nil, nil
	}
	var keys []ssh.Signer
	var agentConn io.Closer
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if conn, err := net.DialTimeout("unix", sock, 2*time.Second); err == nil {
			agentConn = conn
			if s, err := agent.NewClient(conn).Signers(); err == nil {
				keys = append(keys, s...)
			}
		}
	}
	var tried []string
	for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		f := filepath.Join(home, ".ssh", n)
		tried = append(tried, f)
		s, err := parseKeyFile(f)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errEncrypted) {
			continue // an agent may hold the unlocked key
		}
		if err != nil {
			if agentConn != nil {
				agentConn.Close()
			}
			return nil, nil, err
		}
		keys = append(keys, s)
	}
	if len(keys) == 0 {
		if agentConn != nil {
			agentConn.Close()
		}
		return nil, nil, fmt.Errorf("identity_file: not set, no key in ssh-agent, and none of %s is an unencrypted key", strings.Join(tried, ", "))
	}
	return keys, agentConn, nil
}

var errEncrypted = errors.New("key is encrypted with a passphrase; use an unencrypted deploy key or ssh-agent")

// maxKeySize caps a private key file; an RSA-16384 key is about 12 KiB.
const maxKeySize = 64 << 10

func parseKeyFile(f string) (ssh.Signer, error) {
	pem, err := readfile.Read(f, maxKeySize)
	if err != nil {
		return nil, err // *fs.PathError names the file
	}
	signer, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return nil, fmt.Errorf("%s: %w", f, errEncrypted)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f, err)
	}
	return signer, nil
}

// classifyHandshake turns x/crypto's handshake errors into ones a person can act on.
func classifyHandshake(err error) error {
	var keyErr *knownhosts.KeyError
	if errors.As(err, &keyErr) {
		if len(keyErr.Want) == 0 {
			return fmt.Errorf("%w: not in known_hosts (add it with ssh-keyscan after checking its fingerprint)", ErrHostKeyUnknown)
		}
		var known []string
		for _, k := range keyErr.Want {
			known = append(known, fmt.Sprintf("%s:%d", k.Filename, k.Line))
		}
		return fmt.Errorf("%w: the host presented a key other than the one in %s: possible man-in-the-middle, or the host was reinstalled",
			ErrHostKeyMismatch, strings.Join(known, ", "))
	}
	if strings.Contains(err.Error(), "unable to authenticate") {
		return fmt.Errorf("%w: the server accepted no key: %w", ErrAuth, err)
	}
	return fmt.Errorf("handshake: %w", err)
}

// Run runs argv, shell-quoted, in the remote shell; stdin is read to its end and sent before
// the command starts (beyond maxShellStdin it is streamed in a session of its own). A command
// killed by a signal reports the shell's status for it, 128+signal. Cancelling ctx kills the
// remote command.
func (s *SSH) Run(ctx context.Context, argv []string, stdin io.Reader) (Result, error) {
	if len(argv) == 0 {
		return Result{}, fmt.Errorf("ssh %s: run: empty command", s.host)
	}
	stdout, stderr, status, err := s.command(ctx, argv, stdin)
	res := Result{Stdout: stdout, Stderr: stderr}
	if err != nil {
		return res, fmt.Errorf("ssh %s: run %s: %w", s.host, argv[0], err)
	}
	if status != 0 {
		return res, fmt.Errorf("ssh %s: %w", s.host, newExitError(argv, status, stderr))
	}
	return res, nil
}

// session runs argv in a new session. The remote shell first reports its pid on stderr and
// then execs argv, so the command leads its own process group (sshd starts each session with
// setsid). Cancelling ctx kills that group from a second session: OpenSSH ignores signal
// requests in sessions it does not privilege-separate, such as root's.
func (s *SSH) session(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	sess, _, err := s.newSession(ctx)
	if err != nil {
		return err
	}
	defer sess.Close()
	// The session's copy goroutines may outlive a cancelled call; the gates keep them from
	// writing into the caller's buffers once it has returned.
	out, errOut := &gate{w: stdout}, &gate{w: stderr}
	defer out.shut()
	defer errOut.shut()
	pid := &pidWriter{w: errOut, ready: make(chan struct{})}
	sess.Stdout, sess.Stderr = out, pid
	if stdin != nil {
		sess.Stdin = stdin
	}
	if err := sess.Start(`echo "$$" >&2 && exec ` + shellQuote(argv)); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	// sshd does not signal a command without a terminal when its session closes, so the
	// command must be killed, and for that its pid is needed: if the shell has not reported
	// it yet (a loaded host), wait for it, bounded.
	select {
	case <-pid.ready:
		s.kill(pid.pid)
	case <-done:
		return context.Cause(ctx)
	case <-time.After(startWait):
	}
	sess.Close()
	select {
	case <-done:
	case <-time.After(waitDelay):
	}
	return context.Cause(ctx)
}

// afterCancelWait bounds the clean-up sessions that run after a caller's ctx ended (kill
// a cancelled command, remove a temp file): generous, for a loaded host.
const afterCancelWait = 30 * time.Second

// startWait bounds how long a cancelled command's shell may take to report its pid.
const startWait = 10 * time.Second

// gate passes writes on until shut; later writes are dropped.
type gate struct {
	mu  sync.Mutex
	w   io.Writer
	off bool
}

func (g *gate) Write(b []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.off {
		return len(b), nil
	}
	return g.w.Write(b)
}

func (g *gate) shut() {
	g.mu.Lock()
	g.off = true
	g.mu.Unlock()
}

// killGroup kills the process group that process $p leads, or the process alone if it leads
// none. Once $p has exited the command is over, and what it left running in its group (a
// proxy a restart started) was meant to outlive it.
const killGroup = `kill -0 "$p" 2>/dev/null || exit 0; kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p"`

// kill ends a remote process group, on a fresh short deadline because the caller's ctx ended.
func (s *SSH) kill(pid int) {
	s.killScript(`p=$1; `+killGroup, strconv.Itoa(pid))
}

// killScript runs a kill script in a session of its own (the command's shell, if any, is
// busy), on a fresh short deadline because the caller's ctx ended.
func (s *SSH) killScript(script string, args ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), afterCancelWait)
	defer cancel()
	_ = s.session(ctx, append([]string{"sh", "-c", script, "sh"}, args...), nil, io.Discard, io.Discard)
}

// pidWriter takes the first stderr line (the remote shell's pid) and passes the rest on.
type pidWriter struct {
	w     io.Writer
	line  []byte
	pid   int
	ready chan struct{}
	got   bool
}

func (p *pidWriter) Write(b []byte) (int, error) {
	if p.got {
		return p.w.Write(b)
	}
	n := len(b)
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		p.line = append(p.line, b...)
		return n, nil
	}
	p.line = append(p.line, b[:i]...)
	p.got = true
	if pid, err := strconv.Atoi(string(p.line)); err == nil && pid > 1 {
		p.pid = pid
		close(p.ready)
	}
	if _, err := p.w.Write(b[i+1:]); err != nil {
		return 0, err
	}
	return n, nil
}

// Put writes r into a temp file beside path with one command, then, only if every byte
// arrived, fsyncs, chmods and renames it over path with a second, so a cut connection never
// leaves a partial file at path. The temp file is removed on failure.
func (s *SSH) Put(ctx context.Context, p string, r io.Reader, mode fs.FileMode) error {
	tmp := tempPath(p)
	cr := &countingReader{r: r}
	// noclobber: never write through a file or symlink that someone placed at tmp.
	write := []string{"sh", "-c", `set -C && umask 077 && cat > "$1"`, "sh", tmp}
	if err := s.script(ctx, write, cr); err != nil {
		s.cleanup(tmp)
		return fmt.Errorf("ssh %s: put %s: %w", s.host, p, err)
	}
	// sync FILE fsyncs that file (GNU coreutils, busybox); older versions sync everything,
	// which is slower but just as durable.
	const commitScript = `t=$1 p=$2 d=$3 size=$4 mode=$5
n=$(wc -c < "$t") && [ "$n" -eq "$size" ] || { echo "received $n bytes of $size" >&2; rm -f "$t"; exit 1; }
chmod "$mode" "$t" && sync "$t" && mv -f "$t" "$p" && sync "$d" || { rm -f "$t"; exit 1; }`
	commit := []string{"sh", "-c", commitScript, "sh", tmp, p, path.Dir(p),
		strconv.FormatInt(cr.n, 10), strconv.FormatUint(uint64(mode.Perm()), 8)}
	if err := s.script(ctx, commit, nil); err != nil {
		s.cleanup(tmp)
		return fmt.Errorf("ssh %s: put %s: %w", s.host, p, err)
	}
	return nil
}

// cleanup removes a temp file after a failed Put, on a fresh short deadline because the
// caller's ctx may be what ended.
func (s *SSH) cleanup(tmp string) {
	ctx, cancel := context.WithTimeout(context.Background(), afterCancelWait)
	defer cancel()
	_, _, _, _ = s.command(ctx, []string{"rm", "-f", tmp}, nil)
}

// script runs one of the transport's own scripts; a non-zero status becomes the error its
// stderr gives.
func (s *SSH) script(ctx context.Context, argv []string, stdin io.Reader) error {
	_, stderr, status, err := s.command(ctx, argv, stdin)
	if err != nil || status == 0 {
		return err
	}
	return scriptError(status, stderr)
}

func scriptError(status int, stderr []byte) error {
	if msg := stderrExcerpt(stderr); msg != "" {
		return errors.New(msg)
	}
	return fmt.Errorf("remote status %d", status)
}

// notFoundStatus is the status the ReadFile script uses for a missing file.
const notFoundStatus = 66

// ReadFile returns the contents of path; a missing file gives an error matching
// fs.ErrNotExist.
func (s *SSH) ReadFile(ctx context.Context, p string) ([]byte, error) {
	script := `[ -e "$1" ] || exit ` + strconv.Itoa(notFoundStatus) + `; exec cat -- "$1"`
	stdout, stderr, status, err := s.command(ctx, []string{"sh", "-c", script, "sh", p}, nil)
	switch {
	case err != nil:
		return nil, fmt.Errorf("ssh %s: read %s: %w", s.host, p, err)
	case status == notFoundStatus:
		return nil, fmt.Errorf("ssh %s: read %s: %w", s.host, p, fs.ErrNotExist)
	case status != 0:
		return nil, fmt.Errorf("ssh %s: read %s: %w", s.host, p, scriptError(status, stderr))
	}
	return stdout, nil
}

// notSymlinkStatus is the status the Readlink script uses for a path that is no symlink.
const notSymlinkStatus = 67

// Readlink runs readlink; only when it fails does a second command tell a missing path from
// one that is no symlink (readlink says neither), so the usual case costs one command.
func (s *SSH) Readlink(ctx context.Context, p string) (string, error) {
	stdout, stderr, status, err := s.command(ctx, []string{"readlink", "--", p}, nil)
	if err != nil {
		return "", fmt.Errorf("ssh %s: readlink %s: %w", s.host, p, err)
	}
	if status == 0 {
		return strings.TrimSuffix(string(stdout), "\n"), nil
	}
	// Status 0: a symlink is there now, made after readlink ran, whose failure is reported.
	classify := `[ -L "$1" ] && exit 0; [ -e "$1" ] && exit ` + strconv.Itoa(notSymlinkStatus) + `; exit ` + strconv.Itoa(notFoundStatus)
	_, _, why, err := s.command(ctx, []string{"sh", "-c", classify, "sh", p}, nil)
	switch {
	case err != nil:
		return "", fmt.Errorf("ssh %s: readlink %s: %w", s.host, p, err)
	case why == notFoundStatus:
		return "", fmt.Errorf("ssh %s: readlink %s: %w", s.host, p, fs.ErrNotExist)
	case why == notSymlinkStatus:
		return "", fmt.Errorf("ssh %s: readlink %s: %w", s.host, p, ErrNotSymlink)
	}
	return "", fmt.Errorf("ssh %s: readlink %s: %w", s.host, p, scriptError(status, stderr))
}

// Symlink creates the temp link, renames it over p and syncs the directory with one script
// (GNU mv's -T: a link to a directory at p is replaced, not moved into; sync as in Put). The
// temp link is removed on failure.
func (s *SSH) Symlink(ctx context.Context, target, p string) error {
	tmp := tempPath(p)
	const script = `ln -s -- "$1" "$2" && mv -Tf -- "$2" "$3" && sync -- "$4"`
	if err := s.script(ctx, []string{"sh", "-c", script, "sh", target, tmp, p, path.Dir(p)}, nil); err != nil {
		s.cleanup(tmp)
		return fmt.Errorf("ssh %s: symlink %s: %w", s.host, p, err)
	}
	return nil
}

// Close ends the remote shells and closes the connection; later calls fail.
func (s *SSH) Close() error {
	s.closeShells()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.conn.client.Close()
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
