package clickhouse

import (
	"io/fs"
	"path"
	"regexp"
	"strings"
	"testing"
)

// TestEmbeddedFiles: the migrations are named NNN_name.sql with distinct
// versions, and the bootstrap and query pack are embedded.
func TestEmbeddedFiles(t *testing.T) {
	names, err := fs.Glob(Migrations, "migrations/*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("no migrations embedded: %v", err)
	}
	nameRE := regexp.MustCompile(`^[0-9]{3}_[a-z0-9_]+\.sql$`)
	seen := map[string]string{}
	for _, n := range names {
		base := path.Base(n)
		if !nameRE.MatchString(base) || strings.HasPrefix(base, "000_") {
			t.Errorf("migration %s is not named NNN_name.sql with NNN from 001", n)
		}
		if prev, ok := seen[base[:3]]; ok {
			t.Errorf("migrations %s and %s share version %s", prev, base, base[:3])
		}
		seen[base[:3]] = base
		text, _ := fs.ReadFile(Migrations, n)
		if !strings.Contains(string(text), "IF NOT EXISTS") && !strings.Contains(string(text), "addColumn") {
			t.Errorf("migration %s is not safe to run twice (no IF NOT EXISTS)", n)
		}
	}
	if !strings.Contains(Bootstrap, "cdrguard_migrations") {
		t.Error("Bootstrap does not create cdrguard_migrations")
	}
	if q, _ := fs.Glob(Queries, "queries/*.sql"); len(q) < 8 {
		t.Errorf("query pack has %d queries, want at least 8", len(q))
	}
}
