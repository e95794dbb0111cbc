package cli_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/cli"
	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/mirror"
)

// noJSON are the commands without a JSON answer, and why.
var noJSON = map[string]string{
	"daemon":       "runs until stopped; its state is read with status",
	"mirror serve": "serves HTTP until stopped",
	"completion":   "prints a shell script",
	"help":         "prints help text",
	"__complete":   "prints completion candidates for the shell scripts",
}

// TestEveryCommandJSON runs every command with -o json against a prepared store and a
// running daemon, and checks each answer against the shape docs/json.md documents for it:
// only documented snake_case keys, every documented key present unless marked optional, the
// documented types, RFC 3339 times, and no null anywhere (lists are [] when empty).
func TestEveryCommandJSON(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the deploy runs nutcracker as the unprivileged nutcracker user: run as root (CI does)")
	}
	shapes := readShapes(t, filepath.Join("..", "docs", "json.md"))
	f := prepareFleet(t)

	op := lastOperation(t, f.cfg)
	// Each command's runs; a run answers with the shape of its command unless it names
	// another one (attach answers like the command it follows).
	type jsonRun struct {
		args  []string
		shape string
	}
	cases := map[string][]jsonRun{
		"status":          {{args: []string{"status"}}},
		"poll":            {{args: []string{"poll"}}},
		"releases":        {{args: []string{"releases"}}},
		"advisories":      {{args: []string{"advisories"}}},
		"events":          {{args: []string{"events"}}},
		"notify test":     {{args: []string{"notify", "test"}}},
		"reload":          {{args: []string{"reload"}}},
		"notify retry":    {{args: []string{"notify", "retry", "--all"}}},
		"inventory":       {{args: []string{"inventory", "--poll"}}, {args: []string{"inventory"}}},
		"deploy":          {{args: []string{"deploy", "--host", "proxy-1", "--version", "0.5.0", "--dry-run"}}, {args: []string{"deploy", "--host", "proxy-1", "--version", "0.5.0", "--dry-run", "--detach"}, shape: "deploy --detach"}},
		"rollback":        {{args: []string{"rollback", "--host", "proxy-1"}}},
		"adopt":           {{args: []string{"adopt", "--host", "proxy-1"}}},
		"ops":             {{args: []string{"ops"}}},
		"attach":          {{args: []string{"attach", op}, shape: "deploy"}},
		"abort":           {{args: []string{"abort", op}}},
		"history":         {{args: []string{"history", "--host", "proxy-1"}}},
		"slots":           {{args: []string{"slots", "--host", "proxy-1"}}},
		"windows":         {{args: []string{"windows"}}},
		"rollout approve": {{args: []string{"rollout", "approve", "r-unknown"}}},
		"rollout plan":    {{args: []string{"rollout", "plan", "--version", "0.5.0"}}},
		"rollout start":   {{args: []string{"rollout", "start", "--version", "0.5.0"}}},
		"rollout status":  {{args: []string{"rollout", "status"}}},
		"rollout list":    {{args: []string{"rollout", "list"}}},
		"rollout pause":   {{args: []string{"rollout", "pause", "r-unknown"}}},
		"rollout resume":  {{args: []string{"rollout", "resume", "r-unknown"}}},
		"rollout promote": {{args: []string{"rollout", "promote", "r-unknown"}}},
		"rollout abort":   {{args: []string{"rollout", "abort", "r-unknown"}}},
		"release unmark":  {{args: []string{"release", "unmark", "0.5.0"}}},
		"lint":            {{args: []string{"lint", f.nutconf}}},
		"check connect":   {{args: []string{"check", "connect", f.nutconf}}},
		"routing verify":  {{args: []string{"routing", "verify", f.nutconf, "--proxy", f.proxy}}},
		"routing diff":    {{args: []string{"routing", "diff", f.nutconf, f.nutconf}}},
		"audit":           {{args: []string{"audit"}}},
		"demo":            {{args: []string{"demo"}}},
		"version":         {{args: []string{"version"}}},
	}
	for _, name := range cli.CommandNames() {
		if _, ok := noJSON[name]; ok {
			continue
		}
		runs, ok := cases[name]
		if !ok {
			t.Errorf("command %q has no JSON case in this test: add one, and its shape to docs/json.md", name)
			continue
		}
		for _, r := range runs {
			t.Run(strings.Join(r.args, " "), func(t *testing.T) {
				code, out, errOut := run(t, nil, append([]string{"--config", f.cfg, "-o", "json"}, r.args...)...)
				// A command that found a problem still gives its answer; one that could not
				// run gives the error shape.
				shape := cmp.Or(r.shape, name)
				if code != cli.ExitOK && strings.Contains(out, `"exit_code"`) {
					shape = "error"
				}
				if os.Getenv("PATCHCTL_DUMP_JSON") != "" {
					t.Logf("exit %d\n%s\n%s", code, out, errOut)
				}
				want, ok := shapes[shape]
				if !ok {
					t.Fatalf("docs/json.md documents no shape for %q", shape)
				}
				var got any
				dec := json.NewDecoder(strings.NewReader(out))
				dec.UseNumber()
				if err := dec.Decode(&got); err != nil {
					t.Fatalf("exit %d: stdout is not JSON: %v\n%s\nstderr: %s", code, err, out, errOut)
				}
				if dec.More() {
					t.Fatalf("stdout holds more than one JSON value:\n%s", out)
				}
				for _, p := range checkShape("$", got, want.value, want.optional) {
					t.Errorf("%s (exit %d)", p, code)
				}
				if t.Failed() {
					t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
				}
			})
		}
	}
	// A failing command's JSON carries the error; the rollback above has nothing to go back to.
	if _, ok := shapes["error"]; !ok {
		t.Error("docs/json.md documents no error shape")
	}
}

// fleet is a prepared store and a running daemon: one pidfile host with 0.5.0 deployed, a
// redis backend behind it, the tracker's history polled from a local mirror.
type fleet struct {
	cfg, nutconf, proxy string
}

func prepareFleet(t *testing.T) fleet {
	t.Helper()
	redis := testenv.Redis(t)
	proxy := testenv.Addr(testenv.FreePort(t))
	gh := httptest.NewServer(mirror.New(mirror.Twemproxy(), mirror.Options{}))
	t.Cleanup(gh.Close)
	cfg, _, conf := pidfileHost(t, "cli-json-", testenv.Addr(testenv.FreePort(t)),
		fmt.Sprintf("r:\n  listen: %s\n  redis: true\n  hash: fnv1a_64\n  distribution: ketama\n  timeout: 400\n  servers:\n   - %s:1 one\n", proxy, redis.Addr),
		fmt.Sprintf("github:\n  api_url: %s\n", gh.URL))

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan int)
	var daemonErr bytes.Buffer
	go func() {
		done <- cli.Main(ctx, []string{"--config", cfg, "daemon"}, cli.IO{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &daemonErr,
			Getenv: func(string) string { return "" }})
	}()
	t.Cleanup(func() {
		stop()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Error("the daemon did not stop within 60 s")
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, out, _ := run(t, nil, "--config", cfg, "status", "-o", "json")
		if strings.Contains(out, `"daemon": true`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not answer within 60 s: %s", daemonErr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, args := range [][]string{{"poll"}, {"deploy", "--host", "proxy-1", "--version", "0.5.0"}} {
		if code, out, errOut := run(t, nil, append([]string{"--config", cfg}, args...)...); code != cli.ExitOK {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	return fleet{cfg: cfg, nutconf: conf, proxy: proxy}
}

// lastOperation returns the id of the newest operation the daemon ran.
func lastOperation(t *testing.T, cfg string) string {
	t.Helper()
	code, out, errOut := run(t, nil, "--config", cfg, "ops", "-o", "json")
	var ops []struct{ ID string }
	if code != cli.ExitOK || json.Unmarshal([]byte(out), &ops) != nil || len(ops) == 0 {
		t.Fatalf("ops: exit %d\n%s%s", code, out, errOut)
	}
	return ops[len(ops)-1].ID
}

// shape is one documented JSON answer: an example value and the keys that may be absent.
type shape struct {
	value    any
	optional map[string]bool // "$.operation.error"
}

var (
	shapeHeading = regexp.MustCompile("(?m)^### `patchctl ([a-z -]+)`|^### (error)$")
	fence        = regexp.MustCompile("(?s)```json\n(.*?)```")
	optionalList = regexp.MustCompile("(?s)Optional: (.*?)(?:\n\n|$)")
	parenthesis  = regexp.MustCompile(`\([^)]*\)`)
)

// readShapes reads the example of each "### `patchctl NAME`" section of docs/json.md.
func readShapes(t *testing.T, path string) map[string]shape {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	out := map[string]shape{}
	heads := shapeHeading.FindAllStringSubmatchIndex(doc, -1)
	for i, h := range heads {
		var name string
		if h[2] >= 0 {
			name = doc[h[2]:h[3]]
		} else {
			name = doc[h[4]:h[5]]
		}
		end := len(doc)
		if i+1 < len(heads) {
			end = heads[i+1][0]
		}
		section := doc[h[1]:end]
		m := fence.FindStringSubmatch(section)
		if m == nil {
			continue // answers with another command's shape, which the section names
		}
		s := shape{optional: map[string]bool{}}
		dec := json.NewDecoder(strings.NewReader(m[1]))
		dec.UseNumber()
		if err := dec.Decode(&s.value); err != nil {
			t.Fatalf("docs/json.md: %s example: %v", name, err)
		}
		if o := optionalList.FindStringSubmatch(section); o != nil {
			for _, p := range strings.Split(parenthesis.ReplaceAllString(o[1], ""), ",") {
				s.optional[strings.Trim(strings.TrimSpace(p), "`")] = true
			}
		}
		out[name] = s
	}
	return out
}

var snakeKey = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// checkShape compares got with the documented example want at path. An example object with
// one key in <angle brackets> is a map keyed by data (versions, sources), and the string
// "<any>" any value. Arrays are checked element by element against the example's first
// element; paths write an element as [] ($.hosts[].version), as the Optional lists do.
func checkShape(path string, got, want any, optional map[string]bool) []string {
	if got == nil {
		return []string{path + " is null"}
	}
	if want == "<any>" {
		return nil
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s is %T, documented as an object", path, got)}
		}
		var probs []string
		if len(w) == 1 {
			for k, v := range w {
				if strings.HasPrefix(k, "<") {
					for _, gv := range g {
						probs = append(probs, checkShape(path+"."+k, gv, v, optional)...)
					}
					return probs
				}
			}
		}
		for k, gv := range g {
			p := path + "." + k
			if !snakeKey.MatchString(k) {
				probs = append(probs, p+" is not a snake_case key")
			}
			wv, ok := w[k]
			if !ok {
				probs = append(probs, p+" is not documented")
				continue
			}
			probs = append(probs, checkShape(p, gv, wv, optional)...)
		}
		for k := range w {
			if _, ok := g[k]; !ok && !optional[path+"."+k] {
				probs = append(probs, path+"."+k+" is missing (and not documented as optional)")
			}
		}
		return probs
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s is %T, documented as a list", path, got)}
		}
		if len(w) == 0 {
			if len(g) > 0 {
				return []string{path + " is documented as always empty"}
			}
			return nil
		}
		var probs []string
		for _, e := range g {
			probs = append(probs, checkShape(path+"[]", e, w[0], optional)...)
		}
		return probs
	case string:
		g, ok := got.(string)
		if !ok {
			return []string{fmt.Sprintf("%s is %T, documented as a string", path, got)}
		}
		if _, err := time.Parse(time.RFC3339, w); err == nil {
			if _, err := time.Parse(time.RFC3339, g); err != nil {
				return []string{fmt.Sprintf("%s = %q is not an RFC 3339 time", path, g)}
			}
		}
	case json.Number:
		if _, ok := got.(json.Number); !ok {
			return []string{fmt.Sprintf("%s is %T, documented as a number", path, got)}
		}
	case bool:
		if _, ok := got.(bool); !ok {
			return []string{fmt.Sprintf("%s is %T, documented as a boolean", path, got)}
		}
	}
	return nil
}
