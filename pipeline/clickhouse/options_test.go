package clickhouse

import (
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestOptionsValidate(t *testing.T) {
	good := Options{DSN: "clickhouse://127.0.0.1:9000/cdrguard"}
	if err := good.Validate(); err != nil {
		t.Fatalf("good options: %v", err)
	}
	f := func(mutate func(*Options), wantErr string) {
		t.Helper()
		o := good
		mutate(&o)
		err := o.Validate()
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("Validate() = %v, want an error containing %q", err, wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Validate() error leaks the password: %v", err)
		}
	}
	f(func(o *Options) { o.DSN = "" }, "clickhouse dsn is empty")
	f(func(o *Options) { o.DSN = "http://u:s3cret@127.0.0.1:8123/db" }, `has scheme "http"`)
	f(func(o *Options) { o.DSN = "clickhouse:///db" }, "has no host")
	f(func(o *Options) { o.DSN = "clickhouse://u:s3cret@h:9000/db?dial_timeout=soon" }, "dial_timeout")
	f(func(o *Options) { o.Database = "fraud-db" }, `clickhouse database "fraud-db" must be an identifier`)
	f(func(o *Options) { o.DSN = "clickhouse://h:9000/1db" }, `clickhouse database "1db" must be an identifier`)
	f(func(o *Options) { o.Cluster = "main; DROP" }, `clickhouse cluster "main; DROP" must be an identifier`)
	f(func(o *Options) { o.CDRRetentionDays = -1 }, "clickhouse cdr_retention_days -1 must be 0 (keep forever) or positive")
	f(func(o *Options) { o.PseudonymizeCallees = true; o.PseudonymKey = []byte("short") },
		"clickhouse pseudonym key is 5 bytes: pseudonymize_callees needs at least 16")
	f(func(o *Options) { o.MaxRows = -5 }, "clickhouse max_rows -5 must be at least 1")
	f(func(o *Options) { o.FlushInterval = -time.Second }, "clickhouse flush_interval -1s must be positive")
	f(func(o *Options) { o.FlushWorkers = 100 }, "clickhouse flush_workers 100 must be between 1 and 64")
	f(func(o *Options) { o.RetryInitial = 10 * time.Second; o.RetryMax = time.Second },
		"clickhouse retry_max 1s must not be lower than retry_initial 10s")
}

func TestOptionsDefaults(t *testing.T) {
	d := Options{DSN: "clickhouse://h:9000/fraud"}.withDefaults()
	if d.Database != "fraud" || d.MaxRows != DefaultMaxRows || d.FlushInterval != DefaultFlushInterval ||
		d.FlushWorkers != DefaultFlushWorkers || d.RetryMax != DefaultRetryMax {
		t.Errorf("defaults = %v", d)
	}
	if d := (Options{DSN: "clickhouse://h:9000"}).withDefaults(); d.Database != DefaultDatabase {
		t.Errorf("database without a DSN path = %q, want %q", d.Database, DefaultDatabase)
	}
	if d := (Options{DSN: "clickhouse://h:9000/fraud", Database: "other"}).withDefaults(); d.Database != "other" {
		t.Errorf("Database field = %q, want it to win over the DSN path", d.Database)
	}
}

// TestOptionsStringRedacts: no way of printing Options shows a secret.
func TestOptionsStringRedacts(t *testing.T) {
	o := Options{
		DSN:          "clickhouse://admin:dsnpass@db1:9440,db2:9440/fraud?secure=true&password=qpass",
		Username:     "cdrguard",
		Password:     "fieldpass",
		TLS:          &tls.Config{ServerName: "db1"},
		PseudonymKey: []byte("keykeykeykeykeykey"),
	}
	for _, s := range []string{o.String(), fmt.Sprintf("%v", o), fmt.Sprintf("%+v", o), fmt.Sprintf("%#v", o), fmt.Sprint(&o)} {
		for _, secret := range []string{"dsnpass", "qpass", "fieldpass", "keykey"} {
			if strings.Contains(s, secret) {
				t.Errorf("%q shows secret %q", s, secret)
			}
		}
		if !strings.Contains(s, "db1:9440") || !strings.Contains(s, "username=cdrguard") || !strings.Contains(s, "tls=on") {
			t.Errorf("%q lacks the non-secret settings", s)
		}
	}
}
