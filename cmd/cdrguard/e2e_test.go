package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio/kafkatest"
	"github.com/cdrguard/cdrguard/pipeline/synth"
	"github.com/cdrguard/cdrguard/schemas"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds cdrguard once for the tests that run it as a child
// process (a plain build even under -race: the child is the product as
// shipped, and the in-process tests of pipeline/stream cover races).
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cdrguard-e2e-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "cdrguard")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// clickhouseAddr returns the test ClickHouse (native protocol), skipping
// (failing under CDRGUARD_INTEGRATION=1) when none answers.
func clickhouseAddr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("CDRGUARD_CLICKHOUSE_ADDR")
	if addr == "" {
		addr = "127.0.0.1:9000"
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		if os.Getenv("CDRGUARD_INTEGRATION") == "1" {
			t.Fatalf("no ClickHouse at %s (make services-up starts one): %v", addr, err)
		}
		t.Skipf("no ClickHouse at %s; run make services-up (or make test)", addr)
	}
	c.Close()
	return addr
}

// e2eConfig is the config file of a test run.
func e2eConfig(t *testing.T, brokers []string, topic, group, alerts, chDSN string) string {
	return e2eConfigWith(t, brokers, topic, group, alerts, chDSN, "")
}

// e2eConfigWith adds extra lines to the clickhouse section.
func e2eConfigWith(t *testing.T, brokers []string, topic, group, alerts, chDSN, chExtra string) string {
	t.Helper()
	abs, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`kafka:
  brokers: [%q]
  topic: %s
  group: %s
  alerts_topic: %s
  commit_interval: 200ms
  session_timeout: 6s
  rebalance_timeout: 10s
detect:
  rules: %s
  idle_release: 2s
clickhouse:
  dsn: %q
  flush_interval: 200ms
%s
metrics:
  listen: "off"
log:
  level: warn
  format: console
shutdown_timeout: 20s
`, brokers[0], topic, group, alerts, abs, chDSN, chExtra)
	path := filepath.Join(t.TempDir(), group+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// child runs `cdrguard run --config path` in a child process.
func child(t *testing.T, config string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary(t), "run", "--config", config)
	logf, err := os.Create(filepath.Join(t.TempDir(), "child.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("child log:\n%s", tail(string(b), 3000))
		}
	})
	return cmd
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// stopChild sends SIGTERM and waits for a clean exit.
func stopChild(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("cdrguard run exited with %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("cdrguard run did not stop within a minute of SIGTERM")
	}
}

func waitCommitted(t *testing.T, kc *kafkaio.Client, group, topic string, atLeast int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if kafkatest.Committed(t, kc, group, topic) >= atLeast {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("group %s did not commit %d records of %s within %v", group, atLeast, topic, timeout)
}

func chConn(t *testing.T, addr, db string) driver.Conn {
	t.Helper()
	conn, err := ch.Open(&ch.Options{Addr: []string{addr}, Auth: ch.Auth{Database: db}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func dropDB(t *testing.T, addr, db string) {
	t.Cleanup(func() {
		conn, err := ch.Open(&ch.Options{Addr: []string{addr}})
		if err == nil {
			_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
			conn.Close()
		}
	})
}

// tables reads the final content of every table a run writes, as sorted
// text rows (versions left out: a restart may emit a row at another
// watermark minute with the same figures).
func tables(t *testing.T, conn driver.Conn) map[string][]string {
	t.Helper()
	queries := map[string]string{
		"alerts":         "SELECT alert_id, rule, subject, toString(detected_at), toString(calls) FROM alerts FINAL",
		"caller_minute":  "SELECT caller, toString(minute), toString(calls), toString(answered), toString(short_calls), toString(talk_s), toString(distinct_callees) FROM caller_minute FINAL",
		"caller_hourly":  "SELECT caller, toString(hour), toString(calls), toString(answered), toString(short_calls), toString(talk_s), toString(distinct_callees) FROM caller_hourly FINAL",
		"caller_daily":   "SELECT caller, toString(day), toString(calls), toString(answered), toString(short_calls), toString(talk_s), toString(distinct_callees) FROM caller_daily FINAL",
		"network_minute": "SELECT toString(minute), toString(source_partition), toString(calls), toString(talk_s) FROM network_minute FINAL",
	}
	out := map[string][]string{}
	for table, q := range queries {
		rows, err := conn.Query(context.Background(), q)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		cols := len(rows.Columns())
		for rows.Next() {
			vals := make([]string, cols)
			ptrs := make([]any, cols)
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("%s: %v", table, err)
			}
			out[table] = append(out[table], strings.Join(vals, "|"))
		}
		rows.Close()
		slices.Sort(out[table])
	}
	return out
}

func sameTables(t *testing.T, what string, want, got map[string][]string) {
	t.Helper()
	for table, rows := range want {
		if len(rows) == 0 {
			t.Errorf("%s: reference table %s is empty", what, table)
		}
		if !slices.Equal(rows, got[table]) {
			extra, missing := 0, 0
			for _, r := range got[table] {
				if _, ok := slices.BinarySearch(rows, r); !ok {
					extra++
					if extra <= 3 {
						t.Logf("%s %s: extra row %s", what, table, r)
					}
				}
			}
			for _, r := range rows {
				if _, ok := slices.BinarySearch(got[table], r); !ok {
					missing++
					if missing <= 3 {
						t.Logf("%s %s: missing row %s", what, table, r)
					}
				}
			}
			t.Errorf("%s: table %s differs from the uninterrupted run: %d rows, want %d (%d extra, %d missing)",
				what, table, len(got[table]), len(rows), extra, missing)
		}
	}
}

// TestStreamToClickHouseSurvivesCrashAndOutage runs one generated day
// through Kafka and `cdrguard run` (with its ClickHouse loader) three
// times:
//
//  1. uninterrupted: the alerts topic and the alerts table hold exactly
//     the alerts a replay raises (IDs included), and caller_daily holds
//     the file's call count for every caller above the floor;
//  2. killed with SIGKILL mid-stream and restarted: the same alerts, none
//     twice, and the same final tables;
//  3. ClickHouse stopped mid-stream for over a minute: detection goes on
//     (every record committed, every alert on the topic) while it is
//     down, an instance killed and started again during the outage stays
//     up, and once ClickHouse is back the loader catches up to the same
//     final tables.
func TestStreamToClickHouseSurvivesCrashAndOutage(t *testing.T) {
	kc := kafkatest.Client(t)
	chAddr := clickhouseAddr(t)
	gday := synth.Generate(synth.Config{Seed: 21, Scale: 0.2})
	recs := gday.Records
	topic := kafkatest.Name(t, "cdrs")
	kafkatest.ProduceCDRs(t, kc, topic, 6, recs)
	total := int64(len(recs))
	replay := kafkatest.Replay(t, rulesFile, recs)

	// 1. Uninterrupted.
	db0, g0, a0 := "e2e_ref_"+suffix(), kafkatest.Name(t, "g0"), kafkatest.Name(t, "alerts0")
	dropDB(t, chAddr, db0)
	ref := child(t, e2eConfigWith(t, kc.Conn.Brokers, topic, g0, a0, "clickhouse://"+chAddr+"/"+db0, "  store_cdrs: true"))
	kafkatest.WaitCaughtUp(t, kc, g0, 5*time.Minute, topic, topic+".sources")
	waitLoaded(t, kc, g0, topic, a0, true)
	stopChild(t, ref)
	kafkatest.SameAlerts(t, "alerts topic vs replay", replay, kafkatest.Alerts(t, kafkatest.ReadAll(t, kc, a0)))
	logRowsCost(t, kc, topic)
	refTables := tables(t, chConn(t, chAddr, db0))
	sameStoredAlerts(t, "ClickHouse alerts vs replay", replay, refTables["alerts"])
	checkCallerDaily(t, recs, refTables["caller_daily"])
	checkQueryPack(t, "127.0.0.1:8123", db0, gday, len(refTables["alerts"]))

	// 2. Killed mid-stream, restarted.
	t.Run("kill", func(t *testing.T) {
		db1, g1, a1 := "e2e_kill_"+suffix(), kafkatest.Name(t, "g1"), kafkatest.Name(t, "alerts1")
		dropDB(t, chAddr, db1)
		// The day arrives while the job runs (25k records/s), so the kill
		// falls mid-stream however fast the job drains a topic.
		live := kafkatest.Name(t, "cdrs-live")
		produced := make(chan error, 1)
		if err := kc.EnsureTopics(context.Background(), kafkaio.TopicSpec{Name: live, Partitions: 6, ReplicationFactor: -1}); err != nil {
			t.Fatal(err)
		}
		cfg := e2eConfig(t, kc.Conn.Brokers, live, g1, a1, "clickhouse://"+chAddr+"/"+db1)
		first := child(t, cfg)
		go func() {
			produced <- kc.ProduceCDRs(context.Background(), live, kafkaio.ProduceOptions{Rate: 25000}, recs)
		}()
		waitCommitted(t, kc, g1, live, total/3, 3*time.Minute)
		if err := first.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = first.Wait()
		if err := <-produced; err != nil {
			t.Fatal(err)
		}
		topic := live
		killedAt := kafkatest.Committed(t, kc, g1, topic)
		before := len(kafkatest.ReadAll(t, kc, a1))
		t.Logf("killed with %d of %d records committed and %d alerts published", killedAt, total, before)
		restarted := time.Now()
		second := child(t, cfg)
		if before < len(replay) {
			for deadline := time.Now().Add(2 * time.Minute); len(kafkatest.ReadAll(t, kc, a1)) <= before; {
				if time.Now().After(deadline) {
					t.Fatal("no new alert within two minutes of the restart")
				}
				time.Sleep(200 * time.Millisecond)
			}
			t.Logf("alerts resumed %v after the restart (session timeout 6s)", time.Since(restarted).Round(100*time.Millisecond))
		}
		kafkatest.WaitCaughtUp(t, kc, g1, 5*time.Minute, topic, topic+".sources")
		waitLoaded(t, kc, g1, topic, a1, false)
		stopChild(t, second)
		kafkatest.SameAlerts(t, "alerts after a crash vs replay", replay, kafkatest.Alerts(t, kafkatest.ReadAll(t, kc, a1)))
		sameTables(t, "after a crash", refTables, tables(t, chConn(t, chAddr, db1)))
	})

	// 3. ClickHouse down for over a minute mid-stream, on a server of its own.
	t.Run("clickhouse_outage", func(t *testing.T) {
		own := ownClickHouse(t)
		db2, g2, a2 := "e2e_outage_"+suffix(), kafkatest.Name(t, "g2"), kafkatest.Name(t, "alerts2")
		cfg := e2eConfig(t, kc.Conn.Brokers, topic, g2, a2, "clickhouse://"+own.addr+"/"+db2)
		// With the suspension dispatcher too (shadow mode: it records and
		// sends nothing): its ClickHouse recorder must not stop run either.
		t.Setenv("CDRGUARD_TEST_HOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
		appendConfig(t, cfg, "hooks:\n  endpoints:\n    - name: shadow\n      url: http://127.0.0.1:9/hooks\n      secret_env: CDRGUARD_TEST_HOOK_SECRET\n      mode: shadow\n")
		run := child(t, cfg)
		waitCommitted(t, kc, g2, topic, total/4, 3*time.Minute)
		own.stop(t)
		downAt := time.Now()
		// Detection does not wait for ClickHouse: the job goes on to the
		// end of the input, publishing every alert.
		waitCommitted(t, kc, g2, topic, total/2, 3*time.Minute)
		// An instance killed and started during the outage stays up.
		if err := run.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = run.Wait()
		run = child(t, cfg)
		kafkatest.WaitCaughtUp(t, kc, g2, 5*time.Minute, topic, topic+".sources")
		kafkatest.SameAlerts(t, "alerts published while ClickHouse was down vs replay", replay, kafkatest.Alerts(t, kafkatest.ReadAll(t, kc, a2)))
		if exited(run) {
			t.Fatal("cdrguard run started during the ClickHouse outage exited")
		}
		if wait := time.Minute - time.Since(downAt); wait > 0 {
			time.Sleep(wait) // keep the outage at a minute at least
		}
		t.Logf("ClickHouse down for %v; detection caught up meanwhile", time.Since(downAt).Round(time.Second))
		own.start(t)
		upAt := time.Now()
		waitLoaded(t, kc, g2, topic, a2, false)
		t.Logf("the loader caught up %v after ClickHouse was back", time.Since(upAt).Round(100*time.Millisecond))
		stopChild(t, run)
		sameTables(t, "after a ClickHouse outage", refTables, tables(t, chConn(t, own.addr, db2)))
	})
}

// logRowsCost logs what the rows topic costs next to the input: messages
// and value bytes (before the broker's LZ4 compression).
func logRowsCost(t *testing.T, kc *kafkaio.Client, topic string) {
	t.Helper()
	size := func(topic string) (n, bytes int) {
		for _, m := range kafkatest.ReadAll(t, kc, topic) {
			n++
			bytes += len(m.Key) + len(m.Value)
		}
		return n, bytes
	}
	in, inBytes := size(topic)
	rowsN, rowsBytes := size(topic + ".rows")
	t.Logf("rows topic: %d messages, %d bytes for %d input records of %d bytes (%.1f bytes per record, %.1f%% of the input)",
		rowsN, rowsBytes, in, inBytes, float64(rowsBytes)/float64(max(in, 1)), 100*float64(rowsBytes)/float64(max(inBytes, 1)))
}

// appendConfig adds lines at the end of a config file.
func appendConfig(t *testing.T, path, lines string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(lines); err != nil {
		t.Fatal(err)
	}
}

// waitLoaded waits until the ClickHouse loader of the job in group has
// loaded the rows and alerts topics (and the input when it stores CDRs).
func waitLoaded(t *testing.T, kc *kafkaio.Client, group, topic, alerts string, storeCDRs bool) {
	t.Helper()
	topics := []string{topic + ".rows", alerts}
	if storeCDRs {
		topics = append(topics, topic)
	}
	kafkatest.WaitCaughtUp(t, kc, group+"-clickhouse", 5*time.Minute, topics...)
}

// sameStoredAlerts compares the alerts table's rows (alert_id, rule,
// subject, detected_at, calls) with the alerts a replay raised.
func sameStoredAlerts(t *testing.T, what string, want []schemas.Alert, rows []string) {
	t.Helper()
	var wantRows []string
	for _, a := range want {
		wantRows = append(wantRows, strings.Join([]string{a.AlertID, a.Rule, a.Subject,
			a.DetectedAt.UTC().Format("2006-01-02 15:04:05"), fmt.Sprint(a.Metrics.Calls)}, "|"))
	}
	slices.Sort(wantRows)
	if !slices.Equal(wantRows, rows) {
		for i, r := range rows {
			if _, ok := slices.BinarySearch(wantRows, r); !ok && i < 5 {
				t.Logf("%s: extra %s", what, r)
			}
		}
		for i, r := range wantRows {
			if _, ok := slices.BinarySearch(rows, r); !ok && i < 5 {
				t.Logf("%s: missing %s", what, r)
			}
		}
		t.Errorf("%s: %d rows, want %d equal to the replay's", what, len(rows), len(wantRows))
	}
}

// checkCallerDaily checks that caller_daily holds every caller above the
// floor with the file's call count.
func checkCallerDaily(t *testing.T, recs []schemas.CDR, rows []string) {
	t.Helper()
	calls := map[string]int{}
	for _, c := range recs {
		calls[c.Caller]++
	}
	daily := map[string]string{}
	for _, row := range rows {
		f := strings.Split(row, "|")
		daily[f[0]] = f[2]
	}
	above, wrong := 0, 0
	for caller, n := range calls {
		if n < 20 {
			continue
		}
		above++
		if daily[caller] != fmt.Sprint(n) {
			wrong++
			if wrong <= 5 {
				t.Errorf("caller_daily for %s: %q calls, the file has %d", caller, daily[caller], n)
			}
		}
	}
	if wrong > 0 {
		t.Errorf("caller_daily wrong for %d of %d callers above the floor", wrong, above)
	}
	t.Logf("caller_daily checked for %d callers above the floor", above)
}

func suffix() string { return fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff) }

// ownServer is a ClickHouse server of the test's own (started with the
// project's services script in a scratch directory), so the test can
// stop it without disturbing other tests.
type ownServer struct {
	scratch, port, httpPort, addr string
}

// ownClickHouse starts the test's own server on free ports (fixed ones
// could be held by a server a killed earlier run left behind).
func ownClickHouse(t *testing.T) *ownServer {
	t.Helper()
	s := &ownServer{scratch: t.TempDir(), port: freePort(t), httpPort: freePort(t)}
	for s.httpPort == s.port {
		s.httpPort = freePort(t)
	}
	s.addr = "127.0.0.1:" + s.port
	s.start(t)
	t.Cleanup(func() { s.script(t, "purge") })
	return s
}

func (s *ownServer) script(t *testing.T, verb string) {
	t.Helper()
	cmd := exec.Command("../../deploy/local/services.sh", verb)
	cmd.Env = append(os.Environ(), "SERVICES=clickhouse", "CDRGUARD_SCRATCH="+s.scratch,
		"CLICKHOUSE_TCP_PORT="+s.port, "CLICKHOUSE_HTTP_PORT="+s.httpPort)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("services.sh %s: %v\n%s", verb, err, out)
	}
}

func (s *ownServer) start(t *testing.T) { s.script(t, "up") }
func (s *ownServer) stop(t *testing.T)  { s.script(t, "down") }

// freePort returns a loopback TCP port nothing listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
