package lint

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/go-version"
)

func TestParseVersion(t *testing.T) {
	for _, in := range []string{"0.5.0", "v0.5.0", "0.5.0-RC1", "v0.5.0-rc1", "0.4.1", "v0.4.0", "0.1.16"} {
		v, err := ParseVersion(in)
		if err != nil {
			t.Errorf("ParseVersion(%q): %v", in, err)
			continue
		}
		if !strings.EqualFold(strings.TrimPrefix(in, "v"), v.Original()) {
			t.Errorf("ParseVersion(%q) = %s", in, v.Original())
		}
	}
	for _, in := range []string{"", "0.6.0", "0.5.1", "nutcracker", "0.5.0-RC2"} {
		if _, err := ParseVersion(in); err == nil {
			t.Errorf("ParseVersion(%q) accepted", in)
		}
	}
	known := KnownVersions()
	if !slices.IsSortedFunc(known, func(a, b *version.Version) int { return a.Compare(b) }) {
		t.Error("KnownVersions not ascending")
	}
	if !Newest().Equal(known[len(known)-1]) || Newest().String() != "0.5.0" {
		t.Errorf("Newest() = %s", Newest())
	}
}

// pool builds a one-pool configuration around extra keys and server lines.
func pool(extra string, servers ...string) string {
	if len(servers) == 0 {
		servers = []string{"127.0.0.1:6379:1"}
	}
	return "alpha:\n  listen: 127.0.0.1:22121\n  timeout: 400\n" + extra + "  servers:\n   - " + strings.Join(servers, "\n   - ") + "\n"
}

// versionCases are the rules of releases the parity test cannot run (no binaries).
var versionCases = []struct {
	target string
	conf   string
	rule   string // "" = no findings at all
}{
	{"0.1.19", pool("  redis: true\n"), RuleUnknownKey},
	{"0.1.20", pool("  redis: true\n"), ""},
	{"0.2.2", pool("  hash_tag: \"{}\"\n"), RuleUnknownKey},
	{"0.2.3", pool("  hash_tag: \"{}\"\n"), ""},
	{"0.2.3", pool("  hash: crc16\n"), RuleInvalidHash},
	{"0.2.4", pool("  hash: crc16\n"), ""},
	{"0.2.4", pool("  hash: crc32a\n"), RuleInvalidHash},
	{"0.3.0", pool("  hash: crc32a\n"), ""},
	{"0.2.0", pool("", "127.0.0.1:6379:1 a"), RuleInvalidServer},
	{"0.2.1", pool("", "127.0.0.1:6379:1 a"), ""},
	{"0.2.3", pool("", "/run/r.sock:1"), RuleInvalidServer},
	{"0.2.4", pool("", "/run/r.sock:1"), ""},
	{"0.2.3", pool("", "127.0.0.1:6379:1 a", "127.0.0.1:6379:1 b"), RuleDuplicateServer},
	{"0.2.4", pool("", "127.0.0.1:6379:1 a", "127.0.0.1:6379:1 b"), RuleDuplicateAddress},
	{"0.5.0", pool("", `"127.0.0.1:6379:1 "`, "127.0.0.1:6380:1"), RuleEmptyServerName},
	{"0.5.0", pool("", "127.0.0.1:6379:1 "+strings.Repeat("n", 271), "127.0.0.1:6380:1"), RuleLongServerName},
	{"0.3.0", pool("", "127.0.0.1:6379:1", "127.0.0.1:6380:0"), RuleNoKetamaPoints},
	{"0.4.0", pool("", "127.0.0.1:6379:1", "127.0.0.1:6380:0"), RuleZeroWeight},
	{"0.4.0", pool("  redis: true\n  redis_auth: pw\n"), RuleUnknownKey},
	{"0.4.0", pool("  redis_db: 1\n"), RuleUnknownKey},
	{"0.4.0", pool("  redis_auth: pw\n"), RuleUnknownKey},
	{"0.5.0-RC1", pool("  tcpkeepalive: true\n"), ""},
	{"0.5.0", pool("  reuseport: true\n"), RuleUnknownKey},
	{"0.5.0", pool("  failover: true\n"), RuleUnknownKey},
	{"0.5.0", strings.Replace(pool(""), "127.0.0.1:22121", "cache.internal:22121", 1), RuleListenDNS},
	{"0.5.0", strings.Replace(pool(""), "127.0.0.1:22121", "0:22121", 1), RuleOpenListen},
	{"0.5.0", strings.Replace(pool(""), "127.0.0.1:22121", "2130706433:22121", 1), ""},
	{"0.5.0", strings.Replace(pool(""), "127.0.0.1:22121", "0x7f.1:22121", 1), ""},
	{"0.5.0", strings.Replace(pool(""), "127.0.0.1:22121", "127.0.0.256:22121", 1), RuleListenDNS},
	{"0.5.0", strings.Replace(pool(""), "127.0.0.1:22121", "fe80::1::2:22121", 1), RuleInvalidListen},
	{"0.4.0", strings.Replace(pool(""), "127.0.0.1:22121", "/run/nc.sock 0666", 1), RuleListenPerm},
}

func TestVersionRules(t *testing.T) {
	for _, tt := range versionCases {
		t.Run(tt.target+"/"+tt.rule, func(t *testing.T) {
			v, err := ParseVersion(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			fs := Check("f.yml", []byte(tt.conf), v)
			if tt.rule == "" {
				if len(fs) != 0 {
					t.Fatalf("want no findings:\n%s", render(fs))
				}
				return
			}
			if !hasRule(fs, tt.rule) {
				t.Fatalf("want %s:\n%s", tt.rule, render(fs))
			}
			for _, f := range fs {
				if f.Severity == SeverityError && severity(f.Rule) != SeverityError {
					t.Errorf("rule %s reported as error", f.Rule)
				}
			}
		})
	}
}

func severity(id string) Severity {
	for _, r := range Rules() {
		if r.ID == id {
			return r.Severity
		}
	}
	return ""
}

// TestRulesCovered proves every rule fires somewhere in the corpus or the version cases,
// and that no finding uses a rule missing from Rules() (SARIF needs each one described).
func TestRulesCovered(t *testing.T) {
	seen := map[string]bool{RuleRead: true} // made by Report.AddFile, see TestReportText
	files, _ := filepath.Glob(filepath.Join("testdata", "parity", "*.yml"))
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range KnownVersions() {
			for _, f := range Check(path, data, v) {
				seen[f.Rule] = true
			}
		}
	}
	for _, tt := range versionCases {
		for _, f := range Check("f.yml", []byte(tt.conf), version.Must(version.NewVersion(tt.target))) {
			seen[f.Rule] = true
		}
	}
	ids := map[string]bool{}
	for _, r := range Rules() {
		ids[r.ID] = true
		if !seen[r.ID] {
			t.Errorf("rule %s never fires", r.ID)
		}
	}
	for id := range seen {
		if !ids[id] {
			t.Errorf("finding with undeclared rule %s", id)
		}
	}
}

func TestKetamaPoints(t *testing.T) {
	tests := []struct {
		weights []int
		want    []int
	}{
		{[]int{1, 1, 1}, []int{160, 160, 160}},
		{[]int{1, 2, 1, 3}, []int{88, 180, 88, 272}},
		{[]int{1, 2}, []int{104, 212}},
		{[]int{100000, 1}, []int{316, 0}},
	}
	for _, tt := range tests {
		total := 0
		for _, w := range tt.weights {
			total += w
		}
		var got []int
		for _, w := range tt.weights {
			got = append(got, KetamaPoints(w, total, len(tt.weights)))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("weights %v: points %v, want %v", tt.weights, got, tt.want)
		}
	}
}

func TestFindingsOrderAndDefaultTarget(t *testing.T) {
	conf := "alpha:\n  listen: 127.0.0.1:22121\n  hash: sha1\n  client_connections: 5\n  tcpkeepalive: true\n  servers:\n   - 127.0.0.1:6379:0\n"
	fs := Check("a.yml", []byte(conf), nil)
	var got []string
	for _, f := range fs {
		got = append(got, f.String())
	}
	want := []string{
		`a.yml:1:1: warning: no-timeout: pool "alpha" has no timeout: requests to a hung server wait forever`,
		`a.yml:3:9: error: invalid-hash: hash: "sha1" is not a hash of nutcracker 0.5.0 (crc16, crc32, crc32a, fnv1_32, fnv1_64, fnv1a_32, fnv1a_64, hsieh, jenkins, md5, murmur, one_at_a_time)`,
		`a.yml:4:3: warning: client-connections-ignored: client_connections is parsed but never enforced by any nutcracker version; limit clients with the open-file limit`,
		`a.yml:7:6: error: zero-weight: server "127.0.0.1:6379:0" has a zero weight`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !HasErrors(fs) {
		t.Error("HasErrors = false")
	}
	fs041 := Check("a.yml", []byte(conf), version.Must(version.NewVersion("0.4.1")))
	if !hasRule(fs041, RuleUnknownKey) {
		t.Errorf("0.4.1 must refuse tcpkeepalive:\n%s", render(fs041))
	}
}

func FuzzCheck(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "parity", "*.yml"))
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, f := range Check("fuzz.yml", data, nil) {
			if f.Line < 1 || f.Column < 1 || f.Rule == "" || f.Message == "" {
				t.Fatalf("bad finding %s", f)
			}
		}
	})
}

func BenchmarkCheck(b *testing.B) {
	data := GenerateConfig(1000, 20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if fs := Check("big.yml", data, nil); HasErrors(fs) {
			b.Fatalf("generated config has errors: %v", fs[0])
		}
	}
}

func ExampleCheck() {
	conf := []byte("alpha:\n  listen: 127.0.0.1:22121\n  timeout: 400\n  redis: yes\n  servers:\n   - 127.0.0.1:6379:1\n")
	for _, f := range Check("nutcracker.yml", conf, version.Must(version.NewVersion("0.5.0"))) {
		fmt.Println(f)
	}
	// Output: nutcracker.yml:4:10: error: invalid-bool: redis: "yes" is not "true" or "false" (lowercase, exactly)
}

// TestCheckReadAgain: when the fast reader gives up after some pools (here at a trailing
// comment in the last one) and the file is read again, what the checks across pools
// remembered of the first reading is forgotten: the findings are those of the plain file.
func TestCheckReadAgain(t *testing.T) {
	plain := "a:\n  listen: 127.0.0.1:1\n  timeout: 1\n  servers:\n   - 127.0.0.1:9:1\n" +
		"b:\n  listen: 127.0.0.1:2\n  timeout: 1\n  hash: md5\n  servers:\n   - 127.0.0.1:9:1\n" +
		"c:\n  listen: 127.0.0.1:3\n  timeout: 1\n  servers:\n   - 127.0.0.1:8:1\n"
	commented := strings.Replace(plain, "127.0.0.1:8:1", "127.0.0.1:8:1 # last", 1)
	want := render(Check("a.yml", []byte(plain), nil))
	if !strings.Contains(want, RuleSharedBackend) || strings.Count(want, "\n") != 1 {
		t.Fatalf("the plain file must give one shared-backend warning, got:\n%s", want)
	}
	if got := render(Check("a.yml", []byte(commented), nil)); got != want {
		t.Errorf("findings:\n%s\nwant:\n%s", got, want)
	}
}

func TestGateSince(t *testing.T) {
	tests := []struct {
		target, since string
		want          bool
	}{
		{"0.5.0", "0.5.0", true},
		{"0.5.0-RC1", "0.5.0", true}, // a release candidate has its release's rules
		{"0.4.1", "0.5.0", false},
		{"0.4.1", "0.4.0", true},
		{"0.4.5", "0.4.1", true}, // a version patchctl does not know still compares
		{"0.4.5", "0.5.0", false},
		{"0.2.10", "0.2.4", true},
		{"1.0", "0.5.0", true},
		{"0.1.16", "0.1.20", false},
	}
	for _, tt := range tests {
		v := version.Must(version.NewVersion(tt.target))
		want := v.Core().GreaterThanOrEqual(version.Must(version.NewVersion(tt.since)))
		if got := newGate(v).since(tt.since); got != tt.want || got != want {
			t.Errorf("%s since %s = %v, want %v (go-version: %v)", tt.target, tt.since, got, tt.want, want)
		}
	}
}
