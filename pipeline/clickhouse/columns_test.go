package clickhouse

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
)

// columnDefRE matches one column line of the rendered CREATE TABLE
// statements: name, type, and whatever follows (CODEC, DEFAULT).
var columnDefRE = regexp.MustCompile(`^\s+([a-z_]+)\s+(.+?)(?:\s+CODEC\(.*\))?(?:\s+DEFAULT .*)?,?$`)

// renderedColumnTypes reads the column types of every table from the DDL
// a server of version v gets.
func renderedColumnTypes(t *testing.T, version string) map[string]map[string]string {
	t.Helper()
	v, err := ParseVersion(version)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Render(Options{DSN: "clickhouse://h:9000", CDRRetentionDays: 30}, v)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	tableRE := regexp.MustCompile(`CREATE TABLE IF NOT EXISTS \w+\.(\w+)`)
	addRE := regexp.MustCompile(`^ALTER TABLE \w+\.(\w+)(?: ON CLUSTER \w+)? ADD COLUMN (?:IF NOT EXISTS )?(\w+) (.+?);?$`)
	for _, m := range plan.Migrations {
		for _, stmt := range m.Statements {
			if am := addRE.FindStringSubmatch(strings.TrimSpace(stmt)); am != nil {
				out[am[1]][am[2]] = am[3]
				continue
			}
			tm := tableRE.FindStringSubmatch(stmt)
			if tm == nil {
				continue
			}
			cols := map[string]string{}
			for line := range strings.SplitSeq(stmt, "\n") {
				if c := columnDefRE.FindStringSubmatch(line); c != nil {
					cols[c[1]] = strings.TrimSuffix(c[2], ",")
				}
			}
			out[tm[1]] = cols
		}
	}
	return out
}

// TestColumnsFitRenderedTypes appends the Sink's column slices to
// clickhouse-go columns of the types each server generation gets (the
// modern DDL cannot be run here: the local server is 18.16), so a Go type
// that the driver cannot put into a modern column (LowCardinality,
// DateTime64, Nullable(DateTime64)) fails here rather than in production.
func TestColumnsFitRenderedTypes(t *testing.T) {
	rows := sampleRows()
	s := &Sink{opts: Options{PseudonymizeCallees: true, PseudonymKey: []byte("0123456789abcdef")}}
	reqs := []*request{{partition: 2, rows: *rows}}
	modern := renderedColumnTypes(t, "24.8.4.13")
	if modern["alerts"]["rule"] != "LowCardinality(String)" || modern["cdrs"]["answer_time"] != "Nullable(DateTime64(3, 'UTC'))" ||
		modern["cdrs"]["start_time"] != "DateTime64(3, 'UTC')" || modern["alerts"]["caller_ids"] != "Array(String)" {
		t.Fatalf("modern column types not parsed as expected: %v / %v", modern["alerts"], modern["cdrs"])
	}
	for _, version := range []string{"18.16.1", "19.3.3", "24.8.4.13", "25.6.1"} {
		types := renderedColumnTypes(t, version)
		for _, tb := range tables {
			defs, ok := types[tb.name]
			if !ok {
				t.Fatalf("%s: no CREATE TABLE for %s", version, tb.name)
			}
			n := 0
			for _, r := range reqs {
				n += tb.count(r)
			}
			data := tb.build(s, reqs, n)
			names := strings.Split(tb.columns, ",")
			if len(names) != len(data) {
				t.Fatalf("%s: %d columns named, %d built", tb.name, len(names), len(data))
			}
			for i, name := range names {
				name = strings.TrimSpace(name)
				typ, ok := defs[name]
				if !ok {
					t.Errorf("%s %s: no column %s", version, tb.name, name)
					continue
				}
				col, err := column.Type(typ).Column(name, &column.ServerContext{Timezone: time.UTC})
				if err != nil {
					t.Errorf("%s %s.%s: type %s: %v", version, tb.name, name, typ, err)
					continue
				}
				if _, err := col.Append(data[i]); err != nil {
					t.Errorf("%s %s.%s %s: cannot append %T: %v", version, tb.name, name, typ, data[i], err)
				} else if col.Rows() != n {
					t.Errorf("%s %s.%s: %d rows appended, want %d", version, tb.name, name, col.Rows(), n)
				}
			}
		}
	}
}
