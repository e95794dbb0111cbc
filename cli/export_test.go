package cli

// CommandNames lists every registered command, hidden ones included, for tests that must
// cover each of them.
func CommandNames() []string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	return names
}
