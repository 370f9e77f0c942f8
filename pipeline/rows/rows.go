// Package rows is what the streaming job hands the row store
// (ClickHouse): the aggregate rows a partition's records produced, and
// their compact encoding on the internal rows topic.
//
// The streaming job does not write ClickHouse itself: it publishes each
// output batch's rows to the rows topic, in the same Kafka write as its
// alerts, and commits its input only once that write is durable. A
// separate loader (its own consumer group) reads the rows topic, the
// alerts topic and, when raw CDRs are stored, the input topic, and writes
// ClickHouse. So detection depends on Kafka alone, and ClickHouse catches
// up from Kafka after an outage.
//
// Encoding. One message holds one batch: 'R', version 1, the source
// partition (uvarint), then four sections — caller minutes, caller hours,
// caller days, network minutes — each a uvarint count followed by its
// rows. Times are Unix seconds (varint), counts uvarints, callers
// uvarint length + bytes. Decode rejects anything else with
// ErrMalformed, whatever bytes it is given.
package rows

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/schemas"
)

// Batch is what one output batch of a partition produced for the row
// store. Any field may be empty.
type Batch struct {
	Alerts         []schemas.Alert
	CallerMinutes  []detectors.CallerMinute
	CallerHours    []detectors.CallerPeriod
	CallerDays     []detectors.CallerPeriod
	NetworkMinutes []detectors.NetworkMinute
	// CDRs are the raw records, written only when the store keeps them.
	CDRs []schemas.CDR
}

// Len is the number of rows in b, all tables together.
func (b *Batch) Len() int {
	return len(b.Alerts) + len(b.CallerMinutes) + len(b.CallerHours) + len(b.CallerDays) +
		len(b.NetworkMinutes) + len(b.CDRs)
}

// Aggregates is the number of aggregate rows in b (what the rows topic
// carries).
func (b *Batch) Aggregates() int {
	return len(b.CallerMinutes) + len(b.CallerHours) + len(b.CallerDays) + len(b.NetworkMinutes)
}

// Reset empties b, keeping its slices' capacity for reuse.
func (b *Batch) Reset() {
	*b = Batch{Alerts: b.Alerts[:0], CallerMinutes: b.CallerMinutes[:0], CallerHours: b.CallerHours[:0],
		CallerDays: b.CallerDays[:0], NetworkMinutes: b.NetworkMinutes[:0], CDRs: b.CDRs[:0]}
}

// ErrMalformed is returned by Decode for bytes that are not an encoded
// batch of this version.
var ErrMalformed = errors.New("malformed rows message")

const (
	magic   = 'R'
	version = 1
)

// AppendEncoded appends the encoding of b's aggregate rows (alerts and
// CDRs are not part of it: they travel on their own topics) with the
// input partition they came from.
func AppendEncoded(dst []byte, partition int32, b *Batch) []byte {
	dst = append(dst, magic, version)
	dst = binary.AppendUvarint(dst, uint64(partition))
	dst = binary.AppendUvarint(dst, uint64(len(b.CallerMinutes)))
	for i := range b.CallerMinutes {
		r := &b.CallerMinutes[i]
		dst = appendString(dst, r.Caller)
		dst = binary.AppendVarint(dst, r.Minute.Unix())
		dst = appendUints(dst, r.Calls, r.Answered, r.ShortCalls, r.Rejected, r.TalkS, r.DistinctCallees)
	}
	dst = appendPeriods(dst, b.CallerHours)
	dst = appendPeriods(dst, b.CallerDays)
	dst = binary.AppendUvarint(dst, uint64(len(b.NetworkMinutes)))
	for i := range b.NetworkMinutes {
		r := &b.NetworkMinutes[i]
		dst = binary.AppendVarint(dst, r.Minute.Unix())
		for _, v := range [...]uint64{r.Calls, r.Answered, r.ShortCalls, r.Rejected, r.TalkS} {
			dst = binary.AppendUvarint(dst, v)
		}
	}
	return dst
}

func appendPeriods(dst []byte, ps []detectors.CallerPeriod) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ps)))
	for i := range ps {
		r := &ps[i]
		dst = appendString(dst, r.Caller)
		dst = binary.AppendVarint(dst, r.Start.Unix())
		dst = appendUints(dst, r.Calls, r.Answered, r.ShortCalls, r.Rejected, r.TalkS, r.DistinctCallees)
		dst = binary.AppendUvarint(dst, r.Version)
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendUints(dst []byte, vs ...uint32) []byte {
	for _, v := range vs {
		dst = binary.AppendUvarint(dst, uint64(v))
	}
	return dst
}

// Decode appends the rows encoded in data to b and returns the input
// partition they came from. Strings are copied: b does not alias data. On
// error b may hold some of the rows; the error wraps ErrMalformed.
func Decode(data []byte, b *Batch) (partition int32, err error) {
	d := decoder{rest: data}
	if len(data) < 2 || data[0] != magic || data[1] != version {
		return 0, fmt.Errorf("%w: no 'R' version %d header", ErrMalformed, version)
	}
	d.rest = data[2:]
	p := d.uint(1<<31 - 1)
	n := d.count()
	for range n {
		r := detectors.CallerMinute{Caller: d.str(), Minute: d.time()}
		d.uint32s(&r.Calls, &r.Answered, &r.ShortCalls, &r.Rejected, &r.TalkS, &r.DistinctCallees)
		if d.err != nil {
			break
		}
		b.CallerMinutes = append(b.CallerMinutes, r)
	}
	b.CallerHours = d.periods(b.CallerHours)
	b.CallerDays = d.periods(b.CallerDays)
	n = d.count()
	for range n {
		r := detectors.NetworkMinute{Minute: d.time()}
		for _, v := range [...]*uint64{&r.Calls, &r.Answered, &r.ShortCalls, &r.Rejected, &r.TalkS} {
			*v = d.uint(1<<64 - 1)
		}
		if d.err != nil {
			break
		}
		b.NetworkMinutes = append(b.NetworkMinutes, r)
	}
	if d.err == nil && len(d.rest) != 0 {
		d.fail("%d bytes after the last section", len(d.rest))
	}
	return int32(p), d.err
}

// periods appends a section of caller hours or days.
func (d *decoder) periods(dst []detectors.CallerPeriod) []detectors.CallerPeriod {
	n := d.count()
	for range n {
		r := detectors.CallerPeriod{Caller: d.str(), Start: d.time()}
		d.uint32s(&r.Calls, &r.Answered, &r.ShortCalls, &r.Rejected, &r.TalkS, &r.DistinctCallees)
		r.Version = d.uint(1<<64 - 1)
		if d.err != nil {
			break
		}
		dst = append(dst, r)
	}
	return dst
}

// decoder reads fields until the first error, then returns zero values.
type decoder struct {
	rest []byte
	err  error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) uint(limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, k := binary.Uvarint(d.rest)
	if k <= 0 || v > limit {
		d.fail("bad unsigned number")
		return 0
	}
	d.rest = d.rest[k:]
	return v
}

func (d *decoder) uint32s(dst ...*uint32) {
	for _, p := range dst {
		*p = uint32(d.uint(1<<32 - 1))
	}
}

// count reads a section's row count; every row takes at least one byte,
// so a count beyond the bytes left is malformed (and never allocates).
func (d *decoder) count() int {
	n := d.uint(uint64(len(d.rest)))
	return int(n)
}

func (d *decoder) time() time.Time {
	if d.err != nil {
		return time.Time{}
	}
	v, k := binary.Varint(d.rest)
	if k <= 0 || v < schemas.MinStartMS/1000-86400 || v > schemas.MaxStartMS/1000+86400 {
		d.fail("bad time")
		return time.Time{}
	}
	d.rest = d.rest[k:]
	return time.Unix(v, 0).UTC()
}

func (d *decoder) str() string {
	l := d.uint(uint64(len(d.rest)))
	if d.err != nil {
		return ""
	}
	if l > uint64(len(d.rest)) {
		d.fail("string longer than the message")
		return ""
	}
	s := string(d.rest[:l])
	d.rest = d.rest[l:]
	return s
}
