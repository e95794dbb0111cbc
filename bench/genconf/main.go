// Command genconf writes the benchmark's nutcracker.yml (lint.GenerateConfig) to stdout.
package main

import (
	"flag"
	"os"

	"github.com/patchctl/patchctl/lint"
)

func main() {
	pools := flag.Int("pools", 1000, "pools")
	servers := flag.Int("servers", 20, "servers per pool")
	flag.Parse()
	os.Stdout.Write(lint.GenerateConfig(*pools, *servers))
}
