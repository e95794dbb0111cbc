package routing

import (
	"crypto/md5"
	"encoding/binary"
	"errors"
	"testing"
)

// TestHashApple checks the known answers for "apple" from nutcracker 0.5.0's src/test_all.c.
func TestHashApple(t *testing.T) {
	want := map[string]uint32{
		"one_at_a_time": 2297466611,
		"md5":           3195025439,
		"crc16":         3662830516,
		"crc32":         10542,
		"crc32a":        2838417488,
		"fnv1_64":       473199127,
		"fnv1a_64":      1488911807,
		"fnv1_32":       67176023,
		"fnv1a_32":      280767167,
		"hsieh":         3738850110,
		"murmur":        4142305122,
		"jenkins":       1442444624,
	}
	if got := len(HashNames()); got != len(want) {
		t.Fatalf("HashNames() has %d names, want %d", got, len(want))
	}
	for _, name := range HashNames() {
		h, err := Hash(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := h([]byte("apple")); got != want[name] {
			t.Errorf("%s(apple) = %d, want %d", name, got, want[name])
		}
	}
}

func TestHashUnknown(t *testing.T) {
	if _, err := Hash("sha1"); !errors.Is(err, ErrUnknownHash) {
		t.Fatalf("Hash(sha1) error = %v, want ErrUnknownHash", err)
	}
}

// TestHashSignExtension pins the C signed-char behaviour on a byte >= 0x80: nutcracker xors
// 0xffffff80 into the FNV state, not 0x80. The live-proxy tests cover every function with
// binary keys.
func TestHashSignExtension(t *testing.T) {
	basis, prime, basis64 := uint32(2166136261), uint32(16777619), uint32(0x84222325)
	if got, want := fnv1a_32([]byte{0x80}), (basis^0xffffff80)*prime; got != want {
		t.Errorf("fnv1a_32(0x80) = %d, want %d", got, want)
	}
	if got, want := fnv1a_64([]byte{0x80}), (basis64^0xffffff80)*0x1b3; got != want {
		t.Errorf("fnv1a_64(0x80) = %d, want %d", got, want)
	}
	if got := hsieh(nil); got != 0 {
		t.Errorf("hsieh(empty) = %d, want 0", got)
	}
	if got := crc32Libmemcached([]byte("a much longer key than apple")); got > 0x7fff {
		t.Errorf("crc32 = %d, want at most 15 bits", got)
	}
}

// TestKetamaMD5Vectors checks the continuum point values from src/test_all.c.
func TestKetamaMD5Vectors(t *testing.T) {
	d := md5.Sum([]byte("server1-8"))
	if got := binary.LittleEndian.Uint32(d[0:]); got != 3853726576 {
		t.Errorf("point 0 of server1-8 = %d, want 3853726576", got)
	}
	if got := binary.LittleEndian.Uint32(d[12:]); got != 2667054752 {
		t.Errorf("point 3 of server1-8 = %d, want 2667054752", got)
	}
}
