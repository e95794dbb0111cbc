package nutconf_test

import (
	"fmt"

	"github.com/patchctl/patchctl/nutconf"
)

func ExampleParse() {
	conf := []byte(`cache:
  listen: 127.0.0.1:22121
  hash: murmur
  servers:
   - 10.0.0.1:11211:1
   - 10.0.0.2:6379:2
   - 10.0.0.3:6379:1 blue
   - /run/redis.sock:1
`)
	cfg, err := nutconf.Parse("nutcracker.yml", conf)
	if err != nil {
		fmt.Println(err)
		return
	}
	p := cfg.Pools[0]
	fmt.Println(p.Name, p.Hash(), p.Distribution())
	for _, s := range p.Servers {
		fmt.Printf("%d:%d %s weight=%d\n", s.Pos.Line, s.Pos.Column, s.HashName(), s.Weight)
	}
	// Output:
	// cache murmur ketama
	// 5:6 10.0.0.1 weight=1
	// 6:6 10.0.0.2:6379 weight=2
	// 7:6 blue weight=1
	// 8:6 /run/redis.sock: weight=1
}
