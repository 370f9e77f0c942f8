// Package clickhouse writes cdrguard's alerts, aggregates and (optionally)
// raw CDRs to ClickHouse, and manages the schema they go to.
//
// Open connects over the native protocol (LZ4 compressed), reads the
// server's version and maps it to Features: the migrations
// (schemas/clickhouse) are text templates rendered for that server, so
// ClickHouse 18.16 gets plain String columns, no CODECs and no TTL, while
// current servers get LowCardinality, CODECs, TTL and DateTime64. With a
// Cluster, the DDL runs ON CLUSTER and creates Replicated*MergeTree
// tables. Client.Migrate applies what is missing and records it in
// cdrguard_migrations; Render shows the DDL without connecting.
//
// A Sink batches the Write calls of many partition workers into one
// INSERT per table and returns from Write only once ClickHouse has
// accepted the rows, so a caller may commit its Kafka offsets then.
// Transient failures are retried with exponential backoff until they
// pass; while ClickHouse is down writers wait and the Sink's memory stays
// bounded. Every table is a ReplacingMergeTree keyed so that a replayed or
// retried row replaces its first copy: read with FINAL (or after merges)
// to see each row once; caller_hourly and caller_daily keep the highest
// version.
//
// With Options.PseudonymizeCallees, callee numbers in stored CDRs are
// replaced by hex(HMAC-SHA256(key, number))[:32] (Pseudonymize): distinct
// counts and joins on callee still work, and the number cannot be read
// back without the key.
//
// What the DDL uses, by server version (from ClickHouse's changelogs; the
// 18.16 column was also checked by running the statements on 18.16.1):
//
//	feature                          since   18.16 (local)
//	LowCardinality(String)           19.3    only with allow_experimental_low_cardinality_type=1: String used
//	column CODEC(ZSTD, Delta)        19.1    syntax error: none
//	table TTL                        19.6    syntax error: CDRs kept forever
//	DateTime64(3)                    20.1    unknown type: CDR times to the second
//	ADD COLUMN IF NOT EXISTS         19.1    syntax error: duplicate column tolerated
//	WITH name AS (subquery) (CTE)    20.10   syntax error: the query pack uses none
//
// The query pack (schemas/clickhouse/queries) runs unchanged on 18.16 and
// current servers: no CTEs, WITH aliases repeated in each subquery (18.16
// does not pass them down), aliases on joined subqueries (required by
// current servers), and no non-equi JOIN (the allowlist review is a CROSS
// JOIN with a WHERE).
//
// Client and Sink are safe for concurrent use. Time values are written as
// UTC; the aggregate rows' times are event time, not wall clock.
package clickhouse
