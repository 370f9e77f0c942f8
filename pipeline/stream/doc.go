// Package stream is `cdrguard run`: it consumes the carrier's CDR topic
// with a Kafka consumer group and runs one detector engine per owned
// partition.
//
// Topology. The input topic is keyed by caller, so a caller's records and
// state live in one partition. Each input-partition worker decodes records
// (undecodable ones go to the dead-letter topic), runs the caller engine,
// and re-keys every record's calling sources (trunk, IMEI, IMSI, source IP)
// into an internal topic keyed by source, as Kafka Streams does; the same
// consumer group consumes that topic with one source engine per partition.
// So N instances flag what one instance flags. Input workers also send
// watermarks to every source partition; a source engine advances to the
// least watermark of all input partitions, so the order in which input
// partitions' records interleave never changes a source result.
//
// Delivery. Outputs (alerts, dead letters, re-keyed records, ClickHouse
// rows) are collected in batches that a per-partition writer makes durable
// in order; a partition's offset is committed only up to the first record
// whose outputs are not all durable — never past a record the engine still
// holds for the watermark, and only through the generation that owns the
// partition (a stale generation cannot commit). A crash replays, never
// loses. Re-keyed records carry their origin (input partition and offset),
// so a source worker drops the copies a replay sends again; alerts have
// deterministic IDs, and a worker that starts on a partition first reads
// the IDs already in the alerts topic so that it does not publish them
// again.
//
// Rebuild. A newly owned partition's windows are rebuilt before its alerts
// resume: the worker rewinds to the records that started one longest
// window (plus lateness) before the committed offset and replays them
// quietly (state only, no output). A worker that keeps a partition across
// a rebalance keeps its engine and goes on where it stopped.
//
// Backpressure. Each partition has a bounded queue of output batches; when
// an output is slow or down the queue fills, the worker stops taking
// records, the reader's bounded buffer fills and fetching pauses. Writes
// retry with exponential backoff until they succeed or the job stops.
package stream
