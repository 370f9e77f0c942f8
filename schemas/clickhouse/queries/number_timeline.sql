-- One number's timeline.
--
-- Answers: what did this caller do, minute by minute, and when did it
-- raise alerts? Rows are minute aggregates (kind = 'minute', from
-- caller_minute) and alerts (kind = 'alert') for one caller, ordered by
-- time; an alert row carries its window's figures, rule, severity, score
-- and reason. Minute rows exist once the caller's day reached the
-- detectors' caller floor.
--
-- Parameters:
--   '__CALLER__'  the number, in E.164 as stored (e.g. '+15550100001'):
--                 replace both occurrences
--   t_now, 86400  the period: the day before t_now (default now(); set
--                 both places)
--
-- Example:
--   sed "s/__CALLER__/+15550100001/g" number_timeline.sql | clickhouse-client --database cdrguard
--   t                    kind    calls  answered  short_calls  rejected  talk_s  distinct_callees  rule         severity  score  reason
--   2026-11-26 14:02:00  minute  61     1         61           40        3       61                                       0
--   2026-11-26 14:02:41  alert   120    2         119          80        9       118               short_burst  critical  119    +15550100001 made 120 calls …

SELECT t, kind, calls, answered, short_calls, rejected, talk_s, distinct_callees, rule, severity, score, reason
FROM
(
    WITH now() AS t_now
    SELECT
        minute AS t,
        'minute' AS kind,
        toInt64(calls) AS calls,
        toInt64(answered) AS answered,
        toInt64(short_calls) AS short_calls,
        toInt64(rejected) AS rejected,
        toInt64(talk_s) AS talk_s,
        toInt64(distinct_callees) AS distinct_callees,
        '' AS rule,
        '' AS severity,
        toFloat64(0) AS score,
        '' AS reason
    FROM caller_minute FINAL
    WHERE caller = '__CALLER__' AND minute > t_now - 86400 AND minute <= t_now

    UNION ALL

    WITH now() AS t_now
    SELECT
        detected_at AS t,
        'alert' AS kind,
        calls,
        answered,
        short_calls,
        rejected,
        talk_s,
        distinct_callees,
        toString(rule) AS rule,
        toString(severity) AS severity,
        score,
        reason
    FROM alerts FINAL
    WHERE subject_kind = 'caller' AND subject = '__CALLER__' AND detected_at > t_now - 86400 AND detected_at <= t_now
)
ORDER BY t, kind DESC
