// Package health answers the liveness and readiness probes of cdrguard's
// processes. Components register named checks; /healthz says the process
// is alive (it answers), /readyz runs every check and is 200 only when
// all pass, with one line per check either way, so an operator reading
// the probe sees what is not ready.
//
// A Registry is safe for concurrent use; checks must not block (they read
// state the components keep up to date).
package health

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
)

// Check reports nil when its part is ready, or why it is not.
type Check func() error

// Registry holds the checks of one process.
type Registry struct {
	mu     sync.Mutex
	checks map[string]Check
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{checks: map[string]Check{}} }

// Add registers (or replaces) the check called name. A nil Registry
// ignores it, so components can be run without probes.
func (r *Registry) Add(name string, c Check) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks[name] = c
}

// Ready runs every check and returns the failures by name.
func (r *Registry) Ready() (failing map[string]error, names []string) {
	r.mu.Lock()
	checks := make(map[string]Check, len(r.checks))
	for n, c := range r.checks {
		checks[n] = c
		names = append(names, n)
	}
	r.mu.Unlock()
	sort.Strings(names)
	failing = map[string]error{}
	for _, n := range names {
		if err := checks[n](); err != nil {
			failing[n] = err
		}
	}
	return failing, names
}

// Register adds /healthz and /readyz to mux.
func (r *Registry) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		failing, names := r.Ready()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if len(failing) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		for _, n := range names {
			if err := failing[n]; err != nil {
				fmt.Fprintf(w, "%s: not ready: %v\n", n, err)
			} else {
				fmt.Fprintf(w, "%s: ok\n", n)
			}
		}
	})
}
