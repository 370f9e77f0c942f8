// Package clickhouse holds cdrguard's ClickHouse schema as embedded files:
// the versioned migrations that create the tables cdrguard writes, and the
// analysts' query pack. It uses the standard library only; rendering and
// applying the migrations is pipeline/clickhouse's job.
//
// # Migrations
//
// The files migrations/NNN_name.sql are text/template files, applied in
// the order of NNN (001 up) and recorded in the cdrguard_migrations table
// (Bootstrap creates it). A migration holds one or more statements; a
// semicolon at the end of a line ends a statement (so no line of a
// comment may end with one), and whole-line "--" comments are dropped.
// Every statement must be safe to run twice (CREATE … IF NOT EXISTS,
// addColumn), because a crash between applying a migration and recording
// it replays it. A released migration is never edited: a change is a new,
// higher-numbered file.
//
// The templates see these fields:
//
//	.Database          database name (validated identifier)
//	.Cluster           cluster name, "" for a single server
//	.CDRRetentionDays  days of raw CDRs to keep, 0 = forever
//	.LowCardinality    server has production LowCardinality (>= 19.3)
//	.Codecs            server has column CODECs (>= 19.1)
//	.TTL               server has table TTL (>= 19.6)
//	.DateTime64        server has DateTime64 (>= 20.1)
//	.AddColumnIfNotExists  ALTER … ADD COLUMN IF NOT EXISTS (>= 19.1)
//
// and these functions:
//
//	{{onCluster}}              " ON CLUSTER <cluster>" or ""
//	{{lc}}                     LowCardinality(String), or String on old servers
//	{{codec "Delta, ZSTD(1)"}} " CODEC(Delta, ZSTD(1))", or "" on old servers
//	{{engine "ReplacingMergeTree" "alerts" "version"}}
//	    ReplacingMergeTree(version), or on a cluster
//	    ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/alerts', '{replica}', version)
//	{{sharedEngine …}}         like engine, for small tables every node of
//	    the cluster holds in full (one replica set, no {shard} in the path)
//	{{addColumn "alerts" "x UInt32 DEFAULT 0"}}
//	    ALTER TABLE <db>.alerts [ON CLUSTER …] ADD COLUMN IF NOT EXISTS x …
//	    (without IF NOT EXISTS before 19.1; the runner then tolerates a
//	    column that already exists)
//
// # Queries
//
// Queries/*.sql are the analysts' query pack. Each file starts with a
// comment block saying what it answers, its parameters and an example.
// They run unchanged on ClickHouse 18.16 and on current releases, in the
// database cdrguard writes to (clickhouse-client --database …).
package clickhouse

import "embed"

// Migrations holds the migration templates, migrations/NNN_name.sql.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Bootstrap is the template that creates the database and the
// cdrguard_migrations table before any migration runs. It sees the same
// fields and functions as the migrations.
//
//go:embed bootstrap.sql
var Bootstrap string

// Queries holds the analysts' query pack, queries/*.sql.
//
//go:embed queries/*.sql
var Queries embed.FS
