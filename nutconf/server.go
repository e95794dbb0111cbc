package nutconf

import (
	"errors"
	"math"
	"strings"
)

// Reasons nutcracker gives for refusing a server line (the same in 0.4.0 … 0.5.0).
var (
	ErrServerFormat     = errors.New(`not in "host:port:weight [name]" or "/path/unix.sock:weight [name]" format`)
	ErrServerWeight     = errors.New("weight is not a positive number")
	ErrServerZeroWeight = errors.New("weight is zero")
	ErrServerPort       = errors.New("port is not between 1 and 65535")
)

// Server is one line of a pool's servers: list.
type Server struct {
	Raw    string // the line as written
	Pos    Pos
	Unix   bool   // a unix socket path instead of host:port
	Host   string // host, or the socket path when Unix
	Port   int    // 0 when Unix
	Weight int
	Name   string // explicit name after the last space; see HasName
	// HasName reports an explicit name (a line ending in a space has an empty one).
	HasName bool
	// Err is why nutcracker refuses the line (one of the ErrServer* values), or nil.
	Err error

	portText string // the port digits as written: they are part of the hash name
}

// HashName is the name nutcracker hashes on ketama, checks for duplicates and reports in
// its stats: the explicit name; else "host:port", just "host" when the port is 11211
// (libmemcached compatibility); "path:" for a unix socket.
func (s Server) HashName() string {
	switch {
	case s.HasName:
		return s.Name
	case !s.Unix && s.Port == 11211:
		return s.Host
	default:
		return s.hostPort()
	}
}

// Address is what to connect to: "host:port" or the socket path.
func (s Server) Address() string {
	if s.Unix {
		return s.Host
	}
	return s.hostPort()
}

// hostPort is "host:port". ParseServer takes both from the start of Raw, so it is a prefix
// of Raw there and costs no allocation (lint asks for it twice per server).
func (s Server) hostPort() string {
	h := len(s.Host)
	if n := h + 1 + len(s.portText); n <= len(s.Raw) && s.Raw[:h] == s.Host && s.Raw[h] == ':' && s.Raw[h+1:n] == s.portText {
		return s.Raw[:n]
	}
	return s.Host + ":" + s.portText
}

// ParseServer splits a server line from the right, as nutcracker's conf_add_server does:
// the last space separates the name, the last ':' before it the weight, then (unless the
// line starts with '/') the next ':' the port. The returned Server is filled as far as
// parsing got, with Err set to the error.
func ParseServer(line string) (Server, error) {
	s := Server{Raw: line}
	// nutcracker searches for ' ', ':', ':' and finally a NUL byte, and accepts the line
	// when it stopped at the third delimiter for host:port:weight, or the second for a path.
	const delims = " ::\x00"
	want := 3
	if strings.HasPrefix(line, "/") {
		s.Unix = true
		want = 2
	}
	end := len(line)
	var weight string
	k := 0
	for ; k < len(delims); k++ {
		q := strings.LastIndexByte(line[:end], delims[k])
		if q < 0 {
			if k == 0 {
				continue
			}
			break
		}
		switch k {
		case 0:
			s.Name, s.HasName = line[q+1:end], true
		case 1:
			weight = line[q+1 : end]
		case 2:
			s.portText = line[q+1 : end]
		}
		end = q
	}
	if k != want {
		s.Err = ErrServerFormat
		return s, s.Err
	}
	s.Host = line[:end]
	s.Weight = Number(weight)
	switch {
	case s.Weight < 0:
		s.Err = ErrServerWeight
	case s.Weight == 0:
		s.Err = ErrServerZeroWeight
	case !s.Unix:
		s.Port = Number(s.portText)
		if s.Port < 1 || s.Port > 65535 {
			s.Err = ErrServerPort
		}
	}
	return s, s.Err
}

// Number reads an integer as nutcracker's nc_atoi does: digits only, accumulated in a
// 32-bit int that silently wraps, and -1 (not a number) when empty, when any byte is not a
// digit, or when the wrapped result is negative.
func Number(s string) int {
	if s == "" {
		return -1
	}
	var v int32
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return -1
		}
		v = v*10 + int32(c-'0')
	}
	if v < 0 {
		return -1
	}
	return int(v)
}

// Overflows reports whether s is all digits but above 2^31-1, so that nutcracker's reading
// wraps around.
func Overflows(s string) bool {
	if s == "" {
		return false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		v = v*10 + uint64(c-'0')
		if v > math.MaxInt32 {
			return true
		}
	}
	return false
}

// Reasons nutcracker gives for refusing a listen value.
var (
	ErrListenFormat = errors.New(`not in "host:port" or "/path/unix.sock [permissions]" format`)
	ErrListenPort   = errors.New("port is not between 1 and 65535")
	ErrListenPerm   = errors.New("socket permissions are above 0777 or out of range")
)

// Listen is a parsed listen: value.
type Listen struct {
	Raw  string
	Unix bool
	Host string // host, or the socket path when Unix
	Port int
	// Perm is the unix socket mode nutcracker applies (0 = left as created), PermText the
	// text it was read from and HasPerm whether one was given.
	Perm     uint32
	PermText string
	HasPerm  bool
}

// PermIsOctal reports whether the permission text is plain octal digits. nutcracker reads
// it with strtol(…, 8) and ignores what follows the digits, so "0999" becomes 0.
func (l Listen) PermIsOctal() bool {
	if !l.HasPerm {
		return true
	}
	if l.PermText == "" {
		return false
	}
	for i := 0; i < len(l.PermText); i++ {
		if l.PermText[i] < '0' || l.PermText[i] > '7' {
			return false
		}
	}
	return true
}

// Address is the host:port or the socket path.
func (l Listen) Address() string {
	if l.Unix {
		return l.Host
	}
	return l.Host + ":" + l.Raw[strings.LastIndexByte(l.Raw, ':')+1:]
}

// ParseListen parses a listen: value as conf_set_listen does, without resolving the host.
func ParseListen(v string) (Listen, error) {
	l := Listen{Raw: v}
	if strings.HasPrefix(v, "/") {
		l.Unix = true
		q := strings.LastIndexByte(v, ' ')
		if q < 0 {
			l.Host = v
			return l, nil
		}
		l.Host, l.PermText, l.HasPerm = v[:q], v[q+1:], true
		perm, ok := strtol8(l.PermText)
		// mode_t is 32 bits: strtol's long is truncated before the > 0777 check.
		l.Perm = uint32(perm)
		if !ok || l.Perm > 0o777 {
			return l, ErrListenPerm
		}
		return l, nil
	}
	q := strings.LastIndexByte(v, ':')
	if q < 0 {
		return l, ErrListenFormat
	}
	l.Host = v[:q]
	l.Port = Number(v[q+1:])
	if l.Port < 1 || l.Port > 65535 {
		return l, ErrListenPort
	}
	return l, nil
}

// strtol8 mimics C strtol(s, NULL, 8): leading white space, an optional sign, then octal
// digits up to the first other byte. ok is false when the value overflows a long.
func strtol8(s string) (int64, bool) {
	i := 0
	for i < len(s) && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	var v uint64
	for ; i < len(s) && s[i] >= '0' && s[i] <= '7'; i++ {
		v = v*8 + uint64(s[i]-'0')
		if v > math.MaxInt64 {
			return 0, false
		}
	}
	if neg {
		return -int64(v), true
	}
	return int64(v), true
}
