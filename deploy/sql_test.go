package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/pipeline/kafkaio/kafkatest"
	"github.com/cdrguard/cdrguard/pipeline/synth"
)

// The generated day's bounds, as the dashboards' time range.
const (
	dayFrom = "toDateTime('2026-11-02 00:00:00', 'UTC')"
	dayTo   = "toDateTime('2026-11-03 00:00:00', 'UTC')"
)

func clickhouseHTTP(t *testing.T) (native, httpAddr string) {
	t.Helper()
	native, httpAddr = os.Getenv("CDRGUARD_CLICKHOUSE_ADDR"), os.Getenv("CDRGUARD_CLICKHOUSE_HTTP")
	if native == "" {
		native = "127.0.0.1:9000"
	}
	if httpAddr == "" {
		httpAddr = "127.0.0.1:8123"
	}
	for _, a := range []string{native, httpAddr} {
		c, err := net.DialTimeout("tcp", a, 2*time.Second)
		if err != nil {
			missing(t, "no ClickHouse at %s (make services-up starts one): %v", a, err)
		}
		c.Close()
	}
	return native, httpAddr
}

// chQuery runs a query over ClickHouse's HTTP interface and returns its
// JSONEachRow lines.
func chQuery(httpAddr, db, q string) ([]string, error) {
	q = strings.TrimRight(strings.TrimSpace(q), ";")
	resp, err := http.Post("http://"+httpAddr+"/?database="+url.QueryEscape(db), "text/plain", strings.NewReader(q+"\nFORMAT JSONEachRow"))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	var rows []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if len(sc.Bytes()) > 0 {
			rows = append(rows, sc.Text())
		}
	}
	return rows, sc.Err()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// scrape reads the metric families a /metrics endpoint serves.
func scrape(t *testing.T, addr string) map[string]bool {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	fams := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			fams[f[2]] = true
		}
	}
	return fams
}

// peakRSS reads a process's VmHWM in bytes.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n << 10
}

// TestDashboardsAndQueriesOnGeneratedDay runs a generated day through
// Kafka and `cdrguard run` into ClickHouse 18.16, then:
//
//   - runs every dashboard SQL query on it, each must return rows (panels
//     on tables the migrations do not create yet, such as hook_deliveries
//     before the hooks land, are skipped with a log line);
//   - checks that every metric the Prometheus dashboard reads is served by
//     the job's /metrics (cdrguard_hook_ ones skipped while absent: the
//     hooks process serves them);
//   - loads the migrations rendered for a modern server and the tables'
//     content into chdb (ClickHouse 26.x in-process) and runs the analyst
//     query pack and the dashboards' queries there.
func TestDashboardsAndQueriesOnGeneratedDay(t *testing.T) {
	_, httpAddr := clickhouseHTTP(t)
	native, _ := clickhouseHTTP(t)
	chdbPython := chdbInterpreter(t)
	kc := kafkatest.Client(t)

	day := synth.Generate(synth.Config{Seed: 7, Scale: 0.15})
	topic := kafkatest.Name(t, "cdrs")
	kafkatest.ProduceCDRs(t, kc, topic, 3, day.Records)
	db := fmt.Sprintf("deploy_%x", time.Now().UnixNano()&0xffffff)
	t.Cleanup(func() { _, _ = chQuery(httpAddr, "default", "DROP DATABASE IF EXISTS "+db) })
	group, alerts := kafkatest.Name(t, "g"), kafkatest.Name(t, "alerts")
	metricsAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	rules, _ := filepath.Abs(filepath.Join(repoRoot, "deploy/rules.yaml"))
	runStart := time.Now().UTC()
	recv := newHookReceiver(t)
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
  dsn: clickhouse://%s/%s
  store_cdrs: true
  flush_interval: 200ms
metrics:
  listen: %s
log:
  level: warn
  format: console
shutdown_timeout: 20s
%s`, kc.Conn.Brokers[0], topic, group, alerts, rules, native, db, metricsAddr, recv.config(t))
	cfgPath := filepath.Join(t.TempDir(), "run.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	run := exec.Command(binary(t), "run", "--config", cfgPath)
	run.Stdout, run.Stderr = &logBuf, &logBuf
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if run.ProcessState == nil {
			_ = run.Process.Kill()
			_ = run.Wait()
		}
		if t.Failed() {
			t.Logf("cdrguard run log:\n%s", logBuf.String())
		}
	})
	kafkatest.WaitCaughtUp(t, kc, group, 3*time.Minute, topic, topic+".sources")
	kafkatest.WaitCaughtUp(t, kc, group+"-clickhouse", 3*time.Minute, topic+".rows", alerts)
	waitHooksRecorded(t, kc, group, alerts, metricsAddr, httpAddr, db)
	served := scrape(t, metricsAddr)
	peak := peakRSS(run.Process.Pid)
	_ = run.Process.Signal(syscall.SIGTERM)
	if err := run.Wait(); err != nil {
		t.Fatalf("cdrguard run: %v", err)
	}
	t.Logf("cdrguard run drained %d records; peak RSS (VmHWM) %d MiB; the receiver answered %d requests", len(day.Records), peak>>20, recv.requests())
	// hook_deliveries rows carry the wall-clock time of the attempt: the
	// hook panels are looked at over the run, not the generated day (from
	// a whole interval before it: the panels filter on their buckets).
	runFrom := fmt.Sprintf("toDateTime('%s', 'UTC')", runStart.Truncate(300*time.Second).Add(-300*time.Second).Format(time.DateTime))
	runTo := fmt.Sprintf("toDateTime('%s', 'UTC')", time.Now().UTC().Add(time.Minute).Format(time.DateTime))

	sqlQueries, promQueries := dashboardQueries(t)
	tables := migratedTables(t)
	expanded := func(q panelQuery) (string, bool) {
		from, to := dayFrom, dayTo
		for _, tb := range tablesIn(q.sql) {
			if !tables[tb] {
				t.Logf("%s: skipped: table %s is not created by the migrations yet", q.name, tb)
				return "", false
			}
			if tb == "hook_deliveries" {
				from, to = runFrom, runTo
			}
		}
		return expandMacros(t, q.name, q.sql, from, to, "300"), true
	}
	t.Run("clickhouse-18.16", func(t *testing.T) {
		for _, q := range sqlQueries {
			sql, ok := expanded(q)
			if !ok {
				continue
			}
			rows, err := chQuery(httpAddr, db, sql)
			if err != nil {
				t.Errorf("%s: %v", q.name, err)
			} else if len(rows) == 0 {
				t.Errorf("%s: no rows on the generated day", q.name)
			}
		}
	})
	t.Run("prometheus-metrics", func(t *testing.T) {
		// A labelled family shows in /metrics once it has a child; one
		// that has none yet (no retries on a healthy run) must still be
		// a name the binary registers.
		exe, err := os.ReadFile(binary(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range promQueries {
			for _, m := range promMetrics(q.expr) {
				switch {
				case served[m]:
				case bytes.Contains(exe, []byte(m)):
					t.Logf("%s: %s has no series on this run; the binary registers it", q.name, m)
				case strings.HasPrefix(m, "cdrguard_hook_") && !commands(t)["hooks"]:
					t.Logf("%s: %s not checked: cdrguard hooks is not in this binary yet", q.name, m)
				default:
					t.Errorf("%s: cdrguard serves no %s", q.name, m)
				}
			}
		}
	})
	t.Run("chdb-modern", func(t *testing.T) {
		checkOnChdb(t, chdbPython, httpAddr, db, sqlQueries, expanded)
	})
}

// chdbInterpreter is the Python with chdb-core that services.sh installs.
func chdbInterpreter(t *testing.T) string {
	t.Helper()
	py := os.Getenv("CDRGUARD_CHDB_PYTHON")
	if py == "" {
		scratch := os.Getenv("CDRGUARD_SCRATCH")
		if scratch == "" {
			scratch = "/tmp/cdrguard-services"
		}
		py = filepath.Join(scratch, "chdb-venv/bin/python")
	}
	if out, err := exec.Command(py, "-c", "import chdb").CombinedOutput(); err != nil {
		missing(t, "no chdb-core at %s (deploy/local/services.sh up installs it): %v %s", py, err, out)
	}
	return py
}

// The modern server the migrations are rendered for; chdb-core 26.x
// embeds a ClickHouse at least as new.
const modernVersion = "26.1"

// checkOnChdb renders the migrations for a modern server, loads the
// 18.16 tables' content into chdb, and runs the analyst query pack and
// the dashboards' queries there.
func checkOnChdb(t *testing.T, python, httpAddr, db string, dashQueries []panelQuery, expanded func(panelQuery) (string, bool)) {
	out, err := exec.Command(binary(t), "migrate", "--clickhouse", "clickhouse://127.0.0.1:1/"+db,
		"--print", "--server-version", modernVersion).CombinedOutput()
	if err != nil {
		t.Fatalf("cdrguard migrate --print --server-version %s: %v\n%s", modernVersion, err, out)
	}
	var ddl []string
	for _, stmt := range strings.Split(string(out), ";\n") {
		var lines []string
		for _, l := range strings.Split(stmt, "\n") {
			if !strings.HasPrefix(strings.TrimSpace(l), "--") {
				lines = append(lines, l)
			}
		}
		if s := strings.TrimSpace(strings.Join(lines, "\n")); s != "" {
			ddl = append(ddl, s)
		}
	}
	if !strings.Contains(string(out), "LowCardinality") {
		t.Errorf("the DDL for %s uses no LowCardinality: not the modern rendering?", modernVersion)
	}

	data := map[string]string{}
	for tb := range migratedTables(t) {
		rows, err := chQuery(httpAddr, db, "SELECT * FROM "+tb)
		if err != nil {
			t.Fatalf("dump %s: %v", tb, err)
		}
		data[tb] = strings.Join(rows, "\n")
	}

	type query struct {
		Name string `json:"name"`
		SQL  string `json:"sql"`
	}
	var queries []query
	packFiles, _ := filepath.Glob(filepath.Join(repoRoot, "schemas/clickhouse/queries/*.sql"))
	if len(packFiles) == 0 {
		t.Fatal("no analyst queries found")
	}
	for _, f := range packFiles {
		// The parameters as the files document them: now() is the end of
		// the day looked at, __CALLER__ a number.
		q := strings.ReplaceAll(mustRead(t, f), "now()", dayTo)
		q = strings.ReplaceAll(q, "__CALLER__", "+15550100001")
		queries = append(queries, query{Name: "query pack " + filepath.Base(f), SQL: strings.TrimRight(strings.TrimSpace(q), ";")})
	}
	wantRows := map[string]bool{}
	for _, dq := range dashQueries {
		if sql, ok := expanded(dq); ok {
			queries = append(queries, query{Name: dq.name, SQL: sql})
			wantRows[dq.name] = true
		}
	}
	req, _ := json.Marshal(map[string]any{"database": db, "ddl": ddl, "data": data, "queries": queries})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "local/chdb_check.py")
	cmd.Stdin = bytes.NewReader(req)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	res, err := cmd.Output()
	if err != nil {
		t.Fatalf("chdb_check.py: %v\n%s", err, stderr.String())
	}
	var got struct {
		Version      string `json:"version"`
		DDLErrors    []any  `json:"ddl_errors"`
		InsertErrors []any  `json:"insert_errors"`
		Queries      []struct {
			Name  string `json:"name"`
			Rows  int    `json:"rows"`
			Error string `json:"error"`
		} `json:"queries"`
	}
	if err := json.Unmarshal(res, &got); err != nil {
		t.Fatalf("chdb_check.py: %v\n%s", err, res)
	}
	for _, e := range got.DDLErrors {
		t.Errorf("chdb %s: migration DDL: %v", got.Version, e)
	}
	for _, e := range got.InsertErrors {
		t.Errorf("chdb %s: loading the 18.16 tables: %v", got.Version, e)
	}
	for _, q := range got.Queries {
		switch {
		case q.Error != "":
			t.Errorf("chdb %s: %s: %s", got.Version, q.Name, q.Error)
		case wantRows[q.Name] && q.Rows == 0:
			t.Errorf("chdb %s: %s: no rows on the generated day", got.Version, q.Name)
		}
	}
	t.Logf("chdb %s: %d DDL statements (rendered for %s), %d queries", got.Version, len(ddl), modernVersion, len(got.Queries))
}
