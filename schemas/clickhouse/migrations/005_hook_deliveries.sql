-- hook_deliveries: one row per suspension webhook attempt, and per
-- decision not to send (shadow mode, protected number, allowlist,
-- duplicate, held, rejected). Append-only: a request's history is its
-- rows in time order. request_id is the webhook-id receivers see.
-- outcome is delivered, retry, queued, parked, held, shadow,
-- blocked_protected, blocked_allowlist, duplicate or rejected; mode is
-- enforce or shadow. body is what was sent (or in shadow mode what would
-- have been sent), empty for rows without an attempt.

CREATE TABLE IF NOT EXISTS {{.Database}}.hook_deliveries{{onCluster}}
(
    time          DateTime('UTC'){{codec "Delta, ZSTD(1)"}},
    request_id    String,
    alert_id      String,
    endpoint      {{lc}},
    action        {{lc}},
    subject_kind  {{lc}},
    subject       String,
    rule          {{lc}},
    attempt       UInt16,
    status_code   UInt16,
    latency_ms    Float64,
    error         String{{codec "ZSTD(3)"}},
    outcome       {{lc}},
    mode          {{lc}},
    next_attempt  DateTime('UTC'),
    body          String{{codec "ZSTD(3)"}}
)
ENGINE = {{engine "MergeTree" "hook_deliveries" ""}}
PARTITION BY toYYYYMM(time)
ORDER BY (endpoint, time, request_id);
