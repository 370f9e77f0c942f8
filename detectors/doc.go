// Package detectors is cdrguard's detection engine: sliding windows of
// calling behaviour per calling number and per calling source (trunk,
// IMEI, IMSI, source IP), and the rules that flag robo-dialers in them.
//
// Contract:
//
//   - Pure. The package uses the standard library and schemas only: no
//     Kafka, ClickHouse, logging or network. Rule conditions come in
//     through the Condition and Scorer interfaces (pipeline/rules compiles
//     them with expr-lang/expr); results go out through return values
//     (an Output the caller passes in), never through logging.
//   - Event time only. Windows run on each call's start time; the wall
//     clock is never read. The engine holds each record until a watermark
//     passes it and runs held records in a fixed order, so the arrival
//     order within the allowed lateness never changes a result, and the
//     same records give the same alerts, IDs and emitted_at included.
//   - End order (the default). CDRs are written when calls end, so
//     records arrive nearly in end order (batched, shuffled within a
//     batch of about a minute). The engine holds each record until the
//     end watermark — the latest end seen minus Config.EndLateness
//     (75 s) — passes its end and runs held records in end-time order
//     (by start, then content, within one second): an alert leaves about
//     EndLateness after the end of the call that raised it (median 90 s,
//     p95 110 s after its start on the generated day). The cost: a record
//     more than EndLateness behind the latest end is late — run at once,
//     in arrival order — where start order tolerates Lateness behind the
//     latest start; and a source engine needs each record's end, not
//     only its start. With an external watermark (a source engine) the
//     order key is the same: Advance takes the least EndReleased of the
//     engines feeding it, and such an engine has no aggregates.
//   - Start order (Config.StartOrder): records are held until the latest
//     start minus Config.Lateness passes their start and run in start
//     order; an alert leaves about one Lateness after its record, and a
//     call longer than the lateness is late.
//   - Alert.EmittedAt is the engine's clock when the alert left: the
//     order key's second (end or start) plus one plus the hold
//     (EndLateness or Lateness), the earliest clock that releases the
//     record; for a late record, the clock it ran at. It depends on the
//     records, not on how they were batched.
//   - Pending and aggregates. Pending is the smallest tag of a record not
//     yet run: the only records whose outputs are not all produced. With
//     end order the watermark on starts (latest start minus
//     Config.Lateness, Released) still closes aggregate minutes, never
//     past the start of a record still held. EndReleased is what a worker
//     tells source engines: every record that ended before it has come,
//     except late ones.
//   - Outliers do not move the watermark. "Latest start" is the
//     Config.WatermarkQuorum-th latest (default 4) start, and end, and
//     records more than
//     the lateness ahead of it are set aside until the stream passes them
//     or as many of them confirm a real jump (a partition that was idle
//     for hours). A record from a clock hours ahead is therefore just
//     held, and run in start order when the stream reaches it, instead of
//     releasing everything held and changing other callers' alerts;
//     Stats.Outliers counts such records. The cost is a comparison per
//     record and a few shifts in an array of WatermarkQuorum starts for
//     records among the latest; a held outlier also holds Pending (the
//     commit point) back until the stream reaches it or ReleaseAll.
//   - Duplicates count once. A record with the caller and call_id (or,
//     without a call_id, the caller, callee, start and sources) of a
//     record taken within Config.DedupHorizon of the engine's clock
//     (default one hour past the lateness) is dropped before it reaches
//     a window or an aggregate, and counted in Stats.Duplicates. The
//     first copy to arrive is the one kept. Memory: 11–21 bytes per
//     record of the last one to two horizons (Engine.Remembered); a
//     rebuild replaying a longest window remembers the same records.
//   - Not safe for concurrent use: one Engine per partition.
//   - Bounded memory. Every key has a small compact state (about 57 bytes
//     per low-volume caller, measured with five million callers); only
//     busy keys get detailed windows, peer counts switch to a fixed-size
//     estimate beyond Config.ExactPeers, and keys idle for longer than the
//     longest window are forgotten.
//
// Process takes records, Flush ends a finite input (a replay), SetQuiet
// rebuilds state without output (after a restart), Pending tells a
// streaming worker which input it still holds.
package detectors
