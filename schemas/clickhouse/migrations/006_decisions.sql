-- decisions: what people (and the dispatcher on their behalf) decided
-- about a subject, append-only: a subject's current state is derived from
-- its rows in time order, never updated in place.
-- action is confirm, false_positive, release, acknowledge, approve,
-- reject, redeliver or expire; source is console, api, cli or
-- dispatcher. alert_id is empty for decisions about a subject as a whole;
-- request_id names the webhook request an approve, reject or redeliver
-- was about. decision_id is unique per decision (a retried insert of the
-- same decision keeps its id).

CREATE TABLE IF NOT EXISTS {{.Database}}.decisions{{onCluster}}
(
    time          DateTime('UTC'){{codec "Delta, ZSTD(1)"}},
    decision_id   String,
    subject_kind  {{lc}},
    subject       String,
    action        {{lc}},
    alert_id      String,
    request_id    String,
    by            String,
    reason        String{{codec "ZSTD(3)"}},
    source        {{lc}}
)
ENGINE = {{engine "MergeTree" "decisions" ""}}
PARTITION BY toYYYYMM(time)
ORDER BY (subject, time, decision_id);
