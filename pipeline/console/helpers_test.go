package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/pipeline/clickhouse"
	"github.com/cdrguard/cdrguard/pipeline/hooks"
	"github.com/cdrguard/cdrguard/pipeline/rules"
	"github.com/cdrguard/cdrguard/pipeline/synth"
	"github.com/cdrguard/cdrguard/schemas"
)

// testAddr is the ClickHouse server of the integration tests: it skips
// without one, and fails under CDRGUARD_INTEGRATION=1.
func testAddr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("CDRGUARD_CLICKHOUSE")
	required := os.Getenv("CDRGUARD_INTEGRATION") == "1"
	if addr == "" {
		if !required {
			t.Skip("no ClickHouse: set CDRGUARD_CLICKHOUSE=host:9000 or CDRGUARD_INTEGRATION=1 (deploy/local/services.sh up)")
		}
		addr = "127.0.0.1:9000"
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		if required {
			t.Fatalf("ClickHouse at %s is unreachable (%v); CDRGUARD_INTEGRATION=1 requires it (deploy/local/services.sh up)", addr, err)
		}
		t.Skipf("ClickHouse at %s is unreachable: %v", addr, err)
	}
	_ = c.Close()
	return addr
}

// testDay is a generated day loaded into a fresh database.
type testDay struct {
	client *clickhouse.Client
	store  *Store
	rules  *rules.Set
	day    *synth.Day
	alerts []schemas.Alert
	// agent is a flagged telemarketer (a caller alert with minute rows).
	agent string
}

// loadDay generates yesterday's synthetic day (UTC), runs it through the
// default rules with aggregates on, and writes alerts, aggregates and
// CDRs to a fresh database, dropped at the end of the test.
func loadDay(t testing.TB, scale float64) *testDay {
	t.Helper()
	addr := testAddr(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := clickhouse.Options{DSN: "clickhouse://" + addr, Database: "cdrguard_console_" + hex.EncodeToString(b[:]), StoreCDRs: true,
		FlushInterval: 20 * time.Millisecond}
	var log *zap.Logger = zap.NewNop()
	if tt, ok := t.(*testing.T); ok {
		log = zaptest.NewLogger(tt, zaptest.Level(zap.WarnLevel))
	}
	c, err := clickhouse.Open(ctx, opts, log)
	if err != nil {
		t.Fatalf("open clickhouse: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+opts.Database); err != nil {
			t.Errorf("drop %s: %v", opts.Database, err)
		}
		_ = c.Close()
	})
	if err := c.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	set, err := rules.Load("../../deploy/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	yesterday := time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	day := synth.Generate(synth.Config{Seed: 1, Scale: scale, Day: yesterday})
	eng, err := detectors.NewEngine(detectors.Config{Aggregates: true}, set.Rules(), set.Allowlist)
	if err != nil {
		t.Fatal(err)
	}
	var out detectors.Output
	for i := range day.Records {
		eng.Process(&day.Records[i], &out)
	}
	eng.Flush(&out)
	sink := c.NewSink()
	rows := clickhouse.Rows{Alerts: out.Alerts, CallerMinutes: out.CallerMinutes, CallerHours: out.CallerHours,
		CallerDays: out.CallerDays, NetworkMinutes: out.NetworkMinutes, CDRs: day.Records}
	if err := sink.Write(ctx, 0, &rows); err != nil {
		t.Fatalf("write the day: %v", err)
	}
	if err := sink.Close(ctx); err != nil {
		t.Fatal(err)
	}
	store, err := NewStore(c.Conn(), opts.Database)
	if err != nil {
		t.Fatal(err)
	}
	d := &testDay{client: c, store: store, rules: set, day: day, alerts: out.Alerts}
	class := map[string]synth.Class{}
	for _, l := range day.Labels {
		class[l.Kind+" "+l.Subject] = l.Class
	}
	best := 0.0
	for _, a := range out.Alerts {
		if a.SubjectKind == schemas.SubjectCaller && class["caller "+a.Subject] == synth.Telemarketer && a.Score > best {
			d.agent, best = a.Subject, a.Score
		}
	}
	if len(out.Alerts) == 0 || d.agent == "" {
		t.Fatalf("the generated day raised %d alerts and no telemarketer alert", len(out.Alerts))
	}
	t.Logf("loaded %d records, %d alerts, %d minute rows into %s", len(day.Records), len(out.Alerts), len(out.CallerMinutes), opts.Database)
	return d
}

// fakeReleaser records what the console asked of the release API.
type fakeReleaser struct {
	mu       sync.Mutex
	releases []ReleaseRequest
	held     []string
	err      error
}

func (f *fakeReleaser) Release(_ context.Context, r ReleaseRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", f.err
	}
	f.releases = append(f.releases, r)
	return fmt.Sprintf("dec-%d", len(f.releases)), nil
}

// SubjectState answers that subject is suspended on bss since 09:00
// UTC today, and has a suspension parked on lab.
func (f *fakeReleaser) SubjectState(_ context.Context, kind, subject string) (hooks.SubjectView, error) {
	since := time.Now().UTC().Truncate(24 * time.Hour).Add(9 * time.Hour)
	return hooks.SubjectView{Subject: subject, SubjectKind: kind, Endpoints: []hooks.EndpointState{
		{Endpoint: "bss", LastRequestID: "msg_bss1", Action: "suspend", Outcome: "delivered", SuspendedSince: &since},
		{Endpoint: "lab", LastRequestID: "msg_lab1", Action: "suspend", Outcome: "parked", Parked: []string{"msg_lab1"}},
	}}, nil
}

func (f *fakeReleaser) Held(_ context.Context, id string, approve bool, by, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held = append(f.held, fmt.Sprintf("%s %v %s", id, approve, by))
	return nil
}

func (f *fakeReleaser) Redeliver(_ context.Context, id, by, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held = append(f.held, fmt.Sprintf("%s redeliver %s", id, by))
	return nil
}

// testPassword is every test user's password.
const testPassword = "correct horse battery"

// testUsers are ana (analyst), vic (viewer) and sue (supervisor).
func testUsers(t testing.TB) *Users {
	t.Helper()
	h, err := HashPassword(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	u, err := ParseUsers([]byte(fmt.Sprintf("users:\n- {name: ana, role: analyst, password_hash: '%s'}\n- {name: vic, role: viewer, password_hash: '%s'}\n- {name: sue, role: supervisor, password_hash: '%s'}\n", h, h, h)))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func newTestServer(t testing.TB, d *testDay, rel Releaser, opts ...func(*Options)) *httptest.Server {
	t.Helper()
	var log *zap.Logger = zap.NewNop()
	if tt, ok := t.(*testing.T); ok {
		log = zaptest.NewLogger(tt, zaptest.Level(zap.WarnLevel))
	}
	o := Options{Store: d.store, Releaser: rel, Users: testUsers(t), SessionKey: []byte(strings.Repeat("k", 32)),
		Rules: d.rules.Rules(), StoreCDRs: true, Logger: log}
	for _, f := range opts {
		f(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts
}

// browser is an HTTP client with cookies that does not follow redirects.
type browser struct {
	t    testing.TB
	base string
	c    *http.Client
}

func newBrowser(t testing.TB, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(path string) (int, string, http.Header) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	_, _ = fmt.Fprint(&sb, readAll(b.t, resp))
	return resp.StatusCode, sb.String(), resp.Header
}

func (b *browser) post(path string, form url.Values) (int, string, http.Header) {
	b.t.Helper()
	resp, err := b.c.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, readAll(b.t, resp), resp.Header
}

func readAll(t testing.TB, resp *http.Response) string {
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return sb.String()
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the form token of a page.
func csrf(t testing.TB, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in the page:\n%.2000s", page)
	}
	return m[1]
}

// login logs b in as user and returns the queue page's CSRF token.
func (b *browser) login(user, password string) int {
	b.t.Helper()
	_, page, _ := b.get("/login")
	code, _, _ := b.post("/login", url.Values{"csrf": {csrf(b.t, page)}, "username": {user}, "password": {password}, "next": {"/"}})
	return code
}
