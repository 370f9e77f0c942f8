package hooks

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetrics: the counters follow the attempts and decisions, the gauges
// what the topics hold, per endpoint.
func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLog()
		flaky := testEndpoint(t, "flaky", time.Second)
		bad := testEndpoint(t, "bad")
		budget := testEndpoint(t, "budget")
		budget.Budget = &BudgetConfig{Requests: 1, Per: time.Hour}
		shadow := testEndpoint(t, "shadow")
		shadow.Mode = ModeShadow
		handlers := map[string]http.Handler{
			"flaky":  newReceiver(t, flaky.SecretEnv, 503, 200),
			"bad":    newReceiver(t, bad.SecretEnv, 400),
			"budget": newReceiver(t, budget.SecretEnv, 200),
			"shadow": newReceiver(t, shadow.SecretEnv, 200),
		}
		reg := prometheus.NewPedanticRegistry()
		d, err := New(Options{Config: Config{Endpoints: []EndpointConfig{flaky, bad, budget, shadow}}, AlertsTopic: "alerts", Log: l,
			Registerer: reg, Doer: func(ep Endpoint) Doer { return handlerDoer{handlers[ep.Name]} }})
		if err != nil {
			t.Fatal(err)
		}
		if v := gaugeValue(t, reg, "cdrguard_hook_ready", ""); v != 0 {
			t.Errorf("ready %v before Run", v)
		}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- d.Run(ctx, l.source()) }()
		defer func() {
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v", err)
			}
		}()
		l.produceAlerts(t, testAlert("a1", "+15550100001"), testAlert("a2", "+15550100002"))
		synctest.Wait()
		// flaky's first answer was a 503: that request waits in the
		// retry topic.
		if v := gaugeValue(t, reg, "cdrguard_hook_pending_retries", "flaky"); v != 1 {
			t.Errorf("flaky pending %v, want 1", v)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		got := counterValues(t, reg, "cdrguard_hook_deliveries_total")
		for k, v := range map[string]float64{
			"flaky/delivered": 2, "bad/parked": 2, "budget/delivered": 1, "budget/held": 1, "shadow/shadow": 2,
		} {
			if got[k] != v {
				t.Errorf("deliveries_total %s = %v, want %v (all: %v)", k, got[k], v, got)
			}
		}
		if got["flaky/retry"] != 1 {
			t.Errorf("flaky retries %v", got["flaky/retry"])
		}
		att := counterValues(t, reg, "cdrguard_hook_attempts_total")
		if att["bad/4xx"] != 2 || att["flaky/5xx"] != 1 || att["flaky/2xx"] != 2 || att["budget/2xx"] != 1 || att["shadow/2xx"] != 0 {
			t.Errorf("attempts_total %v", att)
		}
		for ep, want := range map[string]float64{"flaky": 0, "bad": 0, "budget": 0} {
			if v := gaugeValue(t, reg, "cdrguard_hook_pending_retries", ep); v != want {
				t.Errorf("%s pending %v, want %v", ep, v, want)
			}
		}
		if v := gaugeValue(t, reg, "cdrguard_hook_parked_requests", "bad"); v != 2 {
			t.Errorf("bad parked %v, want 2", v)
		}
		if v := gaugeValue(t, reg, "cdrguard_hook_held_requests", "budget"); v != 1 {
			t.Errorf("budget held %v, want 1", v)
		}
		if v := gaugeValue(t, reg, "cdrguard_hook_breaker_state", "flaky"); v != 0 {
			t.Errorf("breaker %v, want 0 (closed)", v)
		}
		if v := gaugeValue(t, reg, "cdrguard_hook_ready", ""); v != 1 {
			t.Errorf("ready %v", v)
		}
		if n := testutil.CollectAndCount(reg, "cdrguard_hook_request_seconds"); n != 3 {
			t.Errorf("latency histograms for %d endpoints, want 3 (shadow sends nothing)", n)
		}
		if probs, err := testutil.GatherAndLint(reg); err != nil || len(probs) > 0 {
			t.Errorf("lint: %v %v", probs, err)
		}
	})
}

// TestMetricsBreakerAndDisabled: an open breaker reads 2, a 410 sets
// endpoint_disabled.
func TestMetricsBreakerAndDisabled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLog()
		down := testEndpoint(t, "down", time.Hour)
		gone := testEndpoint(t, "gone")
		handlers := map[string]http.Handler{"down": newReceiver(t, down.SecretEnv, 503), "gone": newReceiver(t, gone.SecretEnv, 410)}
		reg := prometheus.NewRegistry()
		d, err := New(Options{Config: Config{Endpoints: []EndpointConfig{down, gone}, Breaker: BreakerConfig{Failures: 1, OpenFor: time.Minute}},
			AlertsTopic: "alerts", Log: l, Registerer: reg, Doer: func(ep Endpoint) Doer { return handlerDoer{handlers[ep.Name]} }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- d.Run(ctx, l.source()) }()
		defer func() { cancel(); <-errc }()
		l.produceAlerts(t, testAlert("a1", "+15550100001"))
		synctest.Wait()
		if v := gaugeValue(t, reg, "cdrguard_hook_breaker_state", "down"); v != 2 {
			t.Errorf("down breaker %v, want 2 (open)", v)
		}
		if v := gaugeValue(t, reg, "cdrguard_hook_endpoint_disabled", "gone"); v != 1 {
			t.Errorf("gone disabled %v, want 1", v)
		}
		if v := gaugeValue(t, reg, "cdrguard_hook_endpoint_disabled", "down"); v != 0 {
			t.Errorf("down disabled %v, want 0", v)
		}
	})
}

// gaugeValue reads the gauge name of endpoint ("" for an unlabelled one).
func gaugeValue(t *testing.T, g prometheus.Gatherer, name, endpoint string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			ep := ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "endpoint" {
					ep = lp.GetValue()
				}
			}
			if ep == endpoint {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no %s{endpoint=%q}", name, endpoint)
	return 0
}

// counterValues reads a counter family as "endpoint/<last label>" ->
// value, summed over the other labels.
func counterValues(t *testing.T, g prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ep, last string
			for _, lp := range m.GetLabel() {
				switch lp.GetName() {
				case "endpoint":
					ep = lp.GetValue()
				case "outcome", "status":
					last = lp.GetValue()
				}
			}
			out[strings.Join([]string{ep, last}, "/")] += m.GetCounter().GetValue()
		}
	}
	return out
}
