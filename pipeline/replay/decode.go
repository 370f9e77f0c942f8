package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"unsafe"

	"github.com/cdrguard/cdrguard/schemas"
)

// Decode replays one input: every record dec yields, until io.EOF. name
// names the input in rejects and errors. A record the decoder rejects
// (*schemas.RecordError) is counted by reason and skipped; any other
// decoder error ends the input and is returned. Decode returns ctx's
// error, wrapped, soon after ctx is done.
//
// One goroutine decodes the input into batches of records whose strings
// it copies into the batch's arena (a decoder's strings are only valid
// until its next Decode), while the calling one runs them through the
// engine in input order. Batches are recycled, so a replay allocates
// nothing per record. The decoding goroutine has stopped, and is done
// with dec, when Decode returns.
func (r *Replayer) Decode(ctx context.Context, name string, dec schemas.Decoder) error {
	full := make(chan *batch, batches-1)
	free := make(chan *batch, batches)
	for range batches {
		free <- &batch{}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.decode(ctx, dec, name, free, full, stop)
	}()
	defer func() {
		close(stop) // the decoder may be waiting for a free batch
		<-done      // and must be done with the input before it closes
	}()
	for b := range full {
		for i := range b.recs {
			if err := r.process(&b.recs[i]); err != nil {
				return err
			}
		}
		if b.err != nil {
			return b.err
		}
		free <- b
	}
	return nil
}

// batches is how many batches of batchSize records a replay cycles
// between its decoder and its engine.
const (
	batches   = 4
	batchSize = 1024
)

// batch is a run of decoded records whose strings live in arena. err, on
// the last batch of an input, is why the input ended early.
type batch struct {
	recs  []schemas.CDR
	arena []byte
	err   error
}

// keep copies v into b's arena. The string points into the arena's current
// array; a larger arena is a new array, so strings kept earlier stay
// valid until the batch is reused.
func (b *batch) keep(v string) string {
	if v == "" {
		return ""
	}
	if cap(b.arena)-len(b.arena) < len(v) {
		b.arena = make([]byte, 0, max(2*cap(b.arena), 64<<10, len(v)))
	}
	off := len(b.arena)
	b.arena = append(b.arena, v...)
	return unsafe.String(&b.arena[off], len(v))
}

// decode reads dec into batches taken from free and sends them on full,
// which it closes at the end of the input. It counts rejected records
// (in input order, so the summary's examples are the first of each
// reason). It returns early when stop is closed.
func (r *Replayer) decode(ctx context.Context, dec schemas.Decoder, name string, free <-chan *batch, full chan<- *batch, stop <-chan struct{}) {
	defer close(full)
	var c schemas.CDR
	n := 0
	for {
		var b *batch
		select {
		case b = <-free:
		case <-stop:
			return
		}
		b.recs, b.arena, b.err = b.recs[:0], b.arena[:0], nil
		for len(b.recs) < batchSize && b.err == nil {
			if n&0xffff == 0 && ctx.Err() != nil {
				b.err = fmt.Errorf("replay of %s interrupted: %w", name, ctx.Err())
				break
			}
			n++
			err := dec.Decode(&c)
			if err == io.EOF {
				break
			}
			if err != nil {
				var re *schemas.RecordError
				if !errors.As(err, &re) {
					b.err = fmt.Errorf("cannot read %s: %w", name, err)
					break
				}
				r.reject(name, re)
				continue
			}
			k := c
			k.CallID, k.Caller, k.Callee = b.keep(c.CallID), b.keep(c.Caller), b.keep(c.Callee)
			k.Trunk, k.SourceIP, k.IMSI = b.keep(c.Trunk), b.keep(c.SourceIP), b.keep(c.IMSI)
			k.IMEI, k.CellID = b.keep(c.IMEI), b.keep(c.CellID)
			b.recs = append(b.recs, k)
		}
		last := len(b.recs) < batchSize || b.err != nil
		select {
		case full <- b:
		case <-stop:
			return
		}
		if last {
			return
		}
	}
}

// reject counts a rejected record by reason, keeping the first of each
// reason as the example.
func (r *Replayer) reject(input string, re *schemas.RecordError) {
	r.rejected++
	reason := re.Err.Error()
	var fe *schemas.FieldError
	if errors.As(re.Err, &fe) {
		reason = "field " + fe.Field + ": " + fe.Problem
		if fe.Field == "json" {
			reason = "malformed JSON"
		}
	}
	ri := r.rejects[reason]
	if ri == nil {
		ri = &rejectInfo{example: input + ": " + re.Error()}
		r.rejects[reason] = ri
	}
	ri.count++
}
