package routing

import (
	"errors"
	"math"
	"testing"
)

func servers(addrs ...string) []Server {
	s := make([]Server, len(addrs))
	for i, a := range addrs {
		s[i] = Server{Addr: a, Weight: 1}
	}
	return s
}

func TestDiff(t *testing.T) {
	three := servers("10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379")
	four := servers("10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379", "10.0.0.4:6379")
	reversed := []Server{three[2], three[1], three[0]}
	renamed := servers("10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379")
	renamed[0].Name = "primary"
	heavier := servers("10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379")
	heavier[0].Weight = 3

	for _, tc := range []struct {
		name     string
		old, new Pool
		lo, hi   float64 // expected moved fraction range
	}{
		{"same", Pool{Servers: three}, Pool{Servers: three}, 0, 0},
		{"reordered", Pool{Servers: three}, Pool{Servers: reversed}, 0, 0},
		{"ketama add one", Pool{Hash: "murmur", Servers: three}, Pool{Hash: "murmur", Servers: four}, 0.18, 0.32},
		{"modula add one", Pool{Hash: "murmur", Distribution: Modula, Servers: three}, Pool{Hash: "murmur", Distribution: Modula, Servers: four}, 0.65, 0.85},
		{"ketama rename one", Pool{Hash: "md5", Servers: three}, Pool{Hash: "md5", Servers: renamed}, 0.15, 0.5},
		{"ketama reweight", Pool{Hash: "md5", Servers: three}, Pool{Hash: "md5", Servers: heavier}, 0.2, 0.5},
		{"hash changed", Pool{Hash: "md5", Servers: three}, Pool{Hash: "murmur", Servers: three}, 0.55, 0.8},
		{"to random", Pool{Servers: three}, Pool{Distribution: Random, Servers: three}, 0.666, 0.667},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Diff(tc.old, tc.new, 4000)
			if err != nil {
				t.Fatal(err)
			}
			if rep.MovedFraction < tc.lo || rep.MovedFraction > tc.hi {
				t.Errorf("moved %.3f, want within [%.3f, %.3f]", rep.MovedFraction, tc.lo, tc.hi)
			}
			var before, after float64
			for _, s := range rep.Shares {
				before += s.Before
				after += s.After
			}
			if math.Abs(before-1) > 1e-9 || math.Abs(after-1) > 1e-9 {
				t.Errorf("shares sum to %.3f before and %.3f after, want 1", before, after)
			}
		})
	}

	rep, err := Diff(Pool{Servers: three}, Pool{Servers: four}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Shares) != 4 || rep.Shares[3].Before != 0 || rep.Shares[3].After == 0 || rep.Shares[3].NameBefore != "" {
		t.Errorf("added server share = %+v, want absent before and present after", rep.Shares[3])
	}
	again, _ := Diff(Pool{Servers: three}, Pool{Servers: four}, 1000)
	if again.Moved != rep.Moved {
		t.Errorf("Diff is not deterministic: %v then %v", rep.Moved, again.Moved)
	}
	if _, err := Diff(Pool{Servers: three}, Pool{Hash: "nope", Servers: three}, 10); err == nil {
		t.Error("Diff with a bad new pool succeeded")
	}
}

func TestSampleKeysTags(t *testing.T) {
	keys := SampleKeys(500, "{}")
	withTag := 0
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[string(k)] {
			t.Fatalf("duplicate key %q", k)
		}
		seen[string(k)] = true
		if string(tagged(k, [2]byte{'{', '}'})) != string(k) {
			withTag++
		}
	}
	if withTag < 150 || withTag > 350 {
		t.Errorf("%d of 500 keys carry the tag, want about half", withTag)
	}
}

// TestDiffKeysBounded: the sample size is checked before any key is made (a negative one
// panicked, two billion exhausted memory).
func TestDiffKeysBounded(t *testing.T) {
	p := Pool{Servers: []Server{{Addr: "a:1", Weight: 1}}}
	for _, n := range []int{-5, 0, MaxDiffKeys + 1, 2_000_000_000} {
		if _, err := Diff(p, p, n); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("Diff with %d keys: %v, want ErrOutOfRange", n, err)
		}
	}
	if _, err := Verify(t.Context(), p, "127.0.0.1:1", VerifyOptions{Keys: -1}); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("Verify with -1 keys: %v, want ErrOutOfRange", err)
	}
}
