package health

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestReadyz(t *testing.T) {
	r := NewRegistry()
	var down atomic.Bool
	r.Add("kafka group", func() error { return nil })
	r.Add("clickhouse", func() error {
		if down.Load() {
			return errors.New("unreachable since 10:02")
		}
		return nil
	})
	mux := http.NewServeMux()
	r.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != 200 || body != "clickhouse: ok\nkafka group: ok\n" {
		t.Errorf("ready: %d %q", code, body)
	}
	down.Store(true)
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "clickhouse: not ready: unreachable since 10:02") {
		t.Errorf("not ready: %d %q", code, body)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("healthz while not ready: %d %q", code, body)
	}
	var nilReg *Registry
	nilReg.Add("x", func() error { return nil }) // no panic
}
