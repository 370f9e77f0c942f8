package console

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

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

// TestBrowser drives headless Chromium through the real decision path:
// the day's suspension alerts of a flagged number go through the real
// hook dispatcher (on Kafka) to a receiver that verifies signatures with
// the Standard Webhooks library; an analyst logs in, sees the queue,
// opens the number (chart, metrics, suspension state), marks it a false
// positive with a reason; the receiver then gets exactly one verified
// number.release for it, the dispatcher's release API records the
// decision in ClickHouse, and the subject page shows the number
// released and allowlisted, by whom and when. Screenshots of every page
// go to the test's artifact directory (-artifacts -outputdir DIR keeps
// them).
func TestBrowser(t *testing.T) {
	ensureChromium(t)
	d := loadDay(t, 0.05)
	recv, recvTS := newHookReceiver(t, testSecret)
	h := startHooks(t, d, hooks.EndpointConfig{Name: "bss", URL: recvTS.URL, RetrySchedule: []time.Duration{200 * time.Millisecond, time.Second}})
	sus := d.suspendAlerts(d.agent)
	if len(sus) == 0 {
		t.Fatalf("%s has no alert asking for suspension", d.agent)
	}
	h.produce(t, sus...)
	waitFor(t, 30*time.Second, "the suspension of "+d.agent+" to reach the receiver", func() bool {
		got, _ := recv.received(schemas.HookSuspend, d.agent)
		return len(got) == 1
	})
	waitFor(t, 30*time.Second, "the delivery row in ClickHouse", func() bool {
		return len(d.query(t, "SELECT outcome FROM "+d.store.db+".hook_deliveries WHERE subject = ? AND outcome = 'delivered'", d.agent)) == 1
	})
	ts := newTestServer(t, d, h.releaser(t))
	shots := t.ArtifactDir()

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true))
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
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
	shotOf := func(sel, name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			buf, err := chromedp.Screenshot(sel)(ctx, tg)
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
	err := chromedp.Do(ctx,
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
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if !strings.Contains(queueText, d.agent) || !strings.Contains(queueText, "call_shop_agent") {
		t.Errorf("the queue does not show %s and its rule:\n%.1500s", d.agent, queueText)
	}
	for _, want := range []string{"Why it fired", "short_ratio >= 0.75", "distinct callees", "Recent CDRs", "Not on the dynamic allowlist", "bss\tsuspended\tsuspend"} {
		if !strings.Contains(subjectText, want) {
			t.Errorf("the subject page lacks %q", want)
		}
	}
	if !strings.Contains(flash, "false positive recorded for "+d.agent+" by ana") {
		t.Errorf("flash after the decision: %q", flash)
	}
	waitFor(t, 30*time.Second, "the release of "+d.agent+" to reach the receiver", func() bool {
		got, _ := recv.received(schemas.HookRelease, d.agent)
		return len(got) > 0
	})
	var decisions []string
	waitFor(t, 30*time.Second, "the decision in ClickHouse", func() bool {
		decisions = d.query(t, "SELECT action, by, source FROM "+d.store.db+".decisions WHERE subject = ?", d.agent)
		return len(decisions) > 0
	})
	if len(decisions) != 1 || decisions[0] != "false_positive ana api" {
		t.Errorf("decisions in ClickHouse: %q, want one false_positive by ana from the release API", decisions)
	}
	waitFor(t, 30*time.Second, "the delivered release in ClickHouse", func() bool {
		return len(d.query(t, "SELECT outcome FROM "+d.store.db+".hook_deliveries WHERE subject = ? AND action = 'release' AND outcome = 'delivered'", d.agent)) == 1
	})
	var afterText string
	err = chromedp.Do(ctx,
		chromedp.Navigate(ts.URL+"/subject?kind=caller&id="+url.QueryEscape(d.agent)),
		chromedp.WaitVisible(`svg.chart polyline`),
		text(`main`, &afterText),
		shot("5-subject-released"),
		chromedp.Navigate(ts.URL+"/deliveries"),
		chromedp.WaitVisible(`main h1`),
		shot("6-deliveries"),
		chromedp.Navigate(ts.URL+"/quality"),
		chromedp.WaitVisible(`table.quality`),
		shot("7-quality"),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	trunk := d.topAlert(schemas.SubjectTrunk)
	if trunk == nil {
		t.Fatal("the generated day raised no trunk alert")
	}
	var sourceText string
	err = chromedp.Do(ctx,
		chromedp.Navigate(ts.URL+"/?kind=trunk&decided=all"),
		chromedp.WaitVisible(`table.queue`),
		chromedp.Click(fmt.Sprintf(`//table[contains(@class,"queue")]//a[text()=%q]`, trunk.Subject)),
		chromedp.WaitVisible(`svg.chart polyline.s-callers`),
		chromedp.WaitVisible(`table.cdrs tbody tr`),
		text(`main`, &sourceText),
		shot("8-source-trunk"),
		shotOf(`figure`, "9-source-trunk-chart"),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	for _, want := range []string{"From the stored CDRs of this trunk", "distinct caller IDs", "Caller IDs behind this source in the range", "Recent CDRs"} {
		if !strings.Contains(sourceText, want) {
			t.Errorf("the page of trunk %s lacks %q", trunk.Subject, want)
		}
	}
	for _, want := range []string{"Released and allowlisted (false positive) by ana at " + time.Now().UTC().Format("2006-01-02 "), "bss\treleased\trelease"} {
		if !strings.Contains(afterText, want) {
			t.Errorf("the subject page after the release lacks %q", want)
		}
	}
	releases, errs := recv.received(schemas.HookRelease, d.agent)
	if len(errs) > 0 || len(releases) != 1 || !strings.Contains(releases[0].body.Reason, "survey line") {
		t.Errorf("the receiver got releases %+v (errors %v), want one verified number.release for %s", releases, errs, d.agent)
	}
}
