package mirror

import (
	"embed"
	"io/fs"
)

//go:embed twemproxy
var twemproxy embed.FS

// Twemproxy returns twemproxy's real release history (15 tags, two GitHub Releases, no
// advisories) laid out for New, under repos/twitter/twemproxy/.
func Twemproxy() fs.FS {
	sub, err := fs.Sub(twemproxy, "twemproxy")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}
