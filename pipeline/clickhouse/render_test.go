package clickhouse

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestRenderGolden renders the migrations for a modern server (24.8), a
// modern cluster and ClickHouse 18.16 and compares the SQL text with
// testdata/golden/*.sql. Run with -update to accept a change, and review
// the diff: it is exactly the DDL servers will get.
func TestRenderGolden(t *testing.T) {
	for _, tc := range []struct {
		golden  string
		version string
		opts    Options
	}{
		{"modern_24.8.sql", "24.8.4.13", Options{DSN: "clickhouse://127.0.0.1:9000/cdrguard", CDRRetentionDays: 90}},
		{"modern_24.8_cluster.sql", "24.8.4.13", Options{DSN: "clickhouse://127.0.0.1:9000", Database: "fraud", Cluster: "carrier", CDRRetentionDays: 30}},
		{"modern_24.8_no_retention.sql", "24.8", Options{DSN: "clickhouse://127.0.0.1:9000"}},
		{"old_18.16.sql", "18.16.1", Options{DSN: "clickhouse://127.0.0.1:9000/cdrguard", CDRRetentionDays: 90}},
		{"old_19.3.sql", "19.3.9.1", Options{DSN: "clickhouse://127.0.0.1:9000/cdrguard", CDRRetentionDays: 90}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			v, err := ParseVersion(tc.version)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := Render(tc.opts, v)
			if err != nil {
				t.Fatal(err)
			}
			got := planText(plan)
			path := filepath.Join("testdata", "golden", tc.golden)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestRenderGolden -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("rendered DDL differs from %s (run with -update and review the diff):\n%s", path, got)
			}
		})
	}
}

// TestRenderFeatures checks the feature gates on the rendered text, so a
// golden file accepted by mistake cannot hide a wrong gate.
func TestRenderFeatures(t *testing.T) {
	render := func(version, cluster string, retention int) string {
		t.Helper()
		v, err := ParseVersion(version)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := Render(Options{DSN: "clickhouse://h:9000", Cluster: cluster, CDRRetentionDays: retention}, v)
		if err != nil {
			t.Fatal(err)
		}
		return planText(plan)
	}
	f := func(version, cluster string, retention int, want, notWant []string) {
		t.Helper()
		sql := render(version, cluster, retention)
		for _, w := range want {
			if !strings.Contains(sql, w) {
				t.Errorf("%s (cluster %q, retention %d): rendered DDL lacks %q", version, cluster, retention, w)
			}
		}
		for _, w := range notWant {
			if strings.Contains(sql, w) {
				t.Errorf("%s (cluster %q, retention %d): rendered DDL has %q", version, cluster, retention, w)
			}
		}
	}
	f("18.16.1", "", 90,
		[]string{"rule                String,", "start_time        DateTime('UTC'),", "ENGINE = ReplacingMergeTree(version)"},
		[]string{"LowCardinality", "CODEC", "TTL", "DateTime64", "ON CLUSTER", "Replicated"})
	f("19.1.6", "", 90, []string{"CODEC(Delta, ZSTD(1))"}, []string{"LowCardinality", "TTL", "DateTime64"})
	f("19.3.3", "", 90, []string{"LowCardinality(String)", "CODEC("}, []string{"TTL", "DateTime64"})
	f("19.6.2", "", 90, []string{"TTL toDate(start_time) + INTERVAL 90 DAY"}, []string{"DateTime64"})
	f("20.1.2", "", 0, []string{"DateTime64(3, 'UTC')"}, []string{"TTL"})
	f("25.3.1", "main", 7, []string{
		"CREATE DATABASE IF NOT EXISTS cdrguard ON CLUSTER main",
		"CREATE TABLE IF NOT EXISTS cdrguard.alerts ON CLUSTER main",
		"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/caller_daily', '{replica}', version)",
		"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/cdrguard/{database}/allowlist', '{replica}', loaded_at)",
		"TTL toDate(start_time) + INTERVAL 7 DAY",
	}, nil)
}

func planText(p *Plan) string {
	var b strings.Builder
	b.WriteString("-- bootstrap\n")
	for _, s := range p.Bootstrap {
		b.WriteString(s + ";\n\n")
	}
	for _, m := range p.Migrations {
		fmt.Fprintf(&b, "-- migration %d: %s\n", m.Version, m.Name)
		for _, s := range m.Statements {
			b.WriteString(s + ";\n\n")
		}
	}
	return b.String()
}

func TestParseVersion(t *testing.T) {
	f := func(in string, major, minor, patch int) {
		t.Helper()
		v, err := ParseVersion(in)
		if err != nil {
			t.Fatalf("ParseVersion(%q): %v", in, err)
		}
		if v.Major != major || v.Minor != minor || v.Patch != patch || v.String() != in {
			t.Errorf("ParseVersion(%q) = %+v", in, v)
		}
	}
	f("18.16.1", 18, 16, 1)
	f("24.8.4.13", 24, 8, 4)
	f("25.3", 25, 3, 0)
	f("23.8.9.54-lts", 23, 8, 9)
	for _, bad := range []string{"", "24", "x.y", "24.x.1", "-1.2"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) succeeded", bad)
		}
	}
}

func TestFeaturesFor(t *testing.T) {
	f := func(version string, want Features) {
		t.Helper()
		v, _ := ParseVersion(version)
		if got := FeaturesFor(v); got != want {
			t.Errorf("FeaturesFor(%s) = %+v, want %+v", version, got, want)
		}
	}
	f("18.16.1", Features{})
	f("19.1.6", Features{Codecs: true, AddColumnIfNotExists: true})
	f("19.3.3", Features{LowCardinality: true, Codecs: true, AddColumnIfNotExists: true})
	f("19.6.2", Features{LowCardinality: true, Codecs: true, TTL: true, AddColumnIfNotExists: true})
	all := Features{LowCardinality: true, Codecs: true, TTL: true, DateTime64: true, AddColumnIfNotExists: true}
	f("20.1.2", all)
	f("23.8.1", all)
	f("24.8.4", all)
	f("25.6.1", all)
}

func TestSplitStatements(t *testing.T) {
	got := splitStatements("-- head;\n\nCREATE a\n(\n  x String, -- c; d\n  y String\n);  \n-- mid\nCREATE b;\n\n")
	want := []string{"CREATE a\n(\n  x String, -- c; d\n  y String\n)", "CREATE b"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("splitStatements = %q, want %q", got, want)
	}
}
