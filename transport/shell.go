package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// shellScript is the remote shell an SSH transport keeps for an operation's commands, so that
// the login shell (and its rc files) starts once per operation instead of once per command.
// It is given on the command line, never on stdin, so the shell cannot read ahead into the
// requests. A request is a line "LINES SIZE SEQ", then argv quoted in LINES lines (the read
// builtin takes them one by one), then SIZE bytes for its stdin, which dd takes with reads of
// at most the bytes still due, so it never reads past them either. The command runs in the
// background with its stdin from those bytes (or /dev/null) and its output in files of a
// private directory; it is exec-ed under setsid when there is one, so that it leads its own
// process group as a session's command does (a cancel kills that group, whose leader the
// file p names next to SEQ). The reply is "MARKER done STATUS OUTLEN ERRLEN" followed by
// exactly that many bytes of stdout and of stderr. A command that printed nothing (a switch,
// a restart) is answered with the shell's builtins alone, so no program start competes
// with what the command left starting (a proxy on its way to its bind); any other reply is
// written by one cat so that it leaves in as few packets as possible: sshd leaves Nagle's
// algorithm on for sessions without a terminal, and a small packet behind another waits for
// the client's delayed ACK. The directory is
// removed when the shell ends: its stdin closed (Close, or the connection dropped) or a
// reply that cannot be written.
const shellScript = `m=$1
d=$(mktemp -d) || exit 1
trap 'rm -rf "$d"' EXIT
trap 'exit 1' HUP INT TERM PIPE
s=exec
command -v setsid >/dev/null 2>&1 && s=setsid
echo "$m ready $$ $d"
while IFS=' ' read -r n z q; do
	c= i=0
	while [ "$i" -lt "$n" ]; do
		IFS= read -r l || exit 1
		c="$c$l
"
		i=$((i + 1))
	done
	in=/dev/null
	if [ "$z" -gt 0 ]; then
		in=$d/i g=0
		: >"$in"
		while [ "$g" -lt "$z" ]; do
			b=$((z - g))
			[ "$b" -le 1048576 ] || b=1048576
			dd bs="$b" count=1 2>/dev/null >>"$in" || exit 1
			h=$(($(wc -c <"$in")))
			[ "$h" -gt "$g" ] || exit 1
			g=$h
		done
	fi
	eval "set -- $c"
	$s "$@" <"$in" >"$d/o" 2>"$d/e" &
	echo "$q $!" >"$d/p"
	wait "$!"
	r=$?
	if [ -s "$d/o" ] || [ -s "$d/e" ]; then
		set -- $(cd "$d" && wc -c o e)
		echo "$m done $r $1 $3" >"$d/h"
		cat "$d/h" "$d/o" "$d/e"
	else
		echo "$m done $r 0 0"
	fi
done`

// errNoShell: the host could not start the remote shell (no POSIX sh, no mktemp); every
// command then takes a session of its own.
var errNoShell = errors.New("no remote shell")

// errNotSent: the request never reached the shell, so the command did not run.
var errNotSent = errors.New("request not sent")

// maxShellStdin is the most stdin a command sends through the shell, which holds it in
// memory first; a command with more streams it in a session of its own.
const maxShellStdin = 32 << 20

// maxShellGreeting bounds what the login shell may print before the ready line (a noisy rc
// file), so a shell that never gets ready cannot fill memory.
const maxShellGreeting = 64 << 10

// remoteShell is one running shellScript; it runs one command at a time.
type remoteShell struct {
	conn   *sshConn
	sess   *ssh.Session
	in     io.WriteCloser
	out    *bufio.Reader
	errOut *tailBuffer // the shell's own complaints, for messages
	marker string
	dir    string        // the shell's private directory
	seq    int           // requests sent
	ended  chan struct{} // closed when the session ends
}

// startShell opens a session running shellScript and waits for it to report ready. It returns
// an error wrapping errNoShell when the session ran and ended without getting ready.
func (s *SSH) startShell(ctx context.Context) (*remoteShell, error) {
	sess, conn, err := s.newSession(ctx)
	if err != nil {
		return nil, err
	}
	var m [16]byte
	_, _ = rand.Read(m[:])
	sh := &remoteShell{conn: conn, sess: sess, errOut: &tailBuffer{}, marker: hex.EncodeToString(m[:]), ended: make(chan struct{})}
	sess.Stderr = sh.errOut
	out, err := sess.StdoutPipe()
	if err == nil {
		sh.in, err = sess.StdinPipe()
	}
	if err == nil {
		err = sess.Start(s.shellCommand + " " + sh.marker)
	}
	if err != nil {
		sess.Close()
		return nil, fmt.Errorf("remote shell: %w", err)
	}
	sh.out = bufio.NewReaderSize(out, 64<<10)
	waited := make(chan error, 1)
	go func() { waited <- sess.Wait(); close(sh.ended) }()
	ready := make(chan error, 1)
	go func() { ready <- sh.awaitReady() }()
	select {
	case err = <-ready:
	case <-ctx.Done():
		sess.Close()
		return nil, context.Cause(ctx)
	}
	if err == nil {
		s.shells.Add(1)
		return sh, nil
	}
	sess.Close()
	var exit *ssh.ExitError
	if werr := <-waited; errors.As(werr, &exit) {
		// It ran and ended: this host cannot keep a shell.
		msg := stderrExcerpt(sh.errOut.Bytes())
		if msg == "" {
			msg = fmt.Sprintf("status %d", exit.ExitStatus())
		}
		return nil, fmt.Errorf("%w: %s", errNoShell, msg)
	}
	return nil, fmt.Errorf("remote shell: %w", err)
}

// awaitReady reads up to the ready line ("MARKER ready PID DIR"), passing over what an rc
// file printed before it.
func (sh *remoteShell) awaitReady() error {
	want := sh.marker + " ready "
	read := 0
	for read < maxShellGreeting {
		line, err := sh.out.ReadString('\n')
		read += len(line)
		if rest, ok := strings.CutPrefix(line, want); ok {
			_, dir, ok := strings.Cut(strings.TrimSuffix(rest, "\n"), " ")
			if !ok || dir == "" {
				return fmt.Errorf("unexpected ready line %q", excerpt(line))
			}
			sh.dir = dir
			return nil
		}
		if err != nil {
			return err
		}
	}
	return errors.New("no ready line")
}

// runInShell runs argv in the shell. A cancel kills the command and ends the shell; after any
// error the shell must not be used again. An error wrapping errNotSent means nothing ran.
func (s *SSH) runInShell(ctx context.Context, sh *remoteShell, argv []string, stdin []byte) (stdout, stderr []byte, status int, err error) {
	cmd := shellQuote(argv) + "\n"
	sh.seq++
	req := fmt.Appendf(nil, "%d %d %d\n%s", strings.Count(cmd, "\n"), len(stdin), sh.seq, cmd)
	// A large stdin waits for the remote side's flow-control window: the write must not
	// outlive ctx. A request cut short runs nothing (the shell exits at the end of its stdin).
	sent := make(chan error, 1)
	go func() {
		_, err := sh.in.Write(append(req, stdin...))
		sent <- err
	}()
	select {
	case err := <-sent:
		if err != nil {
			return nil, nil, 0, fmt.Errorf("%w: %w", errNotSent, err)
		}
	case <-ctx.Done():
		sh.close()
		if err := <-sent; err == nil {
			// The whole request left as ctx ended: the command may be running.
			s.killShellCommand(sh.dir, sh.seq)
		}
		return nil, nil, 0, context.Cause(ctx)
	}
	type reply struct {
		stdout, stderr []byte
		status         int
		err            error
	}
	done := make(chan reply, 1)
	go func() {
		var r reply
		r.stdout, r.stderr, r.status, r.err = sh.readReply()
		done <- r
	}()
	select {
	case r := <-done:
		return r.stdout, r.stderr, r.status, r.err
	case <-ctx.Done():
	}
	// sshd passes no signal to a command without a terminal (and none at all in root's
	// sessions), so the command is killed from a session of its own.
	select {
	case <-done:
	case <-sh.ended:
	default:
		s.killShellCommand(sh.dir, sh.seq)
	}
	sh.close()
	return nil, nil, 0, context.Cause(ctx)
}

// killShellCommand kills the command of request seq in the shell whose directory is dir,
// waiting a little for the shell to name it: it does so just after starting it.
func (s *SSH) killShellCommand(dir string, seq int) {
	const script = `i=0
until IFS=' ' read -r q p <"$1/p" 2>/dev/null && [ "$q" = "$2" ]; do
	i=$((i + 1))
	[ "$i" -le 100 ] || exit 1
	sleep 0.1
done
` + killGroup
	s.killScript(script, dir, strconv.Itoa(seq))
}

// readReply reads one reply.
func (sh *remoteShell) readReply() (stdout, stderr []byte, status int, err error) {
	f, err := sh.replyLine("done", 3)
	if err != nil {
		return nil, nil, 0, err
	}
	stdout, stderr = make([]byte, f[1]), make([]byte, f[2])
	if _, err := io.ReadFull(sh.out, stdout); err != nil {
		return nil, nil, 0, sh.lost(err)
	}
	if _, err := io.ReadFull(sh.out, stderr); err != nil {
		return nil, nil, 0, sh.lost(err)
	}
	return stdout, stderr, f[0], nil
}

// replyLine reads "MARKER KIND N..." and returns the n numbers.
func (sh *remoteShell) replyLine(kind string, n int) ([]int, error) {
	line, err := sh.out.ReadString('\n')
	if err != nil {
		return nil, sh.lost(err)
	}
	fields := strings.Fields(line)
	if len(fields) != n+2 || fields[0] != sh.marker || fields[1] != kind {
		return nil, fmt.Errorf("remote shell: unexpected reply %q", excerpt(line))
	}
	nums := make([]int, n)
	for i, f := range fields[2:] {
		v, err := strconv.Atoi(f)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("remote shell: unexpected reply %q", excerpt(line))
		}
		nums[i] = v
	}
	return nums, nil
}

// lost describes a shell whose output ended in the middle of a reply.
func (sh *remoteShell) lost(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = errors.New("connection or remote shell ended during the command")
	}
	if msg := stderrExcerpt(sh.errOut.Bytes()); msg != "" {
		return fmt.Errorf("remote shell: %w: %s", err, msg)
	}
	return fmt.Errorf("remote shell: %w", err)
}

// usable reports whether the shell and its connection are still up.
func (sh *remoteShell) usable() bool {
	select {
	case <-sh.ended:
		return false
	case <-sh.conn.dead:
		return false
	default:
		return true
	}
}

// close ends the shell: its stdin closes, so it exits and removes its directory.
func (sh *remoteShell) close() {
	sh.in.Close()
	sh.sess.Close()
}

func excerpt(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// tailBuffer keeps the last bytes written to it.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

const tailBufferSize = 4 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > tailBufferSize {
		t.b = t.b[len(t.b)-tailBufferSize:]
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.b)
}

// takeShell returns an idle shell of this transport or starts one.
func (s *SSH) takeShell(ctx context.Context) (*remoteShell, error) {
	s.shellMu.Lock()
	if s.noShell != nil {
		err := s.noShell
		s.shellMu.Unlock()
		return nil, err
	}
	for len(s.idle) > 0 {
		sh := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		if sh.usable() {
			s.shellMu.Unlock()
			return sh, nil
		}
		sh.close()
	}
	s.shellMu.Unlock()
	sh, err := s.startShell(ctx)
	if errors.Is(err, errNoShell) {
		s.shellMu.Lock()
		s.noShell = err
		s.shellMu.Unlock()
	}
	return sh, err
}

// putShell keeps a shell for the next command, or ends it if the transport was closed.
func (s *SSH) putShell(sh *remoteShell) {
	s.shellMu.Lock()
	defer s.shellMu.Unlock()
	if s.shellsClosed {
		sh.close()
		return
	}
	s.idle = append(s.idle, sh)
}

// closeShells ends the idle shells; later ones are ended when their command returns.
func (s *SSH) closeShells() {
	s.shellMu.Lock()
	defer s.shellMu.Unlock()
	s.shellsClosed = true
	for _, sh := range s.idle {
		sh.close()
	}
	s.idle = nil
}

// command runs argv through the operation's remote shell, or in a session of its own when
// the host cannot keep a shell or stdin is larger than maxShellStdin. stdin is read to its
// end before the command starts (a larger one is streamed). err is set only when the command
// did not run to an exit status.
func (s *SSH) command(ctx context.Context, argv []string, stdin io.Reader) (stdout, stderr []byte, status int, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, 0, context.Cause(ctx)
	}
	for _, a := range argv {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, nil, 0, errors.New("argument holds a NUL byte")
		}
	}
	var data []byte
	if stdin != nil {
		if data, err = io.ReadAll(io.LimitReader(stdin, maxShellStdin+1)); err != nil {
			return nil, nil, 0, fmt.Errorf("stdin: %w", err)
		}
	}
	for attempt := 0; len(data) <= maxShellStdin; attempt++ {
		sh, err := s.takeShell(ctx)
		if errors.Is(err, errNoShell) {
			break
		}
		if err != nil {
			return nil, nil, 0, err
		}
		stdout, stderr, status, err = s.runInShell(ctx, sh, argv, data)
		if err == nil {
			s.putShell(sh)
			return stdout, stderr, status, nil
		}
		sh.close()
		// A request that never left ran nothing: the connection broke between two
		// commands, and one new shell (on a new connection if need be) is tried.
		if attempt > 0 || !errors.Is(err, errNotSent) || ctx.Err() != nil {
			return nil, nil, 0, err
		}
	}
	if stdin != nil {
		stdin = io.MultiReader(bytes.NewReader(data), stdin)
	}
	var out, errOut bytes.Buffer
	err = s.session(ctx, argv, stdin, &out, &errOut)
	var exit *ssh.ExitError
	if errors.As(err, &exit) && exit.Signal() == "" {
		return out.Bytes(), errOut.Bytes(), exit.ExitStatus(), nil
	}
	return out.Bytes(), errOut.Bytes(), 0, err
}
