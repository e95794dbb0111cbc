package config_test

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/patchctl/patchctl/config"
)

// The example documents the default rollout policy exactly.
func TestExampleRolloutsAreTheDefaults(t *testing.T) {
	c, err := config.LoadFile(filepath.Join("..", "configs", "patchctl.example.yml"))
	if err != nil {
		t.Fatal(err)
	}
	def, _ := config.Parse("defaults", strings.NewReader(""))
	if !reflect.DeepEqual(c.Rollouts, def.Rollouts) {
		t.Errorf("example rollouts:\n%+v\ndefaults:\n%+v", c.Rollouts, def.Rollouts)
	}
}

func TestRolloutPolicyErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"bad amount", "rollouts:\n  policies:\n    - name: p\n      waves:\n        - name: a\n          max_parallel: lots\n",
			`bad.yml:6: rollouts.policies[0].waves[0].max_parallel: "lots" is not a count or a percentage`},
		{"zero parallel", "rollouts:\n  default_policy: p\n  policies:\n    - name: p\n      waves:\n        - name: a\n          max_parallel: 0%\n",
			"bad.yml:7: rollouts.policies[0].waves[0].max_parallel: must be at least 1"},
		{"percent over 100", "rollouts:\n  default_policy: p\n  policies:\n    - name: p\n      waves:\n        - name: a\n          max_failures: 150%\n",
			`bad.yml:7: rollouts.policies[0].waves[0].max_failures: "150%" is more than 100%`},
		{"on_failure", "rollouts:\n  default_policy: p\n  policies:\n    - name: p\n      on_failure: retry\n      waves: [{name: a}]\n",
			`bad.yml:5: rollouts.policies[0].on_failure: must be pause or abort, not "retry"`},
		{"wave twice", "rollouts:\n  default_policy: p\n  policies:\n    - name: p\n      waves:\n        - name: a\n        - name: a\n",
			`bad.yml:7: rollouts.policies[0].waves[1].name: wave "a" is defined twice`},
		{"wave without a name", "rollouts:\n  default_policy: p\n  policies:\n    - name: p\n      waves:\n        - max_parallel: 1\n",
			"rollouts.policies[0].waves[0].name: is required"},
		{"no waves", "rollouts:\n  default_policy: p\n  policies:\n    - name: p\n",
			"bad.yml:4: rollouts.policies[0].waves: a policy needs at least one wave"},
		{"unknown default", "rollouts:\n  default_policy: fast\n",
			`bad.yml:2: rollouts.default_policy: no policy is named "fast"`},
		{"bad glob", "rollouts:\n  default_policy: p\n  policies:\n    - name: p\n      waves:\n        - name: a\n          hosts: [\"[\"]\n",
			"rollouts.policies[0].waves[0].hosts[0]: bad glob"},
		{"unknown key", "rollouts:\n  policies:\n    - name: p\n      wavez: []\n", `bad.yml:4: rollouts.policies[0]: unknown key "wavez"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("bad.yml", strings.NewReader(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestAmountAndSelector(t *testing.T) {
	for _, tc := range []struct {
		a        config.Amount
		n        int
		up, down int
	}{{"1", 10, 1, 1}, {"25%", 10, 3, 2}, {"25%", 4, 1, 1}, {"10%", 3, 1, 0}, {"100%", 7, 7, 7}} {
		if got := tc.a.Of(tc.n, true); got != tc.up {
			t.Errorf("%s of %d rounded up = %d, want %d", tc.a, tc.n, got, tc.up)
		}
		if got := tc.a.Of(tc.n, false); got != tc.down {
			t.Errorf("%s of %d rounded down = %d, want %d", tc.a, tc.n, got, tc.down)
		}
	}
	w := config.Wave{Environments: []string{"production"}, Labels: map[string]string{"tier": "canary"}, Hosts: []string{"prod-*"}}
	for _, tc := range []struct {
		name, env string
		labels    map[string]string
		want      bool
	}{
		{"prod-1", "production", map[string]string{"tier": "canary"}, true},
		{"prod-1", "staging", map[string]string{"tier": "canary"}, false},
		{"prod-1", "production", nil, false},
		{"db-1", "production", map[string]string{"tier": "canary"}, false},
	} {
		if got := w.Selects(tc.name, tc.env, tc.labels); got != tc.want {
			t.Errorf("Selects(%s, %s, %v) = %v", tc.name, tc.env, tc.labels, got)
		}
	}
}
