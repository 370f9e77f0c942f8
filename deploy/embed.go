// Package deploy holds what ships beside the binary — the compose file,
// the Kubernetes manifests, the Grafana dashboards, the local services
// script — and the default rules, which the binary also carries:
// DefaultRules is deploy/rules.yaml, embedded, so `cdrguard replay` and
// `cdrguard run` work from any directory without a rules file. This file
// is the package's only Go code outside its tests.
package deploy

import _ "embed"

// DefaultRules is the default rules file (deploy/rules.yaml).
//
//go:embed rules.yaml
var DefaultRules []byte

// DefaultRulesName is how messages name the embedded default rules.
const DefaultRulesName = "the built-in default rules (deploy/rules.yaml)"
