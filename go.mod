module github.com/medley-go/medley

go 1.26.8

require (
	github.com/pion/rtp v1.10.6
	github.com/stretchr/testify v1.12.1
	go.uber.org/goleak v1.3.0
)

require (
	github.com/pion/randutil v0.1.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)
