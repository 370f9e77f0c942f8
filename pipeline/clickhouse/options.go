package clickhouse

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
)

// Defaults for the zero values of Options.
const (
	DefaultDatabase      = "cdrguard"
	DefaultMaxRows       = 100_000
	DefaultFlushInterval = time.Second
	DefaultFlushWorkers  = 2
	DefaultRetryInitial  = 250 * time.Millisecond
	DefaultRetryMax      = 30 * time.Second
	DefaultDialTimeout   = 5 * time.Second
	DefaultReadTimeout   = 2 * time.Minute
	minPseudonymKeyLen   = 16
	maxIdentifierLen     = 64
)

// Options configure a Client and its Sink. The zero value of every field
// but DSN means its default. Options hold secrets (Password, TLS,
// PseudonymKey): log them with String, which redacts them.
type Options struct {
	// DSN is the server address in clickhouse-go's form:
	// clickhouse://host:port[,host2:port]/database?dial_timeout=5s&…
	// The native protocol is used (port 9000, or 9440 with TLS); the HTTP
	// protocol does not work with ClickHouse 18.x. Credentials belong in
	// Username and Password, not in the DSN (if the DSN has them, Username
	// and Password override them).
	DSN string
	// Username and Password authenticate; Username defaults to "default".
	Username string
	Password string
	// TLS, if set, encrypts the connection.
	TLS *tls.Config

	// Database is where cdrguard's tables live; it defaults to the DSN's
	// path, then to "cdrguard". Migrate creates it if missing.
	Database string
	// Cluster, if set, makes the migrations run ON CLUSTER and create
	// Replicated*MergeTree tables (the server needs the {shard} and
	// {replica} macros and ZooKeeper/Keeper).
	Cluster string

	// StoreCDRs makes the Sink write raw CDRs (Rows.CDRs) to the cdrs
	// table; without it they are dropped.
	StoreCDRs bool
	// CDRRetentionDays is how long raw CDRs are kept (a TTL on the cdrs
	// table, servers >= 19.6 only); 0 keeps them forever. It is applied
	// when the cdrs table is created.
	CDRRetentionDays int
	// PseudonymizeCallees replaces callee numbers in stored CDRs by
	// Pseudonymize(PseudonymKey, callee).
	PseudonymizeCallees bool
	// PseudonymKey is the HMAC key for PseudonymizeCallees, at least 16
	// bytes, read by the caller from a key file or the environment. Keep it
	// stable: a new key gives every number a new pseudonym.
	PseudonymKey []byte

	// MaxRows is how many rows (all tables together) the Sink gathers
	// from concurrent writers before it inserts them.
	MaxRows int
	// FlushInterval is the longest the Sink waits for more rows after the
	// first pending write before it inserts what it has.
	FlushInterval time.Duration
	// FlushWorkers is how many batches may be inserted at once. Writers
	// wait while all are busy, which bounds the Sink's memory to about
	// (FlushWorkers+1) × MaxRows rows.
	FlushWorkers int
	// RetryInitial and RetryMax bound the exponential backoff between
	// attempts at a transient failure.
	RetryInitial time.Duration
	RetryMax     time.Duration

	// DialTimeout bounds connecting; ReadTimeout bounds waiting for the
	// server's answer to one read.
	DialTimeout time.Duration
	ReadTimeout time.Duration
}

var identifierRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// withDefaults returns o with the zero values replaced by defaults. The
// DSN must parse (Validate checks it first).
func (o Options) withDefaults() Options {
	if o.Database == "" {
		if u, err := url.Parse(o.DSN); err == nil {
			o.Database = strings.Trim(u.Path, "/")
		}
		if o.Database == "" {
			o.Database = DefaultDatabase
		}
	}
	if o.MaxRows == 0 {
		o.MaxRows = DefaultMaxRows
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.FlushWorkers == 0 {
		o.FlushWorkers = DefaultFlushWorkers
	}
	if o.RetryInitial == 0 {
		o.RetryInitial = DefaultRetryInitial
	}
	if o.RetryMax == 0 {
		o.RetryMax = DefaultRetryMax
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	return o
}

// Validate checks the options (after defaults). Its messages name the
// field and the bad value; secrets are never included.
func (o Options) Validate() error {
	if o.DSN == "" {
		return fmt.Errorf("clickhouse dsn is empty: want clickhouse://host:9000/database")
	}
	u, err := url.Parse(o.DSN)
	if err != nil {
		return fmt.Errorf("clickhouse dsn %q does not parse: want clickhouse://host:9000/database", redactDSN(o.DSN))
	}
	switch u.Scheme {
	case "clickhouse", "tcp":
	default:
		return fmt.Errorf("clickhouse dsn %q has scheme %q: want clickhouse:// (native protocol; http does not work with ClickHouse 18.x)",
			redactDSN(o.DSN), u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("clickhouse dsn %q has no host: want clickhouse://host:9000/database", redactDSN(o.DSN))
	}
	if _, err := ch.ParseDSN(o.DSN); err != nil {
		return fmt.Errorf("clickhouse dsn %q: %v", redactDSN(o.DSN), err)
	}
	d := o.withDefaults()
	if !identifierRE.MatchString(d.Database) || len(d.Database) > maxIdentifierLen {
		return fmt.Errorf("clickhouse database %q must be an identifier ([A-Za-z_][A-Za-z0-9_]*, at most %d characters)", d.Database, maxIdentifierLen)
	}
	if d.Cluster != "" && (!identifierRE.MatchString(d.Cluster) || len(d.Cluster) > maxIdentifierLen) {
		return fmt.Errorf("clickhouse cluster %q must be an identifier ([A-Za-z_][A-Za-z0-9_]*, at most %d characters)", d.Cluster, maxIdentifierLen)
	}
	switch {
	case d.CDRRetentionDays < 0:
		return fmt.Errorf("clickhouse cdr_retention_days %d must be 0 (keep forever) or positive", d.CDRRetentionDays)
	case d.CDRRetentionDays > 100*365:
		return fmt.Errorf("clickhouse cdr_retention_days %d must be at most %d", d.CDRRetentionDays, 100*365)
	case d.PseudonymizeCallees && len(d.PseudonymKey) < minPseudonymKeyLen:
		return fmt.Errorf("clickhouse pseudonym key is %d bytes: pseudonymize_callees needs at least %d", len(d.PseudonymKey), minPseudonymKeyLen)
	case d.MaxRows < 1:
		return fmt.Errorf("clickhouse max_rows %d must be at least 1", d.MaxRows)
	case d.FlushInterval < 0:
		return fmt.Errorf("clickhouse flush_interval %v must be positive", d.FlushInterval)
	case d.FlushWorkers < 1 || d.FlushWorkers > 64:
		return fmt.Errorf("clickhouse flush_workers %d must be between 1 and 64", d.FlushWorkers)
	case d.RetryInitial < 0:
		return fmt.Errorf("clickhouse retry_initial %v must be positive", d.RetryInitial)
	case d.RetryMax < d.RetryInitial:
		return fmt.Errorf("clickhouse retry_max %v must not be lower than retry_initial %v", d.RetryMax, d.RetryInitial)
	case d.DialTimeout < 0:
		return fmt.Errorf("clickhouse dial_timeout %v must be positive", d.DialTimeout)
	case d.ReadTimeout < 0:
		return fmt.Errorf("clickhouse read_timeout %v must be positive", d.ReadTimeout)
	}
	return nil
}

// String describes the options for logs, with the password, the TLS
// settings and the pseudonym key redacted.
func (o Options) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dsn=%s", redactDSN(o.DSN))
	if o.Username != "" {
		fmt.Fprintf(&b, " username=%s", o.Username)
	}
	if o.Password != "" {
		b.WriteString(" password=[REDACTED]")
	}
	if o.TLS != nil {
		b.WriteString(" tls=on")
	}
	fmt.Fprintf(&b, " database=%s", o.Database)
	if o.Cluster != "" {
		fmt.Fprintf(&b, " cluster=%s", o.Cluster)
	}
	fmt.Fprintf(&b, " store_cdrs=%t cdr_retention_days=%d pseudonymize_callees=%t",
		o.StoreCDRs, o.CDRRetentionDays, o.PseudonymizeCallees)
	if len(o.PseudonymKey) > 0 {
		fmt.Fprintf(&b, " pseudonym_key=[REDACTED %d bytes]", len(o.PseudonymKey))
	}
	fmt.Fprintf(&b, " max_rows=%d flush_interval=%v flush_workers=%d retry=%v..%v",
		o.MaxRows, o.FlushInterval, o.FlushWorkers, o.RetryInitial, o.RetryMax)
	return b.String()
}

// GoString redacts like String, so %#v does not print secrets either.
func (o Options) GoString() string { return "clickhouse.Options{" + o.String() + "}" }

// redactDSN hides the password in a DSN's user info and any query
// parameter that looks like a secret.
func redactDSN(dsn string) string {
	if dsn == "" {
		return ""
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "[unparsable dsn]"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		}
	}
	q := u.Query()
	changed := false
	for k := range q {
		lk := strings.ToLower(k)
		if strings.Contains(lk, "pass") || strings.Contains(lk, "secret") || strings.Contains(lk, "token") || strings.Contains(lk, "key") {
			q.Set(k, "REDACTED")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}
