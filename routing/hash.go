package routing

import (
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/bits"
	"slices"
)

// ErrUnknownHash is returned for a hash name nutcracker does not accept.
var ErrUnknownHash = errors.New("unknown hash")

// HashFunc maps a key to the 32-bit value nutcracker routes it by.
type HashFunc func(key []byte) uint32

// hashes holds the 12 hash functions of nutcracker 0.5.0 (src/hashkit), by configuration name.
//
// C's char is signed on the x86 builds nutcracker ships for, so several functions add or xor
// a sign-extended byte: sx(b) below.
var hashes = map[string]HashFunc{
	"one_at_a_time": oneAtATime,
	"md5":           md5Hash,
	"crc16":         crc16,
	"crc32":         crc32Libmemcached,
	"crc32a":        crc32.ChecksumIEEE,
	"fnv1_64":       fnv1_64,
	"fnv1a_64":      fnv1a_64,
	"fnv1_32":       fnv1_32,
	"fnv1a_32":      fnv1a_32,
	"hsieh":         hsieh,
	"murmur":        murmur,
	"jenkins":       jenkins,
}

// DefaultHash is nutcracker's hash when a pool does not set one.
const DefaultHash = "fnv1a_64"

// HashNames lists the hash names nutcracker accepts, sorted.
func HashNames() []string {
	names := make([]string, 0, len(hashes))
	for n := range hashes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Hash returns the hash function nutcracker uses for the configuration value name.
func Hash(name string) (HashFunc, error) {
	h, ok := hashes[name]
	if !ok {
		return nil, fmt.Errorf("%q: %w", name, ErrUnknownHash)
	}
	return h, nil
}

// sx sign-extends a byte the way a C char does on x86.
func sx(b byte) uint32 { return uint32(int32(int8(b))) }

func oneAtATime(key []byte) uint32 {
	var v uint32
	for _, b := range key {
		v += sx(b)
		v += v << 10
		v ^= v >> 6
	}
	v += v << 3
	v ^= v >> 11
	v += v << 15
	return v
}

func md5Hash(key []byte) uint32 {
	d := md5.Sum(key)
	return binary.LittleEndian.Uint32(d[:4])
}

// crc16Table is CRC-16/XMODEM (polynomial 0x1021).
var crc16Table = func() (t [256]uint32) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = uint32(c)
	}
	return t
}()

// crc16 keeps the running value in 32 bits without masking, as nutcracker does, so the result
// is not a 16-bit CRC once the key is longer than two bytes.
func crc16(key []byte) uint32 {
	var crc uint32
	for _, b := range key {
		crc = crc<<8 ^ crc16Table[(crc>>8^uint32(b))&0xff]
	}
	return crc
}

// crc32Libmemcached keeps 15 bits of the IEEE CRC, for libmemcached compatibility.
func crc32Libmemcached(key []byte) uint32 {
	return crc32.ChecksumIEEE(key) >> 16 & 0x7fff
}

func fnv1_64(key []byte) uint32 {
	h := uint64(0xcbf29ce484222325)
	for _, b := range key {
		h *= 0x100000001b3
		h ^= uint64(int64(int8(b)))
	}
	return uint32(h)
}

// fnv1a_64 is nutcracker's default hash; despite its name it computes in 32 bits with the
// 64-bit constants truncated.
func fnv1a_64(key []byte) uint32 {
	h := uint32(0x84222325)
	for _, b := range key {
		h ^= sx(b)
		h *= 0x1b3
	}
	return h
}

func fnv1_32(key []byte) uint32 {
	h := uint32(2166136261)
	for _, b := range key {
		h *= 16777619
		h ^= sx(b)
	}
	return h
}

func fnv1a_32(key []byte) uint32 {
	h := uint32(2166136261)
	for _, b := range key {
		h ^= sx(b)
		h *= 16777619
	}
	return h
}

// hsieh is Paul Hsieh's SuperFastHash as nutcracker has it: seed 0, and a sign-extended
// third byte in the 3-byte tail.
func hsieh(key []byte) uint32 {
	if len(key) == 0 {
		return 0
	}
	get16 := func(p []byte) uint32 { return uint32(p[1])<<8 + uint32(p[0]) }
	var h uint32
	for ; len(key) >= 4; key = key[4:] {
		h += get16(key)
		tmp := get16(key[2:])<<11 ^ h
		h = h<<16 ^ tmp
		h += h >> 11
	}
	switch len(key) {
	case 3:
		h += get16(key)
		h ^= h << 16
		h ^= sx(key[2]) << 18
		h += h >> 11
	case 2:
		h += get16(key)
		h ^= h << 11
		h += h >> 17
	case 1:
		h += uint32(key[0])
		h ^= h << 10
		h += h >> 1
	}
	h ^= h << 3
	h += h >> 5
	h ^= h << 4
	h += h >> 17
	h ^= h << 25
	h += h >> 6
	return h
}

// murmur is MurmurHash2 with nutcracker's length-dependent seed.
func murmur(key []byte) uint32 {
	const m = 0x5bd1e995
	n := uint32(len(key))
	h := 0xdeadbeef*n ^ n
	for ; len(key) >= 4; key = key[4:] {
		k := binary.LittleEndian.Uint32(key)
		k *= m
		k ^= k >> 24
		k *= m
		h *= m
		h ^= k
	}
	switch len(key) {
	case 3:
		h ^= uint32(key[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(key[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(key[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// jenkins is Bob Jenkins' lookup3 hashlittle with nutcracker's initval 13.
func jenkins(key []byte) uint32 {
	a := 0xdeadbeef + uint32(len(key)) + 13
	b, c := a, a
	for len(key) > 12 {
		a += binary.LittleEndian.Uint32(key)
		b += binary.LittleEndian.Uint32(key[4:])
		c += binary.LittleEndian.Uint32(key[8:])
		a -= c
		a ^= bits.RotateLeft32(c, 4)
		c += b
		b -= a
		b ^= bits.RotateLeft32(a, 6)
		a += c
		c -= b
		c ^= bits.RotateLeft32(b, 8)
		b += a
		a -= c
		a ^= bits.RotateLeft32(c, 16)
		c += b
		b -= a
		b ^= bits.RotateLeft32(a, 19)
		a += c
		c -= b
		c ^= bits.RotateLeft32(b, 4)
		b += a
		key = key[12:]
	}
	if len(key) == 0 {
		return c
	}
	// The last 1..12 bytes, zero-padded, little-endian.
	var tail [12]byte
	copy(tail[:], key)
	a += binary.LittleEndian.Uint32(tail[0:])
	b += binary.LittleEndian.Uint32(tail[4:])
	c += binary.LittleEndian.Uint32(tail[8:])
	c ^= b
	c -= bits.RotateLeft32(b, 14)
	a ^= c
	a -= bits.RotateLeft32(c, 11)
	b ^= a
	b -= bits.RotateLeft32(a, 25)
	c ^= b
	c -= bits.RotateLeft32(b, 16)
	a ^= c
	a -= bits.RotateLeft32(c, 4)
	b ^= a
	b -= bits.RotateLeft32(a, 14)
	c ^= b
	c -= bits.RotateLeft32(b, 24)
	return c
}
