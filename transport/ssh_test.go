package transport_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
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

// TestSSHReconnect: when the connection breaks, the next command dials again; a command that
// was running when it broke fails and is not run a second time.
func TestSSHReconnect(t *testing.T) {
	srv := testenv.SSHD(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*testenv.WaitTimeout)
	defer cancel()
	tr, err := transport.DialSSH(ctx, sshSpec(srv))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for range 3 {
		if _, err := tr.Run(ctx, []string{"true"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if st := tr.Stats(); st.Dials != 1 || st.Sessions != 3 {
		t.Fatalf("after 3 commands: %+v, want 1 connection and 3 sessions", st)
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
	if st := tr.Stats(); st.Dials != 2 {
		t.Fatalf("after the break: %+v, want a second connection", st)
	}
	if b, _ := os.ReadFile(marks); string(b) != "run\n" {
		t.Fatalf("the interrupted command ran %q, want once", b)
	}

	tr.Close()
	if _, err := tr.Run(ctx, []string{"true"}, nil); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("run after Close: %v, want net.ErrClosed", err)
	}
}

// killConnections kills sshd's per-connection processes (its children), as a server restart
// or a dropped connection would end them; the listener stays.
func killConnections(t *testing.T, srv *testenv.SSHServer) {
	t.Helper()
	parent := srv.Process.Cmd.Process.Pid
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name (which may hold spaces) in parentheses: state, ppid.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(parent) {
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				killed++
			}
		}
	}
	if killed == 0 {
		t.Fatal("sshd has no connection process to kill")
	}
}
