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
//     clock is never read. The watermark is the latest start seen minus
//     the allowed lateness (or, with Config.ExternalWatermark, what the
//     caller sets with Advance). The engine holds every record until the
//     watermark passes it and runs held records in start-time order, so
//     the arrival order within the lateness never changes a result, and
//     the same records give the same alerts, IDs included.
//   - Outliers do not move the watermark. "Latest start" is the
//     Config.WatermarkQuorum-th latest (default 4), and records more than
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
