// Pins the CRDs the cluster tests install: the ServiceMonitor (prometheus-operator) and the
// Gateway API standard channel. Nothing is built from here: `make control-plane` downloads these
// modules and copies their CRD files next to the binaries.
module flask-backend/tools/crds

go 1.26.0

require (
	github.com/prometheus-operator/prometheus-operator v0.85.0
	sigs.k8s.io/gateway-api v1.6.3
)
