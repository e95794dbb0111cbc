package cli_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/cli"
	"github.com/patchctl/patchctl/mirror"
)

const windowsConfig = `patching:
  windows:
    - name: nightly
      recurrence: "30 1 * * *"
      time_zone: Australia/Lord_Howe
      duration: 2h
      cutoff: 30m
      kind: security
    - name: staging
      recurrence: first weekday at 02:00
      time_zone: Europe/Berlin
      duration: 4h
      cutoff: 1h
      kind: staging
      environments: [staging]
`

func TestWindowsCommand(t *testing.T) {
	cfg := writeConfig(t, windowsConfig)
	code, out, errOut := run(t, nil, "--config", cfg, "windows", "--next", "4", "-o", "json")
	if code != cli.ExitOK {
		t.Fatalf("exit %d %s%s", code, out, errOut)
	}
	var rep struct {
		Now     time.Time `json:"now"`
		Windows []struct {
			Name         string    `json:"name"`
			Kind         string    `json:"kind"`
			TimeZone     string    `json:"time_zone"`
			Environments []string  `json:"environments"`
			Opens        time.Time `json:"opens"`
			OpensUTC     time.Time `json:"opens_utc"`
			Closes       time.Time `json:"closes"`
			LastStart    time.Time `json:"last_start"`
			Duration     float64   `json:"duration_seconds"`
			Cutoff       float64   `json:"cutoff_seconds"`
		} `json:"windows"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rep.Windows) != 4 || !strings.Contains(out, `"environments": []`) {
		t.Fatalf("want 4 openings with [] for no environments:\n%s", out)
	}
	for i, w := range rep.Windows {
		loc, err := time.LoadLocation(w.TimeZone)
		if err != nil {
			t.Fatal(err)
		}
		local := w.Opens.In(loc)
		switch w.Name {
		case "nightly":
			if local.Hour() != 1 || local.Minute() != 30 || w.Duration != 7200 || w.Cutoff != 1800 || w.Kind != "security" {
				t.Errorf("nightly opening %+v (local %v)", w, local)
			}
		case "staging":
			if local.Hour() != 2 || local.Weekday() == time.Saturday || local.Weekday() == time.Sunday || w.Environments[0] != "staging" {
				t.Errorf("staging opening %+v (local %v)", w, local)
			}
		}
		if !w.Opens.Equal(w.OpensUTC) || w.OpensUTC.Location() != time.UTC {
			t.Errorf("opens %v and opens_utc %v differ", w.Opens, w.OpensUTC)
		}
		if w.Closes.Sub(w.Opens) != map[string]time.Duration{"nightly": 2 * time.Hour, "staging": 4 * time.Hour}[w.Name] {
			t.Errorf("%s lasts %v", w.Name, w.Closes.Sub(w.Opens))
		}
		if i > 0 && w.Opens.Before(rep.Windows[i-1].Opens) {
			t.Errorf("openings out of order: %v after %v", w.Opens, rep.Windows[i-1].Opens)
		}
		if w.Closes.Before(rep.Now) {
			t.Errorf("opening %v already closed at %v", w.Opens, rep.Now)
		}
	}

	code, out, _ = run(t, nil, "--config", cfg, "windows", "--next", "40")
	if code != cli.ExitOK || !strings.Contains(out, "Australia/Lord_Howe") || !strings.Contains(out, "policy default, env staging") {
		t.Errorf("table: exit %d\n%s", code, out)
	}
	if code, _, errOut := run(t, nil, "--config", cfg, "windows", "--next", "0"); code != cli.ExitUsage || !strings.Contains(errOut, "--next") {
		t.Errorf("--next 0: exit %d %s", code, errOut)
	}

	if !strings.Contains(out, "no candidate: no release known yet") {
		t.Errorf("the table does not say why nothing happens:\n%s", out)
	}
	if code, _, errOut := run(t, nil, "--config", cfg, "rollout", "approve", "r-unknown"); code != cli.ExitUsage || !strings.Contains(errOut, "not a rollout of the patch scheduler") {
		t.Errorf("approve unknown: exit %d %s", code, errOut)
	}
	if code, _, errOut := run(t, nil, "--config", cfg, "release", "unmark", "0.5.0"); code != cli.ExitFailure || !strings.Contains(errOut, "not marked bad") {
		t.Errorf("unmark unmarked: exit %d %s", code, errOut)
	}
	if code, _, _ := run(t, nil, "--config", cfg, "release", "unmark"); code != cli.ExitUsage {
		t.Errorf("unmark without a version: exit %d", code)
	}
	code, out, _ = run(t, nil, "--config", cfg, "status", "-o", "json")
	if code != cli.ExitOK || !strings.Contains(out, `"next_window": {`) || !strings.Contains(out, `"patch_rollouts": []`) {
		t.Errorf("status: exit %d\n%s", code, out)
	}

	none := writeConfig(t, "")
	code, out, _ = run(t, nil, "--config", none, "windows", "-o", "json")
	if code != cli.ExitOK || !strings.Contains(out, `"windows": []`) {
		t.Errorf("no windows: exit %d\n%s", code, out)
	}
}

// TestPinnedVersionMustExist: once the tracker knows the releases, a pin to a version that
// does not exist is a configuration error naming the line.
func TestPinnedVersionMustExist(t *testing.T) {
	gh := httptest.NewServer(mirror.New(mirror.Twemproxy(), mirror.Options{}))
	defer gh.Close()
	pinned := func(v string) string {
		return "github:\n  api_url: " + gh.URL + "\npatching:\n  policies:\n    - name: pinned\n      pin: \"" + v + "\"\n"
	}
	// Before any poll nothing is known: the pin cannot be judged yet.
	cfg := writeConfig(t, pinned("9.9.9"))
	if code, out, errOut := run(t, nil, "--config", cfg, "windows"); code != cli.ExitOK {
		t.Fatalf("before a poll: exit %d %s%s", code, out, errOut)
	}
	if code, out, errOut := run(t, nil, "--config", cfg, "poll"); code != cli.ExitOK {
		t.Fatalf("first poll: exit %d %s%s", code, out, errOut)
	}
	code, _, errOut := run(t, nil, "--config", cfg, "windows")
	if code != cli.ExitUsage || !strings.Contains(errOut, "patchctl.yml:9: patching.policies[0].pin: version 9.9.9 is not a release of twitter/twemproxy") {
		t.Errorf("unknown pin: exit %d %s", code, errOut)
	}
	good := writeConfig(t, pinned("v0.4.1"))
	if code, out, errOut := run(t, nil, "--config", good, "poll"); code != cli.ExitOK {
		t.Fatalf("poll: exit %d %s%s", code, out, errOut)
	}
	if code, out, errOut := run(t, nil, "--config", good, "windows"); code != cli.ExitOK {
		t.Errorf("known pin: exit %d %s%s", code, out, errOut)
	}
}
