-- Alerts by rule over time.
--
-- Answers: how many alerts each rule raised per hour, on how many distinct
-- subjects, and how many of them asked for suspension, over the week
-- before t_now. Useful to spot a rule that suddenly fires a lot (an attack,
-- or a bad threshold change).
--
-- Parameters:
--   t_now, 7 * 86400   the period (default: the last 7 days)
--
-- Example:
--   clickhouse-client --database cdrguard --queries-file alerts_by_rule_hourly.sql
--   hour                 rule         alerts  subjects  suspend  critical
--   2026-11-26 13:00:00  short_burst  14      9         3        5

WITH now() AS t_now
SELECT
    toStartOfHour(detected_at) AS hour,
    rule,
    count() AS alerts,
    uniqExact(subject_kind, subject) AS subjects,
    countIf(action = 'suspend') AS suspend,
    countIf(severity = 'critical') AS critical
FROM alerts FINAL
WHERE detected_at > t_now - 7 * 86400 AND detected_at <= t_now
GROUP BY hour, rule
ORDER BY hour, rule
