package lint

import (
	"fmt"
	"strings"
)

// GenerateConfig writes a valid configuration of npools redis pools with nservers servers
// each, all on loopback, for benchmarks and load tests of the linter and of nutcracker.
func GenerateConfig(npools, nservers int) []byte {
	var b strings.Builder
	for p := range npools {
		fmt.Fprintf(&b, "pool%d:\n  listen: 127.0.0.1:%d\n  redis: true\n  redis_auth: pw%d\n  hash: fnv1a_64\n  distribution: ketama\n  timeout: 400\n  auto_eject_hosts: true\n  server_retry_timeout: 2000\n  server_failure_limit: 2\n  servers:\n",
			p, 20000+p, p)
		for s := range nservers {
			fmt.Fprintf(&b, "   - 127.0.%d.%d:%d:1 p%d-s%d\n", p/250, p%250+1, 6379+s, p, s)
		}
	}
	return []byte(b.String())
}
