package main

import (
	"fmt"
	"io/fs"
	"strings"
	"testing"

	chschema "github.com/cdrguard/cdrguard/schemas/clickhouse"
)

func TestMigratePrintsDDLForTheServerVersion(t *testing.T) {
	code, old, stderr := cli(t, "migrate", "--clickhouse", "clickhouse://ch:9000/fraud", "--print", "--server-version", "18.16")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	code, modern, stderr := cli(t, "migrate", "--clickhouse", "clickhouse://ch:9000/fraud", "--print", "--server-version", "24.8")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"CREATE TABLE IF NOT EXISTS fraud.alerts", "ReplacingMergeTree", "fraud.caller_daily"} {
		if !strings.Contains(old, want) || !strings.Contains(modern, want) {
			t.Errorf("DDL lacks %q", want)
		}
	}
	if strings.Contains(old, "LowCardinality") || strings.Contains(old, "TTL") || strings.Contains(old, "CODEC") {
		t.Error("18.16 DDL uses features 18.16 lacks")
	}
	if !strings.Contains(modern, "LowCardinality") || !strings.Contains(modern, "TTL") {
		t.Error("24.8 DDL does not use LowCardinality and TTL")
	}
}

func TestMigrateRealServerTwice(t *testing.T) {
	addr := clickhouseAddr(t)
	db := "migrate_" + suffix()
	dropDB(t, addr, db)
	files, err := fs.Glob(chschema.Migrations, "migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("embedded migrations: %v %v", files, err)
	}
	var want []string
	for i := range files {
		want = append(want, fmt.Sprint(i+1))
	}
	for range 2 {
		code, out, stderr := cli(t, "migrate", "--clickhouse", "clickhouse://"+addr+"/"+db)
		if code != 0 || !strings.Contains(out, "migrations applied: ["+strings.Join(want, " ")+"]") {
			t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
		}
	}
}
