package config

import "time"

// Inventory is the fleet patchctl watches.
type Inventory struct {
	// File is the inventory of hosts (see configs/inventory.example.yml); "" = no fleet.
	File string `yaml:"file" json:"file,omitempty"`
	// Schedule of version discovery (cron spec).
	Schedule string `yaml:"schedule" json:"schedule"`
	// Advisories are extra advisory feed files, merged over the shipped feed.
	Advisories   []string      `yaml:"advisories" json:"advisories,omitempty"`
	StatsTimeout time.Duration `yaml:"stats_timeout" json:"stats_timeout"`
	Concurrency  int           `yaml:"concurrency" json:"concurrency"`
}

func defaultInventory() Inventory {
	return Inventory{Schedule: "*/5 * * * *", StatsTimeout: 2 * time.Second, Concurrency: 256}
}

func (c *Config) validateInventory(fail func(field, format string, args ...any)) {
	inv := &c.Inventory
	inv.File = c.resolvePath(inv.File)
	for i := range inv.Advisories {
		inv.Advisories[i] = c.resolvePath(inv.Advisories[i])
	}
	if _, err := ParseSchedule(inv.Schedule); err != nil {
		fail("inventory.schedule", "%v", err)
	}
	if inv.StatsTimeout <= 0 {
		fail("inventory.stats_timeout", "must be positive")
	}
	if inv.Concurrency < 1 {
		fail("inventory.concurrency", "must be at least 1")
	}
}
