package clickhouse

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMigrateRealServer applies the migrations to the real server twice:
// the second run applies nothing, the migrations table lists each
// migration once, and the tables have the columns the Sink writes, with
// the types the server's features call for.
func TestMigrateRealServer(t *testing.T) {
	c, opts := testClient(t, false, nil)
	ctx := ctxTimeout(t, 2*time.Minute)
	for run := 1; run <= 2; run++ {
		if err := c.Migrate(ctx); err != nil {
			t.Fatalf("Migrate run %d: %v", run, err)
		}
	}
	plan, err := Render(opts, c.ServerVersion())
	if err != nil {
		t.Fatal(err)
	}
	var want []uint32
	for _, m := range plan.Migrations {
		want = append(want, m.Version)
	}
	got, err := c.AppliedMigrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("applied migrations %v, want %v", got, want)
	}
	conn := adminConn(t, "")
	cols, rows := queryStrings(t, conn, "SELECT version, name, server_version FROM "+opts.Database+".cdrguard_migrations ORDER BY version")
	if len(rows) != len(plan.Migrations) {
		t.Fatalf("cdrguard_migrations has %d rows after two runs, want %d (one per migration):\n%s", len(rows), len(plan.Migrations), tableText(rows))
	}
	for i, r := range pick(t, cols, rows, "name", "server_version") {
		if r[0] != plan.Migrations[i].Name || r[1] != c.ServerVersion().String() {
			t.Errorf("migration row %d = %v, want [%s %s]", i, r, plan.Migrations[i].Name, c.ServerVersion())
		}
	}

	// Every column the Sink writes exists, in every table.
	_, trows := queryStrings(t, conn, "SELECT table, name, type FROM system.columns WHERE database = ? ORDER BY table, name", opts.Database)
	types := map[string]string{}
	for _, r := range trows {
		types[r[0]+"."+r[1]] = r[2]
	}
	for _, tb := range tables {
		for col := range strings.SplitSeq(tb.columns, ",") {
			if _, ok := types[tb.name+"."+strings.TrimSpace(col)]; !ok {
				t.Errorf("table %s has no column %s", tb.name, strings.TrimSpace(col))
			}
		}
	}
	f := c.Features()
	wantRule := "String"
	if f.LowCardinality {
		wantRule = "LowCardinality(String)"
	}
	wantStart := "DateTime('UTC')"
	if f.DateTime64 {
		wantStart = "DateTime64(3, 'UTC')"
	}
	for col, want := range map[string]string{
		"alerts.rule":              wantRule,
		"alerts.caller_ids":        "Array(String)",
		"alerts.severity":          "Enum8('info' = 1, 'warning' = 2, 'critical' = 3)",
		"cdrs.start_time":          wantStart,
		"caller_daily.day":         "Date",
		"caller_hourly.version":    "UInt64",
		"network_minute.calls":     "UInt64",
		"allowlist.kind":           wantRule,
		"cdrguard_migrations.name": "String",
	} {
		if types[col] != want {
			t.Errorf("%s has type %q, want %q", col, types[col], want)
		}
	}
}

func TestTTLDays(t *testing.T) {
	f := func(engine string, want int) {
		t.Helper()
		if got := ttlDays(engine); got != want {
			t.Errorf("ttlDays(%q) = %d, want %d", engine, got, want)
		}
	}
	f("ReplacingMergeTree PARTITION BY toDate(start_time) ORDER BY (caller, start_time, call_id) TTL toDate(start_time) + toIntervalDay(90) SETTINGS index_granularity = 8192", 90)
	f("ReplacingMergeTree PARTITION BY toDate(start_time) ORDER BY (caller, start_time, call_id) TTL toDate(start_time) + INTERVAL 7 DAY SETTINGS index_granularity = 8192", 7)
	f("ReplacingMergeTree PARTITION BY toDate(start_time) ORDER BY (caller, start_time, call_id) SETTINGS index_granularity = 8192", 0)
}

// TestAddColumnIsIdempotent renders an ADD COLUMN the way a future
// migration would and runs it twice on the real server: on servers
// without ADD COLUMN IF NOT EXISTS the second run is tolerated.
func TestAddColumnIsIdempotent(t *testing.T) {
	c, opts := testClient(t, true, nil)
	data := templateData{Database: opts.Database, Features: c.Features()}
	stmts, err := renderStatements("005_test.sql", `{{addColumn "alerts" "rule_version UInt32 DEFAULT 0"}};`, &data)
	if err != nil {
		t.Fatal(err)
	}
	want := "ALTER TABLE " + opts.Database + ".alerts ADD COLUMN rule_version UInt32 DEFAULT 0"
	if c.Features().AddColumnIfNotExists {
		want = "ALTER TABLE " + opts.Database + ".alerts ADD COLUMN IF NOT EXISTS rule_version UInt32 DEFAULT 0"
	}
	if len(stmts) != 1 || stmts[0] != want {
		t.Fatalf("rendered %q, want %q", stmts, want)
	}
	ctx := ctxTimeout(t, time.Minute)
	for run := 1; run <= 2; run++ {
		if err := c.execMigrationStatement(ctx, stmts[0]); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
	// Other failures still fail.
	if err := c.execMigrationStatement(ctx, "ALTER TABLE "+opts.Database+".no_such_table ADD COLUMN x String"); err == nil {
		t.Error("ADD COLUMN on a missing table succeeded")
	}
}
