package main

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// instrumentConsole counts the console's requests by route and status
// and times them (cdrguard_console_requests_total,
// cdrguard_console_request_seconds), and serves /metrics beside the
// pages on the console's own listener, so a console next to a job on
// one host needs no second port. The route is the handler's pattern
// ("GET /subject"), never the raw path: subjects stay out of the labels.
func instrumentConsole(h http.Handler, reg *prometheus.Registry) http.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cdrguard_console_requests_total",
		Help: "Console requests by route and status code."}, []string{"route", "code"})
	seconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cdrguard_console_request_seconds",
		Help: "Console request durations by route.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, []string{"route"})
	reg.MustRegister(requests, seconds)
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/metrics" {
			metrics.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = "other"
		}
		requests.WithLabelValues(route, http.StatusText(rec.code)).Inc()
		seconds.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
