package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

type entry struct {
	name, link string
	typ        byte
	body       string
	size       int64 // header size if not len(body)
}

func reg(name, body string) entry { return entry{name: name, typ: tar.TypeReg, body: body} }

func tarBytes(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o755}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExtractFromTar(t *testing.T) {
	const member = "usr/sbin/nutcracker"
	tests := []struct {
		name    string
		entries []entry
		max     int64
		want    string // extracted content; "" = error expected
		err     string
		unsafe  bool // error must match ErrUnsafeArchive
	}{
		{"Plain", []entry{{name: "./usr/", typ: tar.TypeDir}, reg("./usr/sbin/nutcracker", "ELF"), reg("./usr/share/doc/x", "doc")}, 100, "ELF", "", false},
		{"SafeLinks", []entry{reg("usr/sbin/nutcracker", "ELF"), {name: "usr/bin/nc", link: "../sbin/nutcracker", typ: tar.TypeSymlink}, {name: "usr/bin/nc2", link: "usr/sbin/nutcracker", typ: tar.TypeLink}}, 100, "ELF", "", false},
		{"AbsolutePath", []entry{reg("/etc/cron.d/x", "evil"), reg(member, "ELF")}, 100, "", `"/etc/cron.d/x": absolute path`, true},
		{"DotDot", []entry{reg("usr/../../root/.ssh/authorized_keys", "evil"), reg(member, "ELF")}, 100, "", `".." in path`, true},
		{"DotDotMember", []entry{reg("usr/sbin/../sbin/nutcracker", "ELF")}, 100, "", `".." in path`, true},
		{"AbsoluteSymlink", []entry{reg(member, "ELF"), {name: "usr/lib/x", link: "/etc/shadow", typ: tar.TypeSymlink}}, 100, "", `points to the absolute path "/etc/shadow"`, true},
		{"EscapingSymlink", []entry{{name: "usr/lib/x", link: "../../../etc", typ: tar.TypeSymlink}, reg(member, "ELF")}, 100, "", "outside the archive", true},
		{"EscapingHardlink", []entry{reg(member, "ELF"), {name: "usr/h", link: "../etc/passwd", typ: tar.TypeLink}}, 100, "", "outside the archive", true},
		{"AbsoluteHardlink", []entry{reg(member, "ELF"), {name: "usr/h", link: "/etc/passwd", typ: tar.TypeLink}}, 100, "", "absolute path", true},
		{"OversizedMember", []entry{reg(member, strings.Repeat("x", 101))}, 100, "", "101 bytes, over the limit of 100", true},
		{"OversizedOther", []entry{reg(member, "ELF"), reg("usr/share/big", strings.Repeat("x", 101))}, 100, "", `"usr/share/big": 101 bytes`, true},
		{"MemberIsSymlink", []entry{reg("usr/sbin/real", "ELF"), {name: member, link: "real", typ: tar.TypeSymlink}}, 100, "", "not a regular file", false},
		{"MemberTwice", []entry{reg(member, "ELF"), reg("./"+member, "EVIL")}, 100, "", "appears twice", true},
		{"Missing", []entry{reg("usr/bin/other", "x")}, 100, "", "usr/sbin/nutcracker not found", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := extractFromTar(bytes.NewReader(tarBytes(t, tt.entries...)), member, tt.max, &out)
			if tt.err == "" {
				if err != nil || out.String() != tt.want {
					t.Fatalf("got %q, %v; want %q", out.String(), err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
			if tt.unsafe && !errors.Is(err, ErrUnsafeArchive) {
				t.Fatalf("err = %v, want ErrUnsafeArchive", err)
			}
		})
	}
}

// debBytes builds a Debian package whose data member is data.tar<ext> holding tarball.
func debBytes(t testing.TB, ext string, tarball []byte) []byte {
	t.Helper()
	var data bytes.Buffer
	var w io.WriteCloser
	switch ext {
	case ".gz":
		w = gzip.NewWriter(&data)
	case ".xz":
		xw, err := xz.NewWriter(&data)
		if err != nil {
			t.Fatal(err)
		}
		w = xw
	case ".zst":
		zw, err := zstd.NewWriter(&data)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	default:
		w = nopCloser{&data}
	}
	if _, err := w.Write(tarball); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var deb bytes.Buffer
	deb.WriteString(arMagic)
	for _, m := range []struct {
		name string
		body []byte
	}{{"debian-binary", []byte("2.0\n")}, {"control.tar.gz", []byte("odd")}, {"data.tar" + ext, data.Bytes()}} {
		fmt.Fprintf(&deb, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m.name, 0, 0, 0, "100644", len(m.body))
		deb.Write(m.body)
		if len(m.body)%2 == 1 {
			deb.WriteByte('\n')
		}
	}
	return deb.Bytes()
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func TestExtractFromDeb(t *testing.T) {
	tarball := tarBytes(t, reg("./usr/sbin/nutcracker", "ELF binary"))
	for _, ext := range []string{".xz", ".zst", ".gz", ""} {
		t.Run("data.tar"+ext, func(t *testing.T) {
			var out bytes.Buffer
			if err := extractFromDeb(bytes.NewReader(debBytes(t, ext, tarball)), DefaultDebMember, 1<<20, &out); err != nil {
				t.Fatal(err)
			}
			if out.String() != "ELF binary" {
				t.Fatalf("extracted %q", out.String())
			}
		})
	}
	t.Run("Unsafe", func(t *testing.T) {
		deb := debBytes(t, ".xz", tarBytes(t, reg("./usr/sbin/nutcracker", "ELF"), reg("../../x", "evil")))
		err := extractFromDeb(bytes.NewReader(deb), DefaultDebMember, 1<<20, io.Discard)
		if !errors.Is(err, ErrUnsafeArchive) || !strings.Contains(err.Error(), "data.tar.xz") {
			t.Fatalf("err = %v, want ErrUnsafeArchive naming data.tar.xz", err)
		}
	})
	t.Run("Bzip2", func(t *testing.T) {
		deb := debBytes(t, "", tarball)
		deb = bytes.Replace(deb, []byte("data.tar        "), []byte("data.tar.bz2    "), 1)
		err := extractFromDeb(bytes.NewReader(deb), DefaultDebMember, 1<<20, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "data.tar.bz2: unsupported compression") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("Truncated", func(t *testing.T) {
		deb := debBytes(t, ".gz", tarball)
		err := extractFromDeb(bytes.NewReader(deb[:len(deb)-20]), DefaultDebMember, 1<<20, io.Discard)
		if err == nil {
			t.Fatal("no error for a truncated package")
		}
	})
}

func FuzzExtractFromDeb(f *testing.F) {
	f.Add(debBytes(f, "", tarBytes(f, reg("./usr/sbin/nutcracker", "ELF"))))
	f.Add(debBytes(f, ".gz", tarBytes(f, reg("usr/sbin/nutcracker", "ELF"), entry{name: "a", link: "../b", typ: tar.TypeSymlink})))
	f.Add([]byte(arMagic + "data.tar        0           0     0     100644  99999999  `\n"))
	f.Fuzz(func(t *testing.T, deb []byte) {
		var out bytes.Buffer
		err := extractFromDeb(bytes.NewReader(deb), DefaultDebMember, 1<<16, &out)
		if err == nil && out.Len() > 1<<16 {
			t.Fatalf("extracted %d bytes over the limit", out.Len())
		}
	})
}

func FuzzParseSHA256Sums(f *testing.F) {
	f.Add(strings.Repeat("a", 64) + "  nutcracker_0.5.0.deb\n# comment\n\n" + strings.Repeat("B", 64) + " *./x.tar.gz\n")
	f.Add("garbage\n")
	f.Fuzz(func(t *testing.T, s string) {
		sums, err := ParseSHA256Sums(strings.NewReader(s))
		if err != nil {
			return
		}
		for name, sum := range sums {
			if name == "" || !isHexDigest(sum, false) || strings.ToLower(sum) != sum {
				t.Fatalf("entry %q → %q", name, sum)
			}
		}
	})
}

func TestParseSHA256Sums(t *testing.T) {
	a, b := strings.Repeat("a", 64), strings.Repeat("B", 64)
	sums, err := ParseSHA256Sums(strings.NewReader(a + "  nutcracker_0.5.0.deb\n# c\n\n" + b + " *./twemproxy-0.5.0.tar.gz\n"))
	if err != nil {
		t.Fatal(err)
	}
	if sums["nutcracker_0.5.0.deb"] != a || sums["twemproxy-0.5.0.tar.gz"] != strings.ToLower(b) || len(sums) != 2 {
		t.Fatalf("sums = %v", sums)
	}
	if _, err := ParseSHA256Sums(strings.NewReader(a + "  ok\nnot a sum line\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("err = %v, want one naming line 2", err)
	}
}
