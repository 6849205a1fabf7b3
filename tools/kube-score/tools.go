//go:build tools

// Package kubescore records the binary built from this module, so `go mod tidy` keeps it.
package kubescore

import _ "github.com/zegl/kube-score/cmd/kube-score"
