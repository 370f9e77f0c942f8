package deploy_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dashboard is the part of a Grafana dashboard model the tests read.
type dashboard struct {
	file   string
	UID    string `json:"uid"`
	Title  string `json:"title"`
	Panels []struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Datasource struct {
				Type string `json:"type"`
				UID  string `json:"uid"`
			} `json:"datasource"`
			RawSQL string `json:"rawSql"`
			Expr   string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func dashboards(t *testing.T) []dashboard {
	t.Helper()
	files, _ := filepath.Glob("grafana/dashboards/*.json")
	if len(files) < 2 {
		t.Fatalf("want the ClickHouse and the Prometheus dashboards in grafana/dashboards, found %v", files)
	}
	var out []dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		d.file = filepath.Base(f)
		out = append(out, d)
	}
	return out
}

// panelQuery is one SQL or PromQL query of a dashboard panel.
type panelQuery struct {
	name, sql, expr string
}

func dashboardQueries(t *testing.T) (sql, prom []panelQuery) {
	t.Helper()
	for _, d := range dashboards(t) {
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				q := panelQuery{name: d.file + ": " + p.Title, sql: tg.RawSQL, expr: tg.Expr}
				switch tg.Datasource.Type {
				case "grafana-clickhouse-datasource":
					sql = append(sql, q)
				case "prometheus":
					prom = append(prom, q)
				}
			}
		}
	}
	return sql, prom
}

// grafanaMacro is what the ClickHouse data source plugin expands.
var grafanaMacro = regexp.MustCompile(`\$__([A-Za-z_]+)(\(([^)]*)\))?`)

// expandMacros expands the plugin's macros as it does (pkg/macros of
// grafana/clickhouse-datasource) for the time range [from, to] given as
// ClickHouse expressions and an interval in seconds. The plugin's
// $__timeInterval needs toStartOfInterval, which 18.16 lacks, so the
// dashboards bucket with $__interval_s and the test rejects it.
func expandMacros(t *testing.T, name, sql, from, to, interval string) string {
	t.Helper()
	return grafanaMacro.ReplaceAllStringFunc(sql, func(m string) string {
		g := grafanaMacro.FindStringSubmatch(m)
		switch g[1] {
		case "timeFilter":
			return g[3] + " >= " + from + " AND " + g[3] + " <= " + to
		case "fromTime":
			return from
		case "toTime":
			return to
		case "interval_s":
			return interval
		}
		t.Errorf("%s: macro $__%s is not one the dashboards may use", name, g[1])
		return m
	})
}

// TestDashboards parses the dashboards: every panel has a query, the
// ClickHouse panels use only the macros the SQL test expands, and the
// Prometheus panels name only cdrguard metrics.
func TestDashboards(t *testing.T) {
	uids := map[string]bool{}
	for _, d := range dashboards(t) {
		if d.UID == "" || uids[d.UID] {
			t.Errorf("%s: uid %q missing or not unique", d.file, d.UID)
		}
		uids[d.UID] = true
		for _, p := range d.Panels {
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", d.file, p.Title)
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.RawSQL+tg.Expr) == "" {
					t.Errorf("%s: panel %q has an empty query", d.file, p.Title)
				}
			}
		}
	}
	sql, prom := dashboardQueries(t)
	if len(sql) == 0 || len(prom) == 0 {
		t.Fatalf("%d ClickHouse and %d Prometheus queries; want both dashboards", len(sql), len(prom))
	}
	for _, q := range sql {
		expandMacros(t, q.name, q.sql, "toDateTime(0)", "toDateTime(1)", "60")
		if strings.Contains(q.sql, "cdrguard.") {
			t.Errorf("%s: name tables without a database (the data source's default database is used)", q.name)
		}
	}
	for _, q := range prom {
		if len(promMetrics(q.expr)) == 0 {
			t.Errorf("%s: %q names no cdrguard metric", q.name, q.expr)
		}
	}
}

var promMetric = regexp.MustCompile(`\bcdrguard_[a-z0-9_]+`)

// promMetrics lists the metric families a PromQL expression reads
// (histogram series folded into their family).
func promMetrics(expr string) []string {
	var out []string
	for _, m := range promMetric.FindAllString(expr, -1) {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			m = strings.TrimSuffix(m, suffix)
		}
		out = append(out, m)
	}
	return out
}

// tablesIn lists the tables a query reads (FROM and JOIN).
func tablesIn(sql string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?i)\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_.]*)`).FindAllStringSubmatch(sql, -1) {
		out = append(out, m[1])
	}
	return out
}

// migratedTables lists the tables the migrations create.
func migratedTables(t *testing.T) map[string]bool {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(repoRoot, "schemas/clickhouse/migrations/*.sql"))
	tables := map[string]bool{}
	for _, f := range files {
		for _, m := range regexp.MustCompile(`(?i)CREATE TABLE IF NOT EXISTS \{\{\.Database\}\}\.([a-z0-9_]+)`).FindAllStringSubmatch(mustRead(t, f), -1) {
			tables[m[1]] = true
		}
	}
	if !tables["alerts"] {
		t.Fatalf("cannot read the tables of the migrations in %d files", len(files))
	}
	return tables
}
