-- Per-caller and network aggregates (detectors.CallerMinute, CallerPeriod
-- for hours and days, NetworkMinute). Rows are re-emitted identically on replays,
-- so every table replaces rows with the same key. caller_hourly and
-- caller_daily rows are re-emitted with a rising version as a period's
-- figures change: the highest version is current (read with FINAL).

CREATE TABLE IF NOT EXISTS {{.Database}}.caller_minute{{onCluster}}
(
    caller           String,
    minute           DateTime('UTC'){{codec "Delta, ZSTD(1)"}},
    calls            UInt32,
    answered         UInt32,
    short_calls      UInt32,
    rejected         UInt32,
    talk_s           UInt32,
    distinct_callees UInt32
)
ENGINE = {{engine "ReplacingMergeTree" "caller_minute" ""}}
PARTITION BY toYYYYMM(minute)
ORDER BY (caller, minute);

CREATE TABLE IF NOT EXISTS {{.Database}}.caller_hourly{{onCluster}}
(
    caller           String,
    hour             DateTime('UTC'){{codec "Delta, ZSTD(1)"}},
    calls            UInt32,
    answered         UInt32,
    short_calls      UInt32,
    rejected         UInt32,
    talk_s           UInt32,
    distinct_callees UInt32,
    version          UInt64
)
ENGINE = {{engine "ReplacingMergeTree" "caller_hourly" "version"}}
PARTITION BY toYYYYMM(hour)
ORDER BY (caller, hour);

CREATE TABLE IF NOT EXISTS {{.Database}}.caller_daily{{onCluster}}
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
ENGINE = {{engine "ReplacingMergeTree" "caller_daily" "version"}}
PARTITION BY toYYYYMM(day)
ORDER BY (caller, day);

-- Each input partition's engine counts the traffic it sees, so the
-- network's total for a minute is the sum over source_partition.
CREATE TABLE IF NOT EXISTS {{.Database}}.network_minute{{onCluster}}
(
    minute           DateTime('UTC'){{codec "Delta, ZSTD(1)"}},
    source_partition Int32,
    calls            UInt64,
    answered         UInt64,
    short_calls      UInt64,
    rejected         UInt64,
    talk_s           UInt64
)
ENGINE = {{engine "ReplacingMergeTree" "network_minute" ""}}
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, source_partition);
