// Package readfile reads the files patchctl is given (its configuration, the inventory,
// advisory feeds, nutcracker.yml, secrets, keys) with a size cap, so that a wrong path
// (/dev/zero, a log, a disk image) fails at once with a clear error instead of growing
// without end.
package readfile

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrTooLarge: the file holds more than its limit.
var ErrTooLarge = errors.New("too large")

// Read returns the contents of path if it holds at most limit bytes.
func Read(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *fs.PathError names the file
	}
	defer f.Close()
	// A buffer of the file's size (one byte more to see the end) is allocated once, where
	// growing one would leave about twice the file in garbage: that was most of lint's
	// peak heap on a large nutcracker.yml.
	size := int64(512)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = min(st.Size(), limit) + 1
	}
	return read(f, path, limit, make([]byte, 0, size))
}

// All reads r to its end if it holds at most limit bytes; name is the file for messages.
func All(r io.Reader, name string, limit int64) ([]byte, error) {
	return read(r, name, limit, make([]byte, 0, 512))
}

// read appends r's contents to buf, growing it only when full.
func read(r io.Reader, name string, limit int64, buf []byte) ([]byte, error) {
	lr := io.LimitReader(r, limit+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
	}
	if int64(len(buf)) > limit {
		return nil, fmt.Errorf("%s: %w: more than %s", name, ErrTooLarge, Size(limit))
	}
	return buf, nil
}

// Size formats a byte count for messages: 1 MiB, 64 KiB, 300 bytes.
func Size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
