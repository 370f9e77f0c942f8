-- Alerts on allowlisted entries (false-positive review).
--
-- Answers: which alerts in the week before t_now were raised on numbers,
-- prefixes or sources that the current rules file allowlists, and which
-- entry matched. An allowlisted subject should raise none: a row here is
-- either an alert raised before the entry was allowlisted, or a sign the
-- allowlist does not match the way numbers are written. The allowlist
-- table holds the rules file cdrguard last started with.
--
-- A number or source entry matches a subject equal to it; a prefix entry
-- matches subjects that start with it (startsWith).
--
-- Parameters:
--   t_now, 7 * 86400   the period (default: the last 7 days)
--
-- Example:
--   clickhouse-client --database cdrguard --queries-file allowlisted_alerts.sql
--   detected_at          rule         subject_kind  subject       severity  score  entry     kind    source_file
--   2026-11-26 09:12:44  short_burst  caller        +18005550123  warning   61     +1800555  prefix  /etc/cdrguard/rules.yaml

SELECT detected_at, rule, subject_kind, subject, severity, score, alert_id, entry, kind, source_file
FROM
(
    WITH now() AS t_now
    SELECT detected_at, toString(rule) AS rule, toString(subject_kind) AS subject_kind, subject,
           toString(severity) AS severity, score, alert_id
    FROM alerts FINAL
    WHERE detected_at > t_now - 7 * 86400 AND detected_at <= t_now
) AS a
CROSS JOIN
(
    SELECT entry, toString(kind) AS kind, source_file
    FROM allowlist FINAL
) AS l
WHERE (kind = 'prefix' AND subject_kind = 'caller' AND startsWith(subject, entry))
   OR (kind = 'number' AND subject_kind = 'caller' AND subject = entry)
   OR (kind = 'source' AND subject_kind != 'caller' AND subject = entry)
ORDER BY detected_at, subject, entry
