// Package hooks delivers suspension requests to the carrier's number
// suspension systems: webhooks signed per Standard Webhooks v1, built from
// the alerts whose action is suspend, with durable retries, parking,
// and the safety valves that make automatic suspension acceptable
// (allowlist recheck, protected numbers, shadow mode, a suspension
// budget that holds requests for approval, one request per subject per
// period, and a circuit breaker per endpoint that queues instead of
// dropping).
//
// # Contract
//
// Nothing is dropped. Every request of an alert ends in one of: delivered
// (2xx), queued in the retry topic with its next attempt time, parked in
// the parked topic with its last error, held for approval in the held
// topic, or recorded as not sent by a valve (shadow mode, allowlist,
// protected number, duplicate within the subject period). The alerts
// offsets are committed only once every request of the alert and of every
// earlier alert of its partition has reached one of those states.
//
// The retry, parked and held topics are compacted and keyed by
// webhook-id: a tombstone ends a request's stay there. Every dispatcher
// tails the whole retry topic and keeps its live records in memory; one
// of them at a time, elected (Elector, KafkaElector), runs the retries,
// so several dispatchers can share an alerts topic.
//
// Time: the retry schedule, Retry-After, the budget window and the
// subject period are wall-clock time from the injected clock (Clock).
//
// Dispatcher is safe for concurrent use once started; Config is plain
// data.
package hooks
