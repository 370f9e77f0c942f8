package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/zap"
)

// Client is a connection pool to one ClickHouse server (or cluster node)
// over the native protocol with LZ4 compression. It is safe for
// concurrent use.
type Client struct {
	conn     driver.Conn
	opts     Options // with defaults
	log      *zap.Logger
	version  Version
	features Features
}

// Open connects, reads the server's version and maps it to Features. It
// fails if the server cannot be reached. The database need not exist yet:
// every statement names its tables with the database (Migrate creates it).
// log may be nil.
func Open(ctx context.Context, opts Options, log *zap.Logger) (*Client, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	chOpts, err := ch.ParseDSN(opts.DSN)
	if err != nil {
		return nil, fmt.Errorf("clickhouse dsn %q: %w", redactDSN(opts.DSN), err)
	}
	chOpts.Protocol = ch.Native
	chOpts.Auth.Database = "" // the user's default; statements name the database
	if opts.Username != "" {
		chOpts.Auth.Username = opts.Username
	}
	if opts.Password != "" {
		chOpts.Auth.Password = opts.Password
	}
	if opts.TLS != nil {
		chOpts.TLS = opts.TLS
	}
	chOpts.Compression = &ch.Compression{Method: ch.CompressionLZ4}
	chOpts.DialTimeout = opts.DialTimeout
	chOpts.ReadTimeout = opts.ReadTimeout
	chOpts.MaxOpenConns = opts.FlushWorkers + 4
	chOpts.MaxIdleConns = opts.FlushWorkers + 4
	conn, err := ch.Open(chOpts)
	if err != nil {
		return nil, fmt.Errorf("cannot open clickhouse %s: %w", redactDSN(opts.DSN), err)
	}
	var raw string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&raw); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("cannot reach clickhouse %s: %w", redactDSN(opts.DSN), err)
	}
	v, err := ParseVersion(raw)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("clickhouse %s: %w", redactDSN(opts.DSN), err)
	}
	c := &Client{conn: conn, opts: opts, log: log, version: v, features: FeaturesFor(v)}
	log.Info("connected to clickhouse",
		zap.Stringer("options", opts),
		zap.String("server_version", v.String()),
		zap.Bool("low_cardinality", c.features.LowCardinality),
		zap.Bool("codecs", c.features.Codecs),
		zap.Bool("ttl", c.features.TTL),
		zap.Bool("datetime64", c.features.DateTime64))
	return c, nil
}

// ServerVersion is the version the server reported at Open.
func (c *Client) ServerVersion() Version { return c.version }

// Features are the server features the migrations use, from its version.
func (c *Client) Features() Features { return c.features }

// Database is the database cdrguard's tables live in.
func (c *Client) Database() string { return c.opts.Database }

// Close closes the connections. Close every Sink first.
func (c *Client) Close() error {
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("cannot close clickhouse connections: %w", err)
	}
	return nil
}

// Migrate creates the database if it is missing and applies the
// migrations the cdrguard_migrations table does not list yet, in order,
// recording each. Running it again is safe: applied migrations are
// skipped and every statement is CREATE … IF NOT EXISTS. With a Cluster,
// the statements run ON CLUSTER.
func (c *Client) Migrate(ctx context.Context) error {
	plan, err := Render(c.opts, c.version)
	if err != nil {
		return err
	}
	for _, stmt := range plan.Bootstrap {
		if err := c.conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("cannot create clickhouse database %s and its migrations table: %w (statement: %s)",
				c.opts.Database, err, firstLine(stmt))
		}
	}
	applied, err := c.AppliedMigrations(ctx)
	if err != nil {
		return err
	}
	for _, m := range plan.Migrations {
		if slices.Contains(applied, m.Version) {
			c.log.Debug("clickhouse migration already applied", zap.String("migration", m.Name))
			continue
		}
		start := time.Now()
		for i, stmt := range m.Statements {
			if err := c.execMigrationStatement(ctx, stmt); err != nil {
				return fmt.Errorf("clickhouse migration %s, statement %d (%s): %w", m.Name, i+1, firstLine(stmt), err)
			}
		}
		if err := c.recordMigration(ctx, m); err != nil {
			return err
		}
		c.log.Info("applied clickhouse migration",
			zap.String("database", c.opts.Database), zap.String("migration", m.Name),
			zap.Int("statements", len(m.Statements)), zap.Duration("took", time.Since(start)))
	}
	return c.checkCDRRetention(ctx)
}

// execMigrationStatement runs one migration statement. On servers
// without ALTER … ADD COLUMN IF NOT EXISTS (before 19.1), a column that
// already exists counts as added, so a migration interrupted before it was
// recorded can run again.
func (c *Client) execMigrationStatement(ctx context.Context, stmt string) error {
	err := c.conn.Exec(ctx, stmt)
	var ex *ch.Exception
	if err != nil && !c.features.AddColumnIfNotExists && errors.As(err, &ex) && ex.Code == codeIllegalColumn &&
		strings.Contains(stmt, " ADD COLUMN ") && strings.Contains(ex.Message, "already exists") {
		c.log.Info("clickhouse column already exists", zap.String("statement", firstLine(stmt)))
		return nil
	}
	return err
}

// checkCDRRetention compares the cdrs table's TTL with CDRRetentionDays.
// The TTL is set when the table is created; a later change of the
// option does not rewrite the table by itself (MODIFY TTL rewrites every
// part), so Migrate logs the statement that applies it.
func (c *Client) checkCDRRetention(ctx context.Context) error {
	if !c.features.TTL {
		if c.opts.CDRRetentionDays > 0 && c.opts.StoreCDRs {
			c.log.Warn("clickhouse server has no TTL (needs 19.6 or later): raw CDRs are kept forever",
				zap.String("server_version", c.version.String()), zap.Int("cdr_retention_days", c.opts.CDRRetentionDays))
		}
		return nil
	}
	var engine string
	err := c.conn.QueryRow(ctx, "SELECT engine_full FROM system.tables WHERE database = ? AND name = 'cdrs'", c.opts.Database).Scan(&engine)
	if err != nil {
		return fmt.Errorf("cannot read the cdrs table's TTL: %w", err)
	}
	have := ttlDays(engine)
	if have == c.opts.CDRRetentionDays {
		return nil
	}
	alter := "ALTER TABLE " + c.opts.Database + ".cdrs"
	if c.opts.Cluster != "" {
		alter += " ON CLUSTER " + c.opts.Cluster
	}
	if c.opts.CDRRetentionDays == 0 {
		alter += " REMOVE TTL"
	} else {
		alter += fmt.Sprintf(" MODIFY TTL toDate(start_time) + INTERVAL %d DAY", c.opts.CDRRetentionDays)
	}
	c.log.Warn("clickhouse cdrs table keeps raw CDRs for another period than cdr_retention_days; to change it, run (it rewrites the table's parts)",
		zap.Int("table_ttl_days", have), zap.Int("cdr_retention_days", c.opts.CDRRetentionDays), zap.String("statement", alter))
	return nil
}

var ttlDaysRE = regexp.MustCompile(`TTL .*(?:toIntervalDay\((\d+)\)|INTERVAL (\d+) DAY)`)

// ttlDays reads the retention in days from a table's engine_full; 0 means
// no TTL.
func ttlDays(engineFull string) int {
	m := ttlDaysRE.FindStringSubmatch(engineFull)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1] + m[2])
	return n
}

// AppliedMigrations lists the versions the cdrguard_migrations table
// records, in ascending order.
func (c *Client) AppliedMigrations(ctx context.Context) ([]uint32, error) {
	rows, err := c.conn.Query(ctx, "SELECT DISTINCT version FROM "+c.opts.Database+".cdrguard_migrations ORDER BY version")
	if err != nil {
		return nil, fmt.Errorf("cannot read applied clickhouse migrations: %w", err)
	}
	defer rows.Close()
	var vs []uint32
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("cannot read applied clickhouse migrations: %w", err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read applied clickhouse migrations: %w", err)
	}
	return vs, nil
}

func (c *Client) recordMigration(ctx context.Context, m Migration) error {
	b, err := c.conn.PrepareBatch(ctx, "INSERT INTO "+c.opts.Database+".cdrguard_migrations (version, name, applied_at, server_version)")
	if err != nil {
		return fmt.Errorf("cannot record clickhouse migration %s: %w", m.Name, err)
	}
	defer func() { _ = b.Close() }()
	if err := b.Append(m.Version, m.Name, time.Now().UTC().Truncate(time.Second), c.version.String()); err != nil {
		return fmt.Errorf("cannot record clickhouse migration %s: %w", m.Name, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot record clickhouse migration %s: %w", m.Name, err)
	}
	return nil
}

// ReplaceAllowlist replaces the allowlist table's contents with the rules
// file's allowlist, so analysts can review alerts on allowlisted entries.
// The table is truncated and refilled: a reader may briefly see it empty.
func (c *Client) ReplaceAllowlist(ctx context.Context, numbers, prefixes, sources []string, sourceFile string) error {
	table := c.opts.Database + ".allowlist"
	onCluster := ""
	if c.opts.Cluster != "" {
		onCluster = " ON CLUSTER " + c.opts.Cluster
	}
	if err := c.conn.Exec(ctx, "TRUNCATE TABLE "+table+onCluster); err != nil {
		return c.wrapWriteErr(table, fmt.Errorf("cannot truncate: %w", err))
	}
	n := len(numbers) + len(prefixes) + len(sources)
	if n == 0 {
		return nil
	}
	entries := make([]string, 0, n)
	kinds := make([]string, 0, n)
	for _, l := range [...]struct {
		kind    string
		entries []string
	}{{"number", numbers}, {"prefix", prefixes}, {"source", sources}} {
		for _, e := range l.entries {
			entries = append(entries, e)
			kinds = append(kinds, l.kind)
		}
	}
	files := make([]string, n)
	loaded := make([]time.Time, n)
	now := time.Now().UTC().Truncate(time.Second)
	for i := range files {
		files[i], loaded[i] = sourceFile, now
	}
	b, err := c.conn.PrepareBatch(ctx, "INSERT INTO "+table+" (entry, kind, source_file, loaded_at)")
	if err != nil {
		return c.wrapWriteErr(table, err)
	}
	defer func() { _ = b.Close() }()
	for i, col := range []any{entries, kinds, files, loaded} {
		if err := b.Column(i).Append(col); err != nil {
			return c.wrapWriteErr(table, err)
		}
	}
	if err := b.Send(); err != nil {
		return c.wrapWriteErr(table, err)
	}
	c.log.Info("replaced clickhouse allowlist", zap.String("source_file", sourceFile),
		zap.Int("numbers", len(numbers)), zap.Int("prefixes", len(prefixes)), zap.Int("sources", len(sources)))
	return nil
}

// wrapWriteErr says which table a write failed on, and to migrate when
// the failure is a schema mismatch.
func (c *Client) wrapWriteErr(table string, err error) error {
	if classify(err) == kindSchema {
		return &schemaError{table: table, err: err}
	}
	return fmt.Errorf("cannot write to clickhouse table %s: %w", table, err)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}
