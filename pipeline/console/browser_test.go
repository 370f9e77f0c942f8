package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/cdrguard/cdrguard/pipeline/hooks"
	"github.com/cdrguard/cdrguard/schemas"
)

const chromiumPath = "/usr/bin/chromium"

// ensureChromium installs Debian's chromium when it is missing (CI runs
// as root on a fresh machine), like services.sh installs the other
// services. Without it the test skips, or fails under
// CDRGUARD_INTEGRATION=1.
func ensureChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err == nil {
		return
	}
	required := os.Getenv("CDRGUARD_INTEGRATION") == "1"
	if os.Geteuid() != 0 {
		if required {
			t.Fatalf("%s is missing and the test is not root: apt-get install -y chromium", chromiumPath)
		}
		t.Skipf("%s is missing: apt-get install -y chromium", chromiumPath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, args := range [][]string{{"update"}, {"install", "-y", "--no-install-recommends", "chromium"}} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			msg := fmt.Sprintf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
			if required {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// receivedHook is one webhook the test receiver verified.
type receivedHook struct {
	id   string
	body schemas.HookBody
}

// hookReceiver is a suspension system: it verifies Standard Webhooks
// signatures with the specification's own library.
type hookReceiver struct {
	mu   sync.Mutex
	got  []receivedHook
	errs []error
}

func newHookReceiver(t *testing.T, secret string) (*hookReceiver, *httptest.Server) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	r := &hookReceiver{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := wh.Verify(body, req.Header); err != nil {
			r.errs = append(r.errs, err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var b schemas.HookBody
		if err := json.Unmarshal(body, &b); err != nil {
			r.errs = append(r.errs, err)
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		r.got = append(r.got, receivedHook{id: req.Header.Get(hooks.HeaderID), body: b})
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(ts.Close)
	return r, ts
}

// standInReleaseAPI is the TEST'S STAND-IN for the hook dispatcher's
// release API (branch hooks2), implementing exactly its contract: POST
// /api/v1/releases with a bearer token sends a signed number.release to
// the receiver, records the decision in ClickHouse (source "api") and
// answers 202 {"decision_id"}; GET /api/v1/subjects/{subject} answers
// the subject's state. It is not the dispatcher: it lets the browser
// test run before that API is merged.
func standInReleaseAPI(t *testing.T, store *Store, token, secret, receiverURL string) *httptest.Server {
	secrets, err := hooks.ParseSecrets(secret)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	released := map[string]bool{}
	mux := http.NewServeMux()
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+token {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("POST /api/v1/releases", auth(func(w http.ResponseWriter, r *http.Request) {
		var req ReleaseRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Subject == "" || req.By == "" ||
			(req.Action != "release" && req.Action != "false_positive") {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		kind, _ := schemas.ParseSubjectKind(req.SubjectKind)
		body, _ := (&schemas.HookBody{Type: schemas.HookRelease, Subject: req.Subject, SubjectKind: kind,
			Alert: json.RawMessage(`{"alert_id":"` + req.AlertID + `"}`), Reason: req.Reason}).AppendJSON(nil)
		id, now := "msg_"+NewDecisionID(), time.Now()
		hr, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, receiverURL, bytes.NewReader(body))
		hr.Header.Set(hooks.HeaderID, id)
		hr.Header.Set(hooks.HeaderTimestamp, fmt.Sprint(now.Unix()))
		hr.Header.Set(hooks.HeaderSignature, hooks.Sign(secrets, id, now, body))
		hr.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		_ = resp.Body.Close()
		dec := Decision{Time: now.UTC(), ID: NewDecisionID(), SubjectKind: req.SubjectKind, Subject: req.Subject, Action: req.Action,
			AlertID: req.AlertID, By: req.By, Reason: req.Reason, Source: "api"}
		if err := store.InsertDecisions(r.Context(), []Decision{dec}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		mu.Lock()
		released[req.Subject] = true
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]string{"decision_id": dec.ID})
	}))
	mux.HandleFunc("GET /api/v1/subjects/{subject}", auth(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		rel := released[r.PathValue("subject")]
		mu.Unlock()
		state := "suspended"
		if rel {
			state = "released"
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"subject": r.PathValue("subject"), "state": state,
			"endpoints": []map[string]any{{"name": "bss", "last_outcome": "delivered"}}})
	}))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

// TestBrowser logs in with headless Chromium, sees the day's alerts in
// the queue, opens the top flagged number, sees its chart and metrics,
// marks it a false positive with a reason, and checks that the release
// webhook reached the receiver, signed, and that the decision is in
// ClickHouse. Screenshots go to the test's artifact directory (run with
// -artifacts -outputdir DIR to keep them).
func TestBrowser(t *testing.T) {
	ensureChromium(t)
	d := loadDay(t, 0.05)
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	recv, recvTS := newHookReceiver(t, secret)
	api := standInReleaseAPI(t, d.store, "test-token", secret, recvTS.URL)
	rel, err := NewHTTPReleaser(api.URL, "test-token", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, d, rel)
	shots := t.ArtifactDir()

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true))
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelT()

	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			buf, err := chromedp.FullScreenshot(100)(ctx, tg) // quality 100: PNG
			if err != nil {
				return err
			}
			p := filepath.Join(shots, name+".png")
			t.Logf("screenshot %s", p)
			return os.WriteFile(p, buf, 0o644)
		})
	}
	text := func(sel string, dst *string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			v, err := chromedp.Text(sel)(ctx, tg)
			*dst = v
			return err
		})
	}
	var queueText, subjectText, flash string
	err = chromedp.Do(ctx,
		chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(`input[name=username]`),
		shot("1-login"),
		chromedp.SendKeys(`input[name=username]`, "ana"),
		chromedp.SendKeys(`input[name=password]`, testPassword),
		chromedp.Click(`.login button`),
		chromedp.WaitVisible(`table.queue`),
		text(`main`, &queueText),
		shot("2-queue"),
		chromedp.Click(fmt.Sprintf(`//table[contains(@class,"queue")]//a[text()=%q]`, d.agent)),
		chromedp.WaitVisible(`svg.chart polyline`),
		text(`main`, &subjectText),
		shot("3-subject"),
		chromedp.SendKeys(`form.decide textarea[name=reason]`, "survey line of a customer, checked with the account manager"),
		chromedp.Click(`form.decide button[value=false_positive]`),
		chromedp.WaitVisible(`p.flash`),
		text(`p.flash`, &flash),
		shot("4-false-positive"),
		chromedp.Navigate(ts.URL+"/quality"),
		chromedp.WaitVisible(`table.quality`),
		shot("5-quality"),
		chromedp.Navigate(ts.URL+"/deliveries"),
		chromedp.WaitVisible(`main h1`),
		shot("6-deliveries"),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if !strings.Contains(queueText, d.agent) || !strings.Contains(queueText, "call_shop_agent") {
		t.Errorf("the queue does not show %s and its rule:\n%.1500s", d.agent, queueText)
	}
	for _, want := range []string{"Why it fired", "short_ratio >= 0.75", "distinct callees", "Recent CDRs", `"state": "suspended"`} {
		if !strings.Contains(subjectText, want) {
			t.Errorf("the subject page lacks %q", want)
		}
	}
	if !strings.Contains(flash, "false positive recorded for "+d.agent+" by ana") {
		t.Errorf("flash after the decision: %q", flash)
	}
	recv.mu.Lock()
	got, errs := recv.got, recv.errs
	recv.mu.Unlock()
	if len(errs) > 0 || len(got) != 1 || got[0].body.Type != schemas.HookRelease || got[0].body.Subject != d.agent ||
		!strings.Contains(got[0].body.Reason, "survey line") {
		t.Errorf("the receiver got %+v (errors %v), want one signed number.release for %s", got, errs, d.agent)
	}
	rows := d.query(t, "SELECT action, by, source FROM "+d.store.db+".decisions WHERE subject = ?", d.agent)
	if len(rows) != 1 || rows[0] != "false_positive ana api" {
		t.Errorf("decisions in ClickHouse: %q, want false_positive by ana", rows)
	}
}
