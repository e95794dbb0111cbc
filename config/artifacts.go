package config

import (
	"fmt"
	"path/filepath"

	"github.com/patchctl/patchctl/artifact"
)

// Artifacts say where nutcracker builds come from for deploys.
type Artifacts struct {
	// Dir is the content-addressed cache of verified builds (default <data_dir>/artifacts).
	Dir string `yaml:"dir" json:"dir"`
	// Sources are tried in order for a version; the first that has it wins.
	Sources []artifact.Source `yaml:"sources" json:"sources,omitempty"`
}

func (c *Config) validateArtifacts(fail func(field, format string, args ...any)) {
	a := &c.Artifacts
	if a.Dir == "" {
		a.Dir = filepath.Join(c.DataDir, "artifacts")
	} else {
		a.Dir = c.resolvePath(a.Dir)
	}
	for i := range a.Sources {
		s := &a.Sources[i]
		if s.Path != "" {
			s.Path = c.resolvePath(s.Path)
		}
		if err := s.Validate(); err != nil {
			fail(fmt.Sprintf("artifacts.sources[%d]", i), "%v", err)
		}
	}
}
