-- Repeat victims.
--
-- Answers: which callees were called again and again by flagged callers
-- (callers with an alert in the period), or refused many calls from
-- anyone: the subscribers a robo-dialer keeps harassing. A refused call
-- is rejected, busy, or answered with less than short_s seconds of talk.
--
-- Needs raw CDRs: the cdrs table is filled only when cdrguard runs with
-- store_cdrs on, and holds the retention period's calls. With
-- pseudonymize_callees on, callee is a pseudonym (compute a number's
-- pseudonym with the key to look it up).
--
-- Parameters:
--   t_now, 86400     the period (default: the last day; set all three places)
--   short_s          the short-call threshold in seconds (10, as the detectors' default)
--   flagged_calls >= 3, refused >= 5   what counts as "repeatedly"
--   LIMIT            how many callees to list (100)
--
-- Example:
--   clickhouse-client --database cdrguard --queries-file repeat_victims.sql
--   callee        calls  callers  flagged_calls  flagged_callers  refused  first_call           last_call
--   +15550200042  9      2        8              1                7        2026-11-26 08:01:12  2026-11-26 16:40:03

WITH now() AS t_now, 10 AS short_s
SELECT
    callee,
    count() AS calls,
    uniqExact(caller) AS callers,
    countIf(caller IN
    (
        WITH now() AS t_now
        SELECT subject FROM alerts
        WHERE subject_kind = 'caller' AND detected_at > t_now - 86400 AND detected_at <= t_now
    )) AS flagged_calls,
    uniqExactIf(caller, caller IN
    (
        WITH now() AS t_now
        SELECT subject FROM alerts
        WHERE subject_kind = 'caller' AND detected_at > t_now - 86400 AND detected_at <= t_now
    )) AS flagged_callers,
    countIf(disposition IN ('rejected', 'busy') OR (disposition = 'answered' AND duration_s < short_s)) AS refused,
    min(start_time) AS first_call,
    max(start_time) AS last_call
FROM cdrs FINAL
WHERE start_time > t_now - 86400 AND start_time <= t_now
GROUP BY callee
HAVING flagged_calls >= 3 OR refused >= 5
ORDER BY flagged_calls DESC, refused DESC, callee
LIMIT 100
