package testenv

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHServer is a real OpenSSH server on a loopback port that accepts one user key.
type SSHServer struct {
	*Process
	Addr         string // 127.0.0.1:port
	User         string // the user running the tests
	IdentityFile string // private key (ed25519, unencrypted) that the server accepts
	// KnownHosts lists only the server's ed25519 host key although the server also offers
	// an ECDSA one, which proves clients pick host key algorithms from known_hosts.
	KnownHosts string
	HostKeys   []ssh.PublicKey // every host key the server offers: ed25519, ECDSA
	Dir        string          // where keys, configuration and files live
}

// SSHD starts sshd -D on a free loopback port with host keys and an authorized user key
// generated in a fresh temporary directory, and stops it when the test ends.
func SSHD(t testing.TB) *SSHServer {
	t.Helper()
	// sshd refuses to start without its privilege-separation directory; it is created by the
	// service scripts, which tests do not run.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshd: privilege separation directory: %v", err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatalf("sshd: current user: %v", err)
	}
	dir := t.TempDir()
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edHost := WriteSSHKey(t, filepath.Join(dir, "host_ed25519"), edKey)
	ecHost := WriteSSHKey(t, filepath.Join(dir, "host_ecdsa"), ecKey)

	_, userKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	identity := filepath.Join(dir, "id_ed25519")
	userPub := WriteSSHKey(t, identity, userKey)
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, ssh.MarshalAuthorizedKey(userPub), 0o600); err != nil {
		t.Fatal(err)
	}

	port := FreePort(t)
	addr := Addr(port)
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(known, []byte(knownhosts.Line([]string{addr}, edHost)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// StrictModes would refuse authorized_keys under the world-writable temp directory.
	conf := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
HostKey %s
AuthorizedKeysFile %s
PidFile none
UsePAM no
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers %s
LogLevel VERBOSE
`, port, filepath.Join(dir, "host_ed25519"), filepath.Join(dir, "host_ecdsa"), authorized, u.Username)
	confPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := LookPath(t, "sshd")
	// sshd must be started by its absolute path so that it can re-exec itself.
	p := Start(t, addr, bin, "-D", "-e", "-f", confPath)
	return &SSHServer{
		Process:      p,
		Addr:         addr,
		User:         u.Username,
		IdentityFile: identity,
		KnownHosts:   known,
		HostKeys:     []ssh.PublicKey{edHost, ecHost},
		Dir:          dir,
	}
}

// WriteSSHKey writes key (ed25519.PrivateKey or *ecdsa.PrivateKey) as an OpenSSH private key
// file with mode 0600 and returns its public key.
func WriteSSHKey(t testing.TB, path string, key any) ssh.PublicKey {
	t.Helper()
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatalf("marshal key: %v", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatalf("signer: %v", err)
	}
	return signer.PublicKey()
}
