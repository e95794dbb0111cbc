package config

// Secret holds a token or webhook URL. Every way of printing it shows <secret>, so a
// configuration can be logged or dumped as JSON without leaking it; Value gives the real text.
type Secret string

const redacted = "<secret>"

// Value returns the secret itself, for the one place that sends it.
func (s Secret) Value() string { return string(s) }

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the secret.
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }

// MarshalJSON redacts the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalYAML redacts the secret.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }
