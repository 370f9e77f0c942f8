-- cdrs: raw call-detail records, written only when store_cdrs is on.
-- Deduplicated by call: records without a call_id get a synthetic one, a
-- hash of their content (call_id_synthetic = 1), so a replayed record
-- collapses onto its first copy. The sorting key holds caller and
-- start_time first for look-ups, then call_id. With callee
-- pseudonymisation on, callee holds hex(HMAC-SHA256(key, number))[:32]
-- instead of the number. Old rows expire after the retention period where
-- the server has TTL (>= 19.6).

CREATE TABLE IF NOT EXISTS {{.Database}}.cdrs{{onCluster}}
(
    call_id           String,
    call_id_synthetic UInt8,
    caller            String,
    callee            String,
    start_time        {{if .DateTime64}}DateTime64(3, 'UTC'){{else}}DateTime('UTC'){{end}}{{codec "Delta, ZSTD(1)"}},
    answer_time       Nullable({{if .DateTime64}}DateTime64(3, 'UTC'){{else}}DateTime('UTC'){{end}}),
    end_time          Nullable({{if .DateTime64}}DateTime64(3, 'UTC'){{else}}DateTime('UTC'){{end}}),
    duration_s        UInt32,
    disposition       {{lc}},
    attestation       {{lc}},
    cause_code        UInt16,
    trunk             {{lc}},
    source_ip         String,
    imsi              String,
    imei              String,
    cell_id           String,
    inserted_at       DateTime('UTC') DEFAULT now()
)
ENGINE = {{engine "ReplacingMergeTree" "cdrs" ""}}
PARTITION BY toDate(start_time)
ORDER BY (caller, start_time, call_id){{if and .TTL (gt .CDRRetentionDays 0)}}
TTL toDate(start_time) + INTERVAL {{.CDRRetentionDays}} DAY{{end}};
