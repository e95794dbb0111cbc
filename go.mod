module github.com/patchctl/patchctl

go 1.26.0

require go.etcd.io/bbolt v1.5.0

require (
	github.com/robfig/cron/v3 v3.0.1 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
