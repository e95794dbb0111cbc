// Package audit checks a host's twemproxy setup for least privilege: nutcracker processes
// not running as root, configuration files that only the right users can change or read,
// the unauthenticated stats port kept off public interfaces, and redis_auth where a pool
// listens publicly.
package audit

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Process is a running nutcracker as /proc shows it.
type Process struct {
	PID        int      `json:"pid"`
	UID        int      `json:"uid"` // effective
	User       string   `json:"user"`
	Exe        string   `json:"exe,omitempty"`
	Args       []string `json:"args"`
	ConfigPath string   `json:"config"`     // absolute when the process's directory could be read
	StatsAddr  string   `json:"stats_addr"` // from -a/-s, with nutcracker's defaults
	Listening  []string `json:"listening"`  // TCP addresses it listens on, from /proc/net
	// Unreadable names what /proc would not show us (as a user other than the process's
	// and not root): "exe", "cwd", "fd"; the fields that depend on it are incomplete.
	Unreadable []string `json:"unreadable"`
}

// Debian's and upstream's defaults when the flags are absent.
const (
	defaultStatsAddr = "0.0.0.0"
	defaultStatsPort = "22222"
)

// FindProcesses lists nutcracker processes under procRoot (normally /proc).
// defaultConf is the -c default of the installed build.
func FindProcesses(procRoot, defaultConf string) ([]Process, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	listen, err := listeningSockets(procRoot)
	if err != nil {
		return nil, err
	}
	var out []Process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, ok, err := readProcess(filepath.Join(procRoot, e.Name()), pid, defaultConf, listen)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			continue // exited while we looked (ESRCH: caught while exiting)
		}
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// readProcess reads one process; ok is false when it is not nutcracker. Only a process that
// vanished or a /proc that cannot be read at all is an error: what the kernel hides from
// another user is recorded in Unreadable.
func readProcess(dir string, pid int, defaultConf string, listen map[string]string) (p Process, ok bool, err error) {
	p = Process{PID: pid, ConfigPath: defaultConf, Listening: []string{}, Unreadable: []string{}}
	raw, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil {
		return p, false, err
	}
	if len(raw) == 0 {
		return p, false, nil // a kernel thread or a zombie
	}
	p.Args = strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	comm, err := os.ReadFile(filepath.Join(dir, "comm"))
	if err != nil {
		return p, false, err
	}
	exe, err := os.Readlink(filepath.Join(dir, "exe"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		p.Unreadable = append(p.Unreadable, "exe")
	}
	p.Exe = strings.TrimSuffix(exe, " (deleted)") // replaced on disk since it started
	cwd, err := os.Readlink(filepath.Join(dir, "cwd"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		p.Unreadable = append(p.Unreadable, "cwd")
	}
	if !isNutcracker(p.Exe, p.Args[0], cwd, strings.TrimSpace(string(comm))) {
		return p, false, nil
	}
	uid, err := effectiveUID(filepath.Join(dir, "status"))
	if err != nil {
		return p, false, err
	}
	p.UID, p.User = uid, userName(uid)
	addr, port := defaultStatsAddr, defaultStatsPort
	for i := 1; i < len(p.Args); i++ {
		flag, val, hasVal := strings.Cut(p.Args[i], "=")
		next := func() string {
			if hasVal {
				return val
			}
			if i+1 < len(p.Args) {
				i++
				return p.Args[i]
			}
			return ""
		}
		switch flag {
		case "-c", "--conf-file":
			p.ConfigPath = next()
		case "-a", "--stats-addr":
			addr = next()
		case "-s", "--stats-port":
			port = next()
		}
	}
	// nutcracker opens a relative -c from its own working directory, not ours.
	if !filepath.IsAbs(p.ConfigPath) && cwd != "" {
		p.ConfigPath = filepath.Join(cwd, p.ConfigPath)
	}
	p.StatsAddr = net.JoinHostPort(addr, port)
	fds, err := os.ReadDir(filepath.Join(dir, "fd"))
	if errors.Is(err, fs.ErrNotExist) {
		return p, false, err
	}
	if err != nil {
		p.Unreadable = append(p.Unreadable, "fd")
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
		if err != nil {
			continue
		}
		if inode, ok := strings.CutPrefix(target, "socket:["); ok {
			if a, ok := listen[strings.TrimSuffix(inode, "]")]; ok {
				p.Listening = append(p.Listening, a)
			}
		}
	}
	return p, true, nil
}

// isNutcracker recognises nutcracker by its executable, not only by its name: a build that
// patchctl installed runs as <root>/current (a symlink to <root>/slots/<name>/nutcracker),
// so its process is named "current". The executable link is only readable by the process's
// user and root; otherwise argv[0] is followed through its symlinks (from the process's
// directory when relative and readable).
func isNutcracker(exe, argv0, cwd, comm string) bool {
	named := func(path string) bool { return strings.HasPrefix(filepath.Base(path), "nutcracker") }
	if exe != "" {
		return named(exe)
	}
	if named(argv0) || strings.HasPrefix(comm, "nutcracker") {
		return true
	}
	if !filepath.IsAbs(argv0) {
		if cwd == "" || !strings.Contains(argv0, "/") {
			return false // found on the PATH of a process we cannot see into
		}
		argv0 = filepath.Join(cwd, argv0)
	}
	real, err := filepath.EvalSymlinks(argv0)
	return err == nil && named(real)
}

func effectiveUID(statusPath string) (int, error) {
	f, err := os.Open(statusPath)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
			fields := strings.Fields(rest)
			if len(fields) >= 2 {
				return strconv.Atoi(fields[1])
			}
		}
	}
	return 0, fmt.Errorf("%s: no Uid line", statusPath)
}

// listeningSockets maps socket inodes to the TCP addresses listening on them.
func listeningSockets(procRoot string) (map[string]string, error) {
	out := map[string]string{}
	for _, name := range []string{"tcp", "tcp6"} {
		f, err := os.Open(filepath.Join(procRoot, "net", name))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("read listening sockets: %w", err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			if len(fields) < 10 || fields[3] != "0A" { // 0A = LISTEN
				continue
			}
			if addr, err := decodeProcAddr(fields[1]); err == nil {
				out[fields[9]] = addr
			}
		}
		f.Close()
	}
	return out, nil
}

// decodeProcAddr turns /proc/net/tcp's "0100007F:1F90" into "127.0.0.1:8080". The address
// is stored as host-order 32-bit words.
func decodeProcAddr(s string) (string, error) {
	hexIP, hexPort, ok := strings.Cut(s, ":")
	if !ok {
		return "", fmt.Errorf("bad address %q", s)
	}
	raw, err := hex.DecodeString(hexIP)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return "", fmt.Errorf("bad address %q", s)
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return "", fmt.Errorf("bad port %q", s)
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		ip[i], ip[i+1], ip[i+2], ip[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(int(port))), nil
}
