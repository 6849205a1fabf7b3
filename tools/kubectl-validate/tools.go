//go:build tools

// Package kubectlvalidate records the binary built from this module, so `go mod tidy` keeps it.
package kubectlvalidate

import _ "sigs.k8s.io/kubectl-validate"
