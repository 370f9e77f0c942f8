package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestConsoleRequestMetrics(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /subject", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	srv := httptest.NewServer(instrumentConsole(mux, prometheus.NewRegistry()))
	defer srv.Close()
	for _, path := range []string{"/subject?subject=%2B15550100001", "/subject?subject=%2B15550100002", "/nope"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	for _, want := range []string{`cdrguard_console_requests_total{code="OK",route="GET /subject"} 2`,
		`cdrguard_console_requests_total{code="Not Found",route="other"} 1`, "cdrguard_console_request_seconds_bucket"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "15550100001") {
		t.Error("a subject reached the metrics labels")
	}
}
