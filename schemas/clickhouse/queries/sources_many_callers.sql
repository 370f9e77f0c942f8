-- Sources with many caller IDs.
--
-- Answers: which trunks, IMEIs, IMSIs and source IPs carried the most
-- distinct caller IDs (a pool of spoofed or rotated numbers) in the day
-- before t_now, from their alerts. caller_ids lists the caller IDs seen in
-- the window of the source's alert with the most distinct callers (at
-- most 500 per alert).
--
-- Parameters:
--   t_now, 86400  the period (default: the last day)
--   LIMIT         how many sources to list (50)
--
-- Example:
--   clickhouse-client --database cdrguard --queries-file sources_many_callers.sql
--   subject_kind  subject       alerts  max_distinct_callers  max_calls  min_calls_per_caller  caller_ids
--   trunk         trunk-17      4       312                   655        2.1                   ['+15550300001', …]

WITH now() AS t_now
SELECT
    subject_kind,
    subject,
    count() AS alerts,
    max(distinct_callers) AS max_distinct_callers,
    max(calls) AS max_calls,
    min(calls_per_caller) AS min_calls_per_caller,
    argMax(caller_ids, distinct_callers) AS caller_ids,
    min(detected_at) AS first_alert,
    max(detected_at) AS last_alert
FROM alerts FINAL
WHERE subject_kind != 'caller' AND detected_at > t_now - 86400 AND detected_at <= t_now
GROUP BY subject_kind, subject
ORDER BY max_distinct_callers DESC, alerts DESC, subject_kind, subject
LIMIT 50
