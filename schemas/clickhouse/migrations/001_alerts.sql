-- alerts: one row per detection (schemas.Alert), one column per alert
-- field and per metric. alert_id is a hash of rule, subject, severity and
-- detection time, so the sorting key below gives every copy of an alert
-- the same key and ReplacingMergeTree keeps one of them: replays and
-- retried inserts never duplicate what analysts see (read with FINAL).
-- Ordered for the analysts' look-ups by subject; partitioned by month.

CREATE TABLE IF NOT EXISTS {{.Database}}.alerts{{onCluster}}
(
    alert_id            String,
    rule                {{lc}},
    severity            Enum8('info' = 1, 'warning' = 2, 'critical' = 3),
    action              {{lc}},
    subject_kind        {{lc}},
    subject             String,
    window_start        DateTime('UTC'){{codec "Delta, ZSTD(1)"}},
    window_end          DateTime('UTC'){{codec "Delta, ZSTD(1)"}},
    detected_at         DateTime('UTC'){{codec "Delta, ZSTD(1)"}},
    score               Float64,
    reason              String{{codec "ZSTD(3)"}},
    caller_ids          Array(String){{codec "ZSTD(3)"}},
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
ENGINE = {{engine "ReplacingMergeTree" "alerts" ""}}
PARTITION BY toYYYYMM(detected_at)
ORDER BY (subject_kind, subject, detected_at, alert_id);
