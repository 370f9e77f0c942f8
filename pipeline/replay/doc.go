// Package replay runs recorded CDRs through one detection engine in input
// order, the batch counterpart of pipeline/stream: what `cdrguard replay`
// does with files, and what a streaming run of the same records must
// raise.
//
// A Replayer takes inputs one after another (Decode for a decoder, with
// decoding on a goroutine of its own; Records for records in memory),
// hands every alert to an AlertFunc as it is raised, counts what it read
// and rejected, and at the end writes a summary and, given ground-truth
// labels, scores the alerts against them (synth.Evaluate).
//
// A Replayer is not safe for concurrent use: one goroutine feeds it, as
// one engine serves one partition. Time is the records' event time; the
// only wall-clock figure is the duration the caller passes to
// WriteSummary.
package replay
