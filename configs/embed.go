// Package configs holds the files patchctl ships: the advisory feed and example
// configuration, embedded in the binary.
package configs

import _ "embed"

// Advisories is the curated advisory feed (advisories.yml).
//
//go:embed advisories.yml
var Advisories []byte

// InventoryExample is the documented example inventory (inventory.example.yml).
//
//go:embed inventory.example.yml
var InventoryExample []byte
