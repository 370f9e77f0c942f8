// Package console is the fraud team's web console: a server-rendered view
// over cdrguard's ClickHouse tables (alerts, aggregates, CDRs, hook
// deliveries, decisions) and over the hook dispatcher's release API for
// the actions that change a number's state.
//
// Pages (html/template, no JavaScript; charts are SVG drawn on the server,
// styles embedded with go:embed, nothing loaded from elsewhere):
//
//	/                 the queue: open alerts by score, filters, counts by rule, bulk acknowledge
//	/subject          one number or source: alerts, chart, metrics against the rule's thresholds,
//	                  caller IDs, recent CDRs, suspension and delivery state, decisions
//	/deliveries       hook attempts, held and parked requests (approve, reject, redeliver)
//	/quality          per rule: alerts, decided, false-positive share, shadow-mode suspensions
//
// State. The console keeps none: sessions are signed cookies (every
// console process behind a load balancer needs the same session key),
// decisions are rows of ClickHouse's append-only decisions table
// (confirm and acknowledge are written by the console, source "console";
// release and false_positive by the release API), and everything shown is
// read from ClickHouse or the release API on each request. Login rate
// limits are per process.
//
// An alert is decided when a decision names it (confirm, false_positive,
// release, acknowledge), or when a decision about its subject as a whole
// (confirm, false_positive or release, which are about the number, not
// one alert) was made at or after the alert's detection.
//
// Security. Users and roles (viewer, analyst, supervisor) come from a
// users file with bcrypt hashes. Sessions are HMAC-signed, HttpOnly,
// SameSite=Strict cookies; every form carries a CSRF token bound to the
// session, and cross-origin unsafe requests are refused
// (http.CrossOriginProtection). Viewers read; analysts decide; only
// supervisors approve or reject held suspensions and redeliver parked
// ones. Session tokens, passwords and the API token are never logged.
//
// A Server is safe for concurrent use.
package console
