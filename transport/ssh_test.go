package transport_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/transport"
)

func TestSSHRefuses(t *testing.T) {
	srv := testenv.SSHD(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	newKey := func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	otherHost := testenv.WriteSSHKey(t, filepath.Join(dir, "other_host"), newKey())
	strangerKey := filepath.Join(dir, "stranger")
	testenv.WriteSSHKey(t, strangerKey, newKey())
	block, err := ssh.MarshalPrivateKeyWithPassphrase(newKey(), "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	encrypted := write("encrypted", string(pem.EncodeToMemory(block)))

	tests := []struct {
		name   string
		modify func(*transport.Spec)
		is     error
		msg    string
	}{
		{"UnknownHost", func(s *transport.Spec) {
			s.KnownHosts = write("known_other", knownhosts.Line([]string{"127.0.0.2:22"}, otherHost)+"\n")
		}, transport.ErrHostKeyUnknown, "not in known_hosts"},
		{"ChangedHostKey", func(s *transport.Spec) {
			s.KnownHosts = write("known_changed", knownhosts.Line([]string{srv.Addr}, otherHost)+"\n")
		}, transport.ErrHostKeyMismatch, "known_changed:1"},
		{"WrongUserKey", func(s *transport.Spec) { s.IdentityFile = strangerKey }, transport.ErrAuth, "accepted no key"},
		{"EncryptedUserKey", func(s *transport.Spec) { s.IdentityFile = encrypted }, nil, "encrypted with a passphrase"},
		{"MissingKnownHosts", func(s *transport.Spec) { s.KnownHosts = filepath.Join(dir, "absent") }, nil, "known_hosts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := sshSpec(srv)
			tt.modify(&spec)
			ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitTimeout)
			defer cancel()
			tr, err := transport.Dial(ctx, spec)
			if err == nil {
				tr.Close()
				t.Fatal("dial succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), srv.Addr) {
				t.Fatalf("message %q does not name the host and say %q", err, tt.msg)
			}
		})
	}
}

// TestSSHHostKeyAlgorithms dials with known_hosts holding only one of the server's host keys,
// for each key; x/crypto's default preference would ask for the ECDSA key first.
func TestSSHHostKeyAlgorithms(t *testing.T) {
	srv := testenv.SSHD(t)
	for _, key := range srv.HostKeys {
		t.Run(key.Type(), func(t *testing.T) {
			spec := sshSpec(srv)
			spec.KnownHosts = filepath.Join(t.TempDir(), "known_hosts")
			if err := os.WriteFile(spec.KnownHosts, []byte(knownhosts.Line([]string{srv.Addr}, key)+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitTimeout)
			defer cancel()
			tr, err := transport.Dial(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			if _, err := tr.Run(ctx, []string{"true"}, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSSHHandshakeTimeout: a server that accepts TCP but never speaks SSH must not hang Dial.
func TestSSHHandshakeTimeout(t *testing.T) {
	srv := testenv.SSHD(t) // for keys and known_hosts only
	silent := testenv.ServeTCP(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	spec := sshSpec(srv)
	spec.Address = silent
	spec.Timeout = 300 * time.Millisecond
	start := time.Now()
	_, err := transport.Dial(context.Background(), spec)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	// The silent server never answers: only the handshake timeout can end Dial.
	if d := time.Since(start); d > testenv.WaitTimeout {
		t.Fatalf("Dial returned after %s", d)
	}
	if !strings.Contains(err.Error(), spec.Address) {
		t.Fatalf("message %q does not name the host", err)
	}
}

func TestSSHConnectRefused(t *testing.T) {
	srv := testenv.SSHD(t)
	spec := sshSpec(srv)
	spec.Address = testenv.Addr(testenv.FreePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitTimeout)
	defer cancel()
	_, err := transport.Dial(ctx, spec)
	if err == nil || !strings.Contains(err.Error(), spec.Address) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("err = %v, want connection refused naming %s", err, spec.Address)
	}
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		spec transport.Spec
		err  string // "" = valid
	}{
		{transport.Spec{Kind: "local"}, ""},
		{transport.Spec{Kind: "ssh", Address: "db1.example.net"}, ""},
		{transport.Spec{Kind: "ssh", Address: "[::1]:2222"}, ""},
		{transport.Spec{}, "type: required"},
		{transport.Spec{Kind: "telnet"}, `type "telnet"`},
		{transport.Spec{Kind: "local", Address: "h:22"}, "address: not allowed"},
		{transport.Spec{Kind: "ssh"}, "address: required"},
		{transport.Spec{Kind: "ssh", Address: "h:99999"}, `address "h:99999"`},
		{transport.Spec{Kind: "ssh", Address: ":22"}, `address ":22"`},
		{transport.Spec{Kind: "ssh", Address: "h", Timeout: -time.Second}, "timeout"},
		{transport.Spec{Kind: "ssh", Address: "h", Timeout: time.Hour}, "timeout: 1h0m0s is more than the maximum"},
	}
	for _, tt := range tests {
		err := tt.spec.Validate()
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%+v: err = %v, want %q", tt.spec, err, tt.err)
		}
	}
}

// TestSSHAgentAndDefaults: with no identity_file, keys come from a real ssh-agent; an
// encrypted default key file is passed over rather than failing the dial.
func TestSSHAgentAndDefaults(t *testing.T) {
	srv := testenv.SSHD(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	if err := os.Mkdir(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKeyWithPassphrase(k, "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	spec := sshSpec(srv)
	spec.IdentityFile = ""
	dial := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitTimeout)
		defer cancel()
		tr, err := transport.Dial(ctx, spec)
		if err == nil {
			_, err = tr.Run(ctx, []string{"true"}, nil)
			tr.Close()
		}
		return err
	}

	t.Setenv("SSH_AUTH_SOCK", "")
	if err := dial(); err == nil || !strings.Contains(err.Error(), "identity_file: not set, no key in ssh-agent") {
		t.Fatalf("without agent: err = %v", err)
	}

	sock := filepath.Join(t.TempDir(), "agent.sock")
	agent := testenv.Start(t, "", testenv.LookPath(t, "ssh-agent"), "-D", "-a", sock)
	testenv.Eventually(t, "ssh-agent to create its socket", func() bool {
		if agent.Exited() {
			t.Fatalf("ssh-agent exited: %s", agent.Output())
		}
		_, err := os.Stat(sock)
		return err == nil
	})
	t.Setenv("SSH_AUTH_SOCK", sock)
	add := exec.Command(testenv.LookPath(t, "ssh-add"), srv.IdentityFile)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v: %s", err, out)
	}
	if err := dial(); err != nil {
		t.Fatalf("with the key in ssh-agent: %v", err)
	}
}

// dialed starts an sshd and dials it for one test; ctx bounds the test's commands.
func dialed(t *testing.T) (context.Context, *testenv.SSHServer, *transport.SSH) {
	t.Helper()
	srv := testenv.SSHD(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*testenv.WaitTimeout)
	t.Cleanup(cancel)
	tr, err := transport.DialSSH(ctx, sshSpec(srv))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return ctx, srv, tr
}

// TestSSHReconnect: when the connection breaks, the next command dials again; a command that
// was running when it broke fails and is not run a second time.
func TestSSHReconnect(t *testing.T) {
	ctx, srv, tr := dialed(t)
	for range 3 {
		if _, err := tr.Run(ctx, []string{"true"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if st := tr.Stats(); st.Dials != 1 || st.Sessions != 1 || st.Shells != 1 {
		t.Fatalf("after 3 commands: %+v, want 1 connection and 1 session (the remote shell)", st)
	}

	marks := filepath.Join(t.TempDir(), "marks")
	ran := make(chan error, 1)
	go func() {
		_, err := tr.Run(ctx, []string{"sh", "-c", `echo run >> "$1"; exec sleep 300`, "sh", marks}, nil)
		ran <- err
	}()
	testenv.Eventually(t, "the long command to start", func() bool {
		b, _ := os.ReadFile(marks)
		return len(b) > 0
	})
	killConnections(t, srv)
	if err := <-ran; err == nil {
		t.Fatal("a command whose connection broke succeeded")
	}
	if _, err := tr.Run(ctx, []string{"true"}, nil); err != nil {
		t.Fatalf("run after the connection broke: %v", err)
	}
	if st := tr.Stats(); st.Dials != 2 || st.Shells != 2 {
		t.Fatalf("after the break: %+v, want a second connection and shell", st)
	}
	if b, _ := os.ReadFile(marks); string(b) != "run\n" {
		t.Fatalf("the interrupted command ran %q, want once", b)
	}

	tr.Close()
	if _, err := tr.Run(ctx, []string{"true"}, nil); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("run after Close: %v, want net.ErrClosed", err)
	}
}

// killConnections kills sshd's processes for each connection, as a server restart or a
// dropped connection would end them; the listener stays, and so do the user's processes
// (the remote shell and its commands), which see the connection's end as the end of their
// input. Not only sshd's children: after authentication the connection's socket is held by
// a grandchild (the unprivileged sshd), which may outlive its parent for a while and keep the
// connection open without serving it.
func killConnections(t *testing.T, srv *testenv.SSHServer) {
	t.Helper()
	listener := srv.Process.Cmd.Process.Pid
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	type proc struct {
		pid  int
		sshd bool
	}
	children := map[int][]proc{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if open < 0 || end < open {
			continue
		}
		fields := strings.Fields(string(stat[end+1:]))
		if len(fields) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(fields[1]); err == nil {
			children[ppid] = append(children[ppid], proc{pid, bytes.HasPrefix(stat[open+1:end], []byte("sshd"))})
		}
	}
	var conns []int
	for next := []int{listener}; len(next) > 0; {
		pid := next[0]
		next = next[1:]
		for _, c := range children[pid] {
			if c.sshd {
				conns = append(conns, c.pid)
				next = append(next, c.pid)
			}
		}
	}
	killed := 0
	for _, pid := range conns {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed++
		}
	}
	if killed == 0 {
		t.Fatal("sshd has no connection process to kill")
	}
}

// TestSSHShellFraming: the commands of a transport share one remote shell, whose replies keep
// every byte of stdout and stderr, the exit status and every argument exactly.
func TestSSHShellFraming(t *testing.T) {
	ctx, _, tr := dialed(t)
	dir := t.TempDir()
	large := make([]byte, 3<<20+7)
	if _, err := rand.Read(large); err != nil {
		t.Fatal(err)
	}
	large[0], large[len(large)-1] = 0, 0 // a NUL at each end, no trailing newline
	blob := filepath.Join(dir, "blob")
	if err := os.WriteFile(blob, large, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"x\n", "\n\n", "  lead", "trail  ", `end\`, "a\\\nb", "'", `"`, "\r\n", "\t", "$(echo no)", "5\n3\n"}
	tests := []struct {
		name                  string
		argv                  []string
		stdin, stdout, stderr []byte
		status                int
	}{
		{"NULsNoNewline", []string{"printf", `a\000b\000\377`}, nil, []byte("a\x00b\x00\xff"), nil, 0},
		{"Empty", []string{"true"}, nil, nil, nil, 0},
		{"LargeStdout", []string{"cat", blob}, nil, large, nil, 0},
		{"LargeStderr", []string{"sh", "-c", `cat "$1" >&2; exit 5`, "sh", blob}, nil, nil, large, 5},
		{"LargeBinaryStdin", []string{"cat"}, large, large, nil, 0},
		{"StdinNotRead", []string{"true"}, []byte("9 9\nexit 1\n"), nil, nil, 0},
		{"StdinAfterUnread", []string{"cat"}, []byte("\x00\n"), []byte("\x00\n"), nil, 0},
		{"Both", []string{"sh", "-c", `printf out; printf 'e\nrr' >&2; exit 255`}, nil, []byte("out"), []byte("e\nrr"), 255},
		{"ArgvWithNewlines", append([]string{"printf", "[%s]"}, args...), nil, []byte("[" + strings.Join(args, "][") + "]"), nil, 0},
		{"NewlineInCommandName", []string{"no\nsuch"}, nil, nil, nil, 127},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdin io.Reader
			if tt.stdin != nil {
				stdin = bytes.NewReader(tt.stdin)
			}
			res, err := tr.Run(ctx, tt.argv, stdin)
			var exit *transport.ExitError
			switch {
			case tt.status == 0 && err != nil:
				t.Fatal(err)
			case tt.status != 0 && (!errors.As(err, &exit) || exit.Status != tt.status):
				t.Fatalf("err = %v, want exit status %d", err, tt.status)
			}
			if !bytes.Equal(res.Stdout, tt.stdout) {
				t.Errorf("stdout: %d bytes %q, want %d bytes %q", len(res.Stdout), head(res.Stdout), len(tt.stdout), head(tt.stdout))
			}
			if tt.stderr != nil && !bytes.Equal(res.Stderr, tt.stderr) {
				t.Errorf("stderr: %d bytes %q, want %d bytes %q", len(res.Stderr), head(res.Stderr), len(tt.stderr), head(tt.stderr))
			}
		})
	}
	if st := tr.Stats(); st.Dials != 1 || st.Shells != 1 || st.Sessions != 1 {
		t.Fatalf("%+v, want every command in one shell", st)
	}
}

func head(b []byte) []byte { return b[:min(len(b), 40)] }

// TestSSHShellEnds: a shell that dies mid-command fails that command (without running it
// again) and the next command gets a new shell; the shell's private directory goes when the
// transport closes and when the connection drops.
func TestSSHShellEnds(t *testing.T) {
	ctx, srv, tr := dialed(t)

	marks := filepath.Join(t.TempDir(), "marks")
	ran := make(chan error, 1)
	go func() {
		// $PPID is the shell; the command itself becomes sleep.
		_, err := tr.Run(ctx, []string{"sh", "-c", `echo "$PPID $$" >> "$1"; exec sleep 300`, "sh", marks}, nil)
		ran <- err
	}()
	var shell, command int
	testenv.Eventually(t, "the long command to start", func() bool {
		b, _ := os.ReadFile(marks)
		_, err := fmt.Sscan(string(b), &shell, &command)
		return err == nil
	})
	t.Cleanup(func() { syscall.Kill(command, syscall.SIGKILL) })
	if err := syscall.Kill(shell, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-ran
	var exit *transport.ExitError
	if err == nil || errors.As(err, &exit) || !strings.Contains(err.Error(), "remote shell") {
		t.Fatalf("err = %v, want the shell's end reported", err)
	}
	if _, err := tr.Run(ctx, []string{"true"}, nil); err != nil {
		t.Fatalf("run after the shell died: %v", err)
	}
	if b, _ := os.ReadFile(marks); strings.Count(string(b), "\n") != 1 {
		t.Fatalf("the interrupted command ran %q, want once", b)
	}
	if st := tr.Stats(); st.Dials != 1 || st.Shells != 2 {
		t.Fatalf("%+v, want a second shell on the same connection", st)
	}

	// The command's stdout is a file in the shell's directory.
	shellDir := func() string {
		res, err := tr.Run(ctx, []string{"readlink", "/proc/self/fd/1"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return filepath.Dir(strings.TrimSpace(string(res.Stdout)))
	}
	gone := func(what, dir string) {
		testenv.Eventually(t, what, func() bool {
			_, err := os.Stat(dir)
			return errors.Is(err, fs.ErrNotExist)
		})
	}
	dir := shellDir()
	killConnections(t, srv)
	gone("the shell's directory to go when the connection drops", dir)
	dir = shellDir()
	tr.Close()
	gone("the shell's directory to go on Close", dir)
}
