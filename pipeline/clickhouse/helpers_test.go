package clickhouse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testAddr returns the ClickHouse server the integration tests use, or
// skips (fails with CDRGUARD_INTEGRATION=1) when there is none.
//
//	CDRGUARD_CLICKHOUSE   host:port of the native protocol, or a DSN
//	CDRGUARD_INTEGRATION  1: the server is required (default 127.0.0.1:9000)
func testAddr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("CDRGUARD_CLICKHOUSE")
	required := os.Getenv("CDRGUARD_INTEGRATION") == "1"
	if addr == "" {
		if !required {
			t.Skip("no ClickHouse: set CDRGUARD_CLICKHOUSE=host:9000 or CDRGUARD_INTEGRATION=1 (deploy/local/services.sh up) to run this test")
		}
		addr = "127.0.0.1:9000"
	}
	hostPort := addr
	if strings.Contains(addr, "://") {
		opts, err := ch.ParseDSN(addr)
		if err != nil || len(opts.Addr) == 0 {
			t.Fatalf("CDRGUARD_CLICKHOUSE=%q does not parse as a DSN: %v", addr, err)
		}
		hostPort = opts.Addr[0]
	}
	c, err := net.DialTimeout("tcp", hostPort, 2*time.Second)
	if err != nil {
		msg := fmt.Sprintf("ClickHouse at %s is unreachable (%v); start it with deploy/local/services.sh up", hostPort, err)
		if required {
			t.Fatal(msg + " (CDRGUARD_INTEGRATION=1 requires it)")
		}
		t.Skip(msg)
	}
	_ = c.Close()
	return addr
}

// testDSN turns a testAddr result into a DSN.
func testDSN(addr string) string {
	if strings.Contains(addr, "://") {
		return addr
	}
	return "clickhouse://" + addr
}

// randomDatabase is a fresh database name for one test.
func randomDatabase(t testing.TB) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "cdrguard_test_" + hex.EncodeToString(b[:])
}

// testClient opens a Client on a fresh database (dropped at the end of
// the test), migrated unless migrate is false.
func testClient(t testing.TB, migrate bool, mutate func(*Options)) (*Client, Options) {
	t.Helper()
	addr := testAddr(t)
	opts := Options{
		DSN:           testDSN(addr),
		Database:      randomDatabase(t),
		StoreCDRs:     true,
		FlushInterval: 20 * time.Millisecond,
		RetryInitial:  20 * time.Millisecond,
		RetryMax:      200 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&opts)
	}
	return openTestClient(t, opts, migrate), opts
}

// openTestClient opens a Client for opts and drops opts.Database at the
// end of the test.
func openTestClient(t testing.TB, opts Options, migrate bool) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var log *zap.Logger
	if tt, ok := t.(*testing.T); ok {
		log = zaptest.NewLogger(tt, zaptest.Level(zap.WarnLevel))
	}
	c, err := Open(ctx, opts, log)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := adminConn(t, "").Exec(ctx, "DROP DATABASE IF EXISTS "+opts.Database); err != nil {
			t.Errorf("cannot drop test database %s: %v", opts.Database, err)
		}
		_ = c.Close()
	})
	if migrate {
		if err := c.Migrate(ctx); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	return c
}

// adminConn is a direct connection to the test server (not through any
// test proxy), with database as its default database ("" for the
// user's). It is closed at the end of the test.
func adminConn(t testing.TB, database string) driver.Conn {
	t.Helper()
	opts, err := ch.ParseDSN(testDSN(testAddr(t)))
	if err != nil {
		t.Fatal(err)
	}
	opts.Auth.Database = database
	conn, err := ch.Open(opts)
	if err != nil {
		t.Fatalf("cannot open admin connection: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// queryStrings runs a query and returns its column names and its rows
// with every value formatted as text (times as "2006-01-02 15:04:05").
func queryStrings(t testing.TB, conn driver.Conn, query string, args ...any) ([]string, [][]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := conn.Query(ctx, query, args...)
	if err != nil {
		t.Fatalf("query failed: %v\n%s", err, query)
	}
	defer rows.Close()
	cols := rows.Columns()
	types := rows.ColumnTypes()
	var out [][]string
	for rows.Next() {
		ptrs := make([]any, len(types))
		for i, ct := range types {
			ptrs[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("scan failed: %v\n%s", err, query)
		}
		row := make([]string, len(ptrs))
		for i, p := range ptrs {
			row[i] = formatValue(reflect.ValueOf(p).Elem().Interface())
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("query failed: %v\n%s", err, query)
	}
	return cols, out
}

func formatValue(v any) string {
	switch x := v.(type) {
	case time.Time:
		if x.Nanosecond() != 0 {
			return x.UTC().Format("2006-01-02 15:04:05.000")
		}
		return x.UTC().Format("2006-01-02 15:04:05")
	case *time.Time:
		if x == nil {
			return "NULL"
		}
		return formatValue(*x)
	case []string:
		return "[" + strings.Join(x, " ") + "]"
	case float64:
		return fmt.Sprintf("%g", x)
	}
	return fmt.Sprint(v)
}

// pick returns the named columns of rows, in the order named.
func pick(t testing.TB, cols []string, rows [][]string, names ...string) [][]string {
	t.Helper()
	idx := make([]int, len(names))
	for i, n := range names {
		idx[i] = -1
		for j, c := range cols {
			if c == n {
				idx[i] = j
			}
		}
		if idx[i] < 0 {
			t.Fatalf("no column %q in %v", n, cols)
		}
	}
	out := make([][]string, len(rows))
	for r, row := range rows {
		out[r] = make([]string, len(idx))
		for i, j := range idx {
			out[r][i] = row[j]
		}
	}
	return out
}

// table formats rows for failure messages.
func tableText(rows [][]string) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString("  " + strings.Join(r, " | ") + "\n")
	}
	return b.String()
}

func ts(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
