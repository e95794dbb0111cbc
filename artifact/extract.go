package artifact

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// ErrUnsafeArchive is matched by every refusal of an archive entry: absolute paths, "..",
// links that leave the archive, entries over the size limit.
var ErrUnsafeArchive = errors.New("unsafe archive")

// DefaultMaxMemberSize caps every archive entry; nutcracker is well under 1 MiB.
const DefaultMaxMemberSize = 256 << 20

// cleanArchivePath normalises an entry name ("./usr/sbin/x" → "usr/sbin/x") and refuses
// names that would land outside the extraction root.
func cleanArchivePath(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty path")
	}
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%q: absolute path", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("%q: \"..\" in path", name)
		}
	}
	return path.Clean(name), nil
}

// extractFromTar copies the regular file member of the tar stream r to w. It reads the whole
// stream and refuses it if any entry is unsafe, even one it does not extract.
func extractFromTar(r io.Reader, member string, maxSize int64, w io.Writer) error {
	tr := tar.NewReader(r)
	found := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		name, err := cleanArchivePath(h.Name)
		if err != nil {
			return fmt.Errorf("%w: entry %w", ErrUnsafeArchive, err)
		}
		if h.Size > maxSize {
			return fmt.Errorf("%w: entry %q: %d bytes, over the limit of %d", ErrUnsafeArchive, h.Name, h.Size, maxSize)
		}
		switch h.Typeflag {
		case tar.TypeSymlink:
			if err := checkLink(name, path.Join(path.Dir(name), h.Linkname), h.Linkname); err != nil {
				return err
			}
		case tar.TypeLink:
			if err := checkLink(name, h.Linkname, h.Linkname); err != nil {
				return err
			}
		}
		if name != member {
			continue
		}
		if found {
			return fmt.Errorf("%w: %s appears twice", ErrUnsafeArchive, member)
		}
		found = true
		if h.Typeflag != tar.TypeReg {
			return fmt.Errorf("%s is not a regular file (tar type %q): name the file itself", member, h.Typeflag)
		}
		// The header's size was checked; the limit also guards against a lying header.
		if n, err := io.Copy(w, io.LimitReader(tr, maxSize+1)); err != nil {
			return fmt.Errorf("extract %s: %w", member, err)
		} else if n > maxSize {
			return fmt.Errorf("%w: %s: over the limit of %d bytes", ErrUnsafeArchive, member, maxSize)
		}
	}
	if !found {
		return fmt.Errorf("%s not found in the archive", member)
	}
	return nil
}

// checkLink refuses a link whose target, resolved inside the archive, leaves it. Absolute
// targets always leave it.
func checkLink(name, resolved, target string) error {
	if strings.HasPrefix(target, "/") {
		return fmt.Errorf("%w: link %q points to the absolute path %q", ErrUnsafeArchive, name, target)
	}
	if c := path.Clean(resolved); c == ".." || strings.HasPrefix(c, "../") {
		return fmt.Errorf("%w: link %q points to %q, outside the archive", ErrUnsafeArchive, name, target)
	}
	return nil
}

// extractFromTarball copies member of a gzip-compressed tarball to w.
func extractFromTarball(r io.Reader, member string, maxSize int64, w io.Writer) error {
	zr, err := gzip.NewReader(bufio.NewReader(r))
	if err != nil {
		return fmt.Errorf("gunzip: %w", err)
	}
	defer zr.Close()
	return extractFromTar(zr, member, maxSize, w)
}

// extractFromDeb copies member of the data.tar.{xz,zst,gz} inside a Debian package to w.
func extractFromDeb(r io.Reader, member string, maxSize int64, w io.Writer) error {
	name, data, err := findArMember(r, "data.tar")
	if err != nil {
		return err
	}
	var tarStream io.Reader
	switch path.Ext(name) {
	case ".xz":
		xr, err := xz.NewReader(bufio.NewReader(data))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		tarStream = xr
	case ".zst":
		// One goroutine and a bounded window: a crafted frame must not claim gigabytes.
		zr, err := zstd.NewReader(data, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer zr.Close()
		tarStream = zr
	case ".gz":
		zr, err := gzip.NewReader(data)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer zr.Close()
		tarStream = zr
	case ".tar":
		tarStream = data
	default:
		return fmt.Errorf("%s: unsupported compression (want xz, zst, gz or none)", name)
	}
	if err := extractFromTar(tarStream, member, maxSize, w); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// ar format: an 8-byte magic, then per member a 60-byte header (name 16, mtime 12, uid 6,
// gid 6, mode 8, size 10, "`\n") and the data, padded to an even length.
const (
	arMagic     = "!<arch>\n"
	arHeaderLen = 60
)

// findArMember returns the first member of the ar archive r whose name starts with prefix,
// as a reader bounded to that member.
func findArMember(r io.Reader, prefix string) (string, io.Reader, error) {
	br := bufio.NewReader(r)
	magic := make([]byte, len(arMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != arMagic {
		return "", nil, errors.New("not a Debian package: no ar header")
	}
	hdr := make([]byte, arHeaderLen)
	for {
		if _, err := io.ReadFull(br, hdr); err == io.EOF {
			return "", nil, fmt.Errorf("no %s* member in the package", prefix)
		} else if err != nil {
			return "", nil, fmt.Errorf("read ar header: %w", err)
		}
		if string(hdr[58:60]) != "`\n" {
			return "", nil, errors.New("corrupt ar header")
		}
		name := strings.TrimSuffix(string(bytes.TrimRight(hdr[0:16], " ")), "/")
		size, err := strconv.ParseInt(string(bytes.TrimRight(hdr[48:58], " ")), 10, 64)
		if err != nil || size < 0 {
			return "", nil, fmt.Errorf("ar member %q: bad size %q", name, hdr[48:58])
		}
		if strings.HasPrefix(name, prefix) {
			return name, io.LimitReader(br, size), nil
		}
		if _, err := br.Discard(int(size + size%2)); err != nil {
			return "", nil, fmt.Errorf("ar member %q: %w", name, err)
		}
	}
}
