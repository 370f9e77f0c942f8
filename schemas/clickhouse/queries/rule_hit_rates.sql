-- Rule hit rates.
--
-- Answers: per day and rule, how many alerts were raised, on how many
-- distinct subjects, and what share of the day's active callers the
-- rule flagged. Active callers are the callers in caller_daily, that is
-- those whose day reached the detectors' caller floor (caller_floor, 20
-- calls by default); source subjects are not counted in the share.
--
-- Parameters:
--   t_now, 7 * 86400   the period (default: the last 7 days; set both places)
--
-- Example:
--   clickhouse-client --database cdrguard --queries-file rule_hit_rates.sql
--   day         rule         alerts  subjects  callers_flagged  active_callers  share_of_active_callers
--   2026-11-25  short_burst  212     37        35               18422           0.0019

SELECT
    day,
    rule,
    alerts,
    subjects,
    callers_flagged,
    active_callers,
    if(active_callers = 0, 0, round(callers_flagged / active_callers, 6)) AS share_of_active_callers
FROM
(
    WITH now() AS t_now
    SELECT
        toDate(detected_at) AS day,
        toString(rule) AS rule,
        count() AS alerts,
        uniqExact(subject_kind, subject) AS subjects,
        uniqExactIf(subject, subject_kind = 'caller') AS callers_flagged
    FROM alerts FINAL
    WHERE detected_at > t_now - 7 * 86400 AND detected_at <= t_now
    GROUP BY day, rule
) AS hits
ANY LEFT JOIN
(
    WITH now() AS t_now
    SELECT day, count() AS active_callers
    FROM caller_daily FINAL
    WHERE day >= toDate(t_now - 7 * 86400) AND day <= toDate(t_now)
    GROUP BY day
) AS active USING day
ORDER BY day, rule
