package artifact

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// ParseSHA256Sums reads a file in the format `sha256sum` prints ("<hex>  <name>", or
// "<hex> *<name>" for binary mode) and returns name → lower-case digest. Blank lines and
// # comments are skipped; anything else that does not fit is an error naming the line.
func ParseSHA256Sums(r io.Reader) (map[string]string, error) {
	sums := map[string]string{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		sum, name, ok := strings.Cut(text, " ")
		name = strings.TrimPrefix(strings.TrimLeft(name, " "), "*")
		if !ok || !isHexDigest(sum, false) || name == "" {
			return nil, fmt.Errorf("line %d: want \"<sha256>  <file name>\"", line)
		}
		sums[strings.TrimPrefix(name, "./")] = strings.ToLower(sum)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return sums, nil
}
