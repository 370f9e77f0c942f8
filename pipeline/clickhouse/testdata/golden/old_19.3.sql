-- bootstrap
CREATE DATABASE IF NOT EXISTS cdrguard;

CREATE TABLE IF NOT EXISTS cdrguard.cdrguard_migrations
(
    version        UInt32,
    name           String,
    applied_at     DateTime('UTC'),
    server_version String
)
ENGINE = ReplacingMergeTree()
ORDER BY version;

-- migration 1: 001_alerts
CREATE TABLE IF NOT EXISTS cdrguard.alerts
(
    alert_id            String,
    rule                LowCardinality(String),
    severity            Enum8('info' = 1, 'warning' = 2, 'critical' = 3),
    action              LowCardinality(String),
    subject_kind        LowCardinality(String),
    subject             String,
    window_start        DateTime('UTC') CODEC(Delta, ZSTD(1)),
    window_end          DateTime('UTC') CODEC(Delta, ZSTD(1)),
    detected_at         DateTime('UTC') CODEC(Delta, ZSTD(1)),
    score               Float64,
    reason              String CODEC(ZSTD(3)),
    caller_ids          Array(String) CODEC(ZSTD(3)),
    calls               Int64,
    answered            Int64,
    short_calls         Int64,
    rejected            Int64,
    talk_s              Int64,
    answer_ratio        Float64,
    short_ratio         Float64,
    mean_talk_s         Float64,
    distinct_callees    Int64,
    max_callee_calls    Int64,
    max_callee_rejected Int64,
    max_seq_run         Int64,
    distinct_callers    Int64,
    calls_per_caller    Float64,
    light_calls         Int64,
    light_short_ratio   Float64,
    window_s            Int64,
    inserted_at         DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(detected_at)
ORDER BY (subject_kind, subject, detected_at, alert_id);

-- migration 2: 002_aggregates
CREATE TABLE IF NOT EXISTS cdrguard.caller_minute
(
    caller           String,
    minute           DateTime('UTC') CODEC(Delta, ZSTD(1)),
    calls            UInt32,
    answered         UInt32,
    short_calls      UInt32,
    rejected         UInt32,
    talk_s           UInt32,
    distinct_callees UInt32
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(minute)
ORDER BY (caller, minute);

CREATE TABLE IF NOT EXISTS cdrguard.caller_hourly
(
    caller           String,
    hour             DateTime('UTC') CODEC(Delta, ZSTD(1)),
    calls            UInt32,
    answered         UInt32,
    short_calls      UInt32,
    rejected         UInt32,
    talk_s           UInt32,
    distinct_callees UInt32,
    version          UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(hour)
ORDER BY (caller, hour);

CREATE TABLE IF NOT EXISTS cdrguard.caller_daily
(
    caller           String,
    day              Date,
    calls            UInt32,
    answered         UInt32,
    short_calls      UInt32,
    rejected         UInt32,
    talk_s           UInt32,
    distinct_callees UInt32,
    version          UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(day)
ORDER BY (caller, day);

CREATE TABLE IF NOT EXISTS cdrguard.network_minute
(
    minute           DateTime('UTC') CODEC(Delta, ZSTD(1)),
    source_partition Int32,
    calls            UInt64,
    answered         UInt64,
    short_calls      UInt64,
    rejected         UInt64,
    talk_s           UInt64
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, source_partition);

-- migration 3: 003_cdrs
CREATE TABLE IF NOT EXISTS cdrguard.cdrs
(
    call_id           String,
    call_id_synthetic UInt8,
    caller            String,
    callee            String,
    start_time        DateTime('UTC') CODEC(Delta, ZSTD(1)),
    answer_time       Nullable(DateTime('UTC')),
    end_time          Nullable(DateTime('UTC')),
    duration_s        UInt32,
    disposition       LowCardinality(String),
    attestation       LowCardinality(String),
    cause_code        UInt16,
    trunk             LowCardinality(String),
    source_ip         String,
    imsi              String,
    imei              String,
    cell_id           String,
    inserted_at       DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree()
PARTITION BY toDate(start_time)
ORDER BY (caller, start_time, call_id);

-- migration 4: 004_allowlist
CREATE TABLE IF NOT EXISTS cdrguard.allowlist
(
    entry       String,
    kind        LowCardinality(String),
    source_file String,
    loaded_at   DateTime('UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY (kind, entry);

-- migration 5: 005_hook_deliveries
CREATE TABLE IF NOT EXISTS cdrguard.hook_deliveries
(
    time          DateTime('UTC') CODEC(Delta, ZSTD(1)),
    request_id    String,
    alert_id      String,
    endpoint      LowCardinality(String),
    action        LowCardinality(String),
    subject_kind  LowCardinality(String),
    subject       String,
    rule          LowCardinality(String),
    attempt       UInt16,
    status_code   UInt16,
    latency_ms    Float64,
    error         String CODEC(ZSTD(3)),
    outcome       LowCardinality(String),
    mode          LowCardinality(String),
    next_attempt  DateTime('UTC'),
    body          String CODEC(ZSTD(3))
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(time)
ORDER BY (endpoint, time, request_id);

-- migration 6: 006_decisions
CREATE TABLE IF NOT EXISTS cdrguard.decisions
(
    time          DateTime('UTC') CODEC(Delta, ZSTD(1)),
    decision_id   String,
    subject_kind  LowCardinality(String),
    subject       String,
    action        LowCardinality(String),
    alert_id      String,
    request_id    String,
    by            String,
    reason        String CODEC(ZSTD(3)),
    source        LowCardinality(String)
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(time)
ORDER BY (subject, time, decision_id);

-- migration 7: 007_alerts_emitted_at
ALTER TABLE cdrguard.alerts ADD COLUMN IF NOT EXISTS emitted_at DateTime('UTC');

