// Package stream is `cdrguard run`: it consumes the carrier's CDR topic
// with a Kafka consumer group and runs one detector engine per owned
// partition. Kafka is its only dependency: ClickHouse is fed from Kafka
// by the loader (package loader), in a group of its own.
//
// Topology. The input topic is keyed by caller, so a caller's records and
// state live in one partition. Each input-partition worker decodes records
// (undecodable ones go to the dead-letter topic), runs the caller engine,
// and re-keys every record's calling sources (trunk, IMEI, IMSI, source IP)
// into an internal topic keyed by source, as Kafka Streams does; the same
// consumer group consumes that topic with one source engine per partition.
// So N instances flag what one instance flags. The caller engine drops
// copies of CDRs taken within the dedup horizon (detectors'
// Config.DedupHorizon) before they are re-keyed, so source engines, which
// do not deduplicate, never see them. Input workers also send
// watermarks to every source partition; a source engine advances to the
// least watermark of all input partitions, on the engines' order key
// (end times by default: packs carry each record's end), so the order in
// which input partitions' records interleave never changes a source
// result, and source alerts are those of a replay, emitted_at included
// (watermarks.go).
//
// Delivery and commits (delivery.go). Outputs — alerts, dead letters,
// re-keyed packs, watermarks and, with Config.Rows, aggregate rows for the
// row store (outputs.go) — are gathered in batches that a per-partition
// write loop makes durable in Kafka in order; a partition's offset is
// committed only up to the first record whose outputs are not all
// durable, never past a record the engine still holds for the watermark.
// A crash replays, never loses. Re-keyed records carry their origin, so a
// source worker drops the copies a replay sends again; alerts have
// deterministic IDs, and a worker that starts on a partition first reads
// the IDs already in the alerts topic so that it does not publish them
// again.
//
// Generations. Everything a worker writes or commits goes through its
// consumer-group generation. When a generation ends (a rebalance, a
// broker outage, a member expelled) the worker writes nothing more; if it
// ended with outputs not durable, the member forgets the partition's
// state, and whoever owns the partition next restarts it from its
// committed offset, rebuilt (rebuild.go). A member that was away longer
// than its membership lease first has the coordinator confirm its
// generation with a commit before it writes again, so a member that lost
// its partitions while paused writes nothing after it lost them. Only a
// job that stops (SIGTERM) with its generation intact drains its outputs,
// within the shutdown timeout.
//
// Rebuild. A newly owned partition's windows are rebuilt before its alerts
// resume: the worker rewinds to the records that started one longest
// window (plus lateness) before the committed offset and replays them
// quietly (state only, no output). A member that keeps a partition across
// a rebalance with everything durable keeps its engine and goes on where
// it stopped.
//
// Backpressure. Each partition has a bounded queue of output batches; when
// Kafka is slow or down the queue fills, the worker stops taking
// records, the reader's bounded buffer fills and fetching pauses. Writes
// retry with exponential backoff until they succeed or the generation
// ends.
//
// Seams (seams.go). The job talks to Kafka through small interfaces —
// fetcher, Producer, committer, broker — and reads the wall clock through
// Config.Now only, so the protocol is tested without a broker.
package stream
