-- Top offenders in the last day.
--
-- Answers: which callers were the worst offenders in the 24 hours before
-- t_now: flagged callers first, by their highest alert score, then the
-- unflagged ones by short calls (a courier or a call centre makes many
-- short calls too; review them, do not suspend them). Traffic comes from
-- caller_hourly FINAL (the latest version of each hour), so callers
-- appear once their day reached the detectors' caller floor
-- (caller_floor, 20 calls by default).
--
-- Parameters:
--   t_now    the end of the period (default now(); set it in both places
--            below, e.g. toDateTime('2026-11-26 00:00:00', 'UTC'))
--   LIMIT    how many callers to list (50)
--
-- Example:
--   clickhouse-client --database cdrguard --queries-file top_offenders_last_day.sql
--   caller        calls  short_calls  answered  rejected  short_ratio  answer_ratio  distinct_callees_max_hour  alerts  max_score
--   +15550100001  4210   4107         98        2877      0.976        0.023         977                        6       912.5

SELECT
    caller,
    calls,
    short_calls,
    answered,
    rejected,
    round(short_calls / calls, 3) AS short_ratio,
    round(answered / calls, 3) AS answer_ratio,
    distinct_callees_max_hour,
    alerts,
    max_score
FROM
(
    WITH now() AS t_now
    SELECT
        caller,
        sum(calls) AS calls,
        sum(short_calls) AS short_calls,
        sum(answered) AS answered,
        sum(rejected) AS rejected,
        max(distinct_callees) AS distinct_callees_max_hour
    FROM caller_hourly FINAL
    WHERE hour > t_now - 86400 AND hour <= t_now
    GROUP BY caller
) AS traffic
ANY LEFT JOIN
(
    WITH now() AS t_now
    SELECT
        subject AS caller,
        count() AS alerts,
        max(score) AS max_score
    FROM alerts FINAL
    WHERE subject_kind = 'caller' AND detected_at > t_now - 86400 AND detected_at <= t_now
    GROUP BY caller
) AS flagged USING caller
ORDER BY max_score DESC, short_calls DESC, caller
LIMIT 50
