-- Top offenders in the last hour.
--
-- Answers: which numbers and sources raised the most serious alerts in the
-- hour before t_now, with the rules they hit and their worst figures.
-- Sorted by highest score, then by number of alerts.
--
-- Parameters:
--   t_now   the end of the hour looked at (default now(); for a past
--           hour write e.g. toDateTime('2026-11-26 14:00:00', 'UTC'))
--   LIMIT   how many subjects to list (50)
--
-- Example:
--   clickhouse-client --database cdrguard --queries-file top_offenders_last_hour.sql
--   subject_kind  subject       alerts  rules                       worst_severity  max_score ...
--   caller        +15550100001  3       ['short_burst','wardialer'] critical        912.5

WITH now() AS t_now
SELECT
    subject_kind,
    subject,
    count() AS alerts,
    arraySort(groupUniqArray(rule)) AS rules,
    max(severity) AS worst_severity,
    max(score) AS max_score,
    max(calls) AS max_calls,
    max(short_calls) AS max_short_calls,
    max(distinct_callees) AS max_distinct_callees,
    max(distinct_callers) AS max_distinct_callers,
    min(detected_at) AS first_alert,
    max(detected_at) AS last_alert
FROM alerts FINAL
WHERE detected_at > t_now - 3600 AND detected_at <= t_now
GROUP BY subject_kind, subject
ORDER BY max_score DESC, alerts DESC, subject_kind, subject
LIMIT 50
