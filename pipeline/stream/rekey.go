package stream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unsafe"

	"github.com/segmentio/kafka-go"

	"github.com/cdrguard/cdrguard/schemas"
)

// Headers of the internal sources topic and of outputs.
const (
	// hdrOrigin on a pack: "inputPartition/offset/sourceIndex" of its last
	// record; packs from one input partition to one source partition
	// carry rising origins, so a pack sent again by a replay is dropped.
	hdrOrigin = "cdrguard-origin"
	// hdrWatermark: the sending input partition's watermark on start
	// times (Unix ms): every record that started before it has been
	// re-keyed, except late ones.
	hdrWatermark = "cdrguard-watermark"
	// hdrEndWatermark: its watermark on end times, what source engines
	// in end order advance to: every record that ended before it has
	// been re-keyed, except late ones. A sender without it (before pack
	// version 3) is read by its start watermark, which is also a (later)
	// end watermark: a record that ended before it started before it.
	hdrEndWatermark = "cdrguard-end-watermark"
	// hdrSource on a watermark message: the sending input partition.
	hdrSource = "cdrguard-source"
	// hdrIdle on a watermark message: "1" when the input partition is
	// idle (caught up, nothing held); idle partitions do not hold back
	// the source engines.
	hdrIdle = "cdrguard-idle"
	// hdrAlertID on an alert: its ID, so a restarted worker can read the
	// IDs already published without decoding alerts.
	hdrAlertID = "alert_id"
)

// Keys of the internal topic. Both start with a zero byte, which no
// source identifier does, and go to the partition the message names.
var (
	watermarkKey = []byte("\x00watermark")
	packKey      = []byte("\x00pack")
)

// sourceFields are the calling sources that are re-keyed, in a fixed
// order (their index is part of a re-keyed record's origin).
var sourceFields = [...]struct {
	kind schemas.SubjectKind
	get  func(*schemas.CDR) string
	set  func(*schemas.CDR, string)
}{
	{schemas.SubjectTrunk, func(c *schemas.CDR) string { return c.Trunk }, func(c *schemas.CDR, v string) { c.Trunk = v }},
	{schemas.SubjectIMEI, func(c *schemas.CDR) string { return c.IMEI }, func(c *schemas.CDR, v string) { c.IMEI = v }},
	{schemas.SubjectIMSI, func(c *schemas.CDR) string { return c.IMSI }, func(c *schemas.CDR, v string) { c.IMSI = v }},
	{schemas.SubjectSourceIP, func(c *schemas.CDR) string { return c.SourceIP }, func(c *schemas.CDR, v string) { c.SourceIP = v }},
}

// packer re-keys records into the internal topic. A record is routed by
// its source key ("trunk:tr-01") exactly as a Java producer would route a
// message with that key (murmur2), so all records of one source meet in
// one source partition; the records bound for one partition in one output
// batch travel as one pack, which keeps the internal topic's message
// count and the per-message costs independent of the record rate.
//
// Pack layout (version 3): 'P', 3, uvarint count, then per record:
// uvarint offset (the input offset of the record, as a delta from the
// previous record's in the pack, the first from 0), varint start (Unix
// ms), uvarint end (0 when the record has none, else end - start + 1,
// ms), uvarint talk seconds, disposition byte, source index byte, then
// the caller and the source identifier, each as uvarint length + bytes.
// Each record's origin (its offset and source index) lets a source worker
// drop exactly the records it has taken before when an input partition
// replays from its committed offset and packs them at other boundaries;
// its end lets the source engine run records in the end order the input
// engines use. Version 2 packs (no end: the engine takes start plus talk
// time) and version 1 packs (no offsets either, each record taking the
// pack's origin) are still read.
type packer struct {
	topic      string
	from       int   // input partition
	partitions []int // the internal topic's partitions
	packs      []pack
	key        []byte
	murmur     kafka.Murmur2Balancer
}

type pack struct {
	buf     []byte
	count   int
	lastOff int64
	lastIdx int
}

// packVersion is the layout packer writes.
const packVersion = 3

func newPacker(topic string, from, partitions int) *packer {
	p := &packer{topic: topic, from: from, partitions: make([]int, partitions), packs: make([]pack, partitions)}
	for i := range p.partitions {
		p.partitions[i] = i
	}
	return p
}

// add re-keys every calling source of c, read at offset of the input
// partition.
func (p *packer) add(c *schemas.CDR, offset int64) {
	for i, f := range sourceFields {
		id := f.get(c)
		if id == "" {
			continue
		}
		p.key = append(append(append(p.key[:0], f.kind.String()...), ':'), id...)
		part := p.murmur.Balance(kafka.Message{Key: p.key}, p.partitions...)
		pk := &p.packs[part]
		prev := int64(0)
		if pk.count == 0 {
			pk.buf = pk.buf[:0]
		} else {
			prev = pk.lastOff
		}
		pk.buf = binary.AppendUvarint(pk.buf, uint64(offset-prev))
		pk.buf = binary.AppendVarint(pk.buf, c.StartMS)
		end := uint64(0)
		if c.EndMS >= c.StartMS {
			end = uint64(c.EndMS-c.StartMS) + 1
		}
		pk.buf = binary.AppendUvarint(pk.buf, end)
		pk.buf = binary.AppendUvarint(pk.buf, uint64(max(c.DurationS, 0)))
		pk.buf = append(pk.buf, byte(c.Disposition), byte(i))
		pk.buf = binary.AppendUvarint(pk.buf, uint64(len(c.Caller)))
		pk.buf = append(pk.buf, c.Caller...)
		pk.buf = binary.AppendUvarint(pk.buf, uint64(len(id)))
		pk.buf = append(pk.buf, id...)
		pk.count++
		pk.lastOff, pk.lastIdx = offset, i
	}
}

// empty reports whether no re-keyed record waits for a flush.
func (p *packer) empty() bool {
	for i := range p.packs {
		if p.packs[i].count > 0 {
			return false
		}
	}
	return true
}

// flush appends one message per non-empty pack to msgs and empties the
// packs. The messages carry the writer's clock as their timestamp, never
// an event time: a topic's retention goes by timestamps, and a backfill of
// old records stamped with their own times would be deleted before the
// source workers read it. A rewind finds old enough packs all the same,
// since a pack is always written after its records started.
func (p *packer) flush(msgs []kafka.Message, wm marks) []kafka.Message {
	for part := range p.packs {
		pk := &p.packs[part]
		if pk.count == 0 {
			continue
		}
		val := make([]byte, 0, len(pk.buf)+2+binary.MaxVarintLen64)
		val = append(val, 'P', packVersion)
		val = binary.AppendUvarint(val, uint64(pk.count))
		val = append(val, pk.buf...)
		msgs = append(msgs, kafka.Message{
			Topic: p.topic, Partition: part, Key: packKey, Value: val,
			Headers: []kafka.Header{
				{Key: hdrOrigin, Value: fmt.Appendf(nil, "%d/%d/%d", p.from, pk.lastOff, pk.lastIdx)},
				{Key: hdrWatermark, Value: strconv.AppendInt(nil, wm.start, 10)},
				{Key: hdrEndWatermark, Value: strconv.AppendInt(nil, wm.end, 10)},
			},
		})
		pk.count = 0
	}
	return msgs
}

var errBadPack = errors.New("malformed pack of re-keyed records")

// unpack calls f with each record of a pack and its origin sequence
// (offset*len(sourceFields) + source index; for version 1 packs, which do
// not carry offsets, packSeq for every record). The records' strings
// alias data.
func unpack(data []byte, packSeq int64, f func(c *schemas.CDR, seq int64)) error {
	if len(data) < 2 || data[0] != 'P' || data[1] < 1 || data[1] > packVersion {
		return errBadPack
	}
	withOffsets, withEnds := data[1] >= 2, data[1] >= 3
	rest := data[2:]
	n, k := binary.Uvarint(rest)
	if k <= 0 {
		return errBadPack
	}
	rest = rest[k:]
	str := func() (string, bool) {
		l, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < l {
			return "", false
		}
		b := rest[k : k+int(l)]
		rest = rest[k+int(l):]
		if len(b) == 0 {
			return "", true
		}
		return unsafe.String(&b[0], len(b)), true
	}
	var c schemas.CDR
	offset := int64(0)
	for range n {
		seq := packSeq
		if withOffsets {
			d, k := binary.Uvarint(rest)
			if k <= 0 || d > 1<<62 || offset+int64(d) < offset {
				return errBadPack
			}
			offset += int64(d)
			rest = rest[k:]
		}
		start, k := binary.Varint(rest)
		if k <= 0 {
			return errBadPack
		}
		rest = rest[k:]
		var end uint64
		if withEnds {
			end, k = binary.Uvarint(rest)
			if k <= 0 || end > uint64(schemas.MaxCallMS)+1 {
				return errBadPack
			}
			rest = rest[k:]
		}
		talk, k := binary.Uvarint(rest)
		if k <= 0 || len(rest) < k+2 {
			return errBadPack
		}
		disp, idx := schemas.Disposition(rest[k]), int(rest[k+1])
		rest = rest[k+2:]
		caller, ok1 := str()
		id, ok2 := str()
		if !ok1 || !ok2 || idx >= len(sourceFields) || caller == "" || id == "" ||
			start < schemas.MinStartMS || start >= schemas.MaxStartMS || talk > 1<<31-1 {
			return errBadPack
		}
		c = schemas.CDR{Caller: caller, StartMS: start, Disposition: disp}
		if end > 0 {
			c.EndMS = start + int64(end-1)
		}
		c.SetDuration(int32(talk))
		sourceFields[idx].set(&c, id)
		if withOffsets {
			seq = offset*int64(len(sourceFields)) + int64(idx)
		}
		f(&c, seq)
	}
	if len(rest) != 0 {
		return errBadPack
	}
	return nil
}

// marks are an input partition's watermarks (Unix ms): on start times
// and on end times.
type marks struct{ start, end int64 }

// watermarkMessages tells every source partition an input partition's
// watermarks.
func watermarkMessages(msgs []kafka.Message, topic string, partitions, from int, wm marks, idle bool, now time.Time) []kafka.Message {
	start, end := strconv.AppendInt(nil, wm.start, 10), strconv.AppendInt(nil, wm.end, 10)
	src := strconv.AppendInt(nil, int64(from), 10)
	for p := range partitions {
		h := []kafka.Header{{Key: hdrSource, Value: src}, {Key: hdrWatermark, Value: start}, {Key: hdrEndWatermark, Value: end}}
		if idle {
			h = append(h, kafka.Header{Key: hdrIdle, Value: []byte("1")})
		}
		msgs = append(msgs, kafka.Message{Topic: topic, Partition: p, Key: watermarkKey, Time: now, Headers: h})
	}
	return msgs
}

// origin is where a pack came from.
type origin struct {
	partition int
	seq       int64 // offset*len(sourceFields) + source index of its last record
}

func header(m *kafka.Message, key string) []byte {
	for _, h := range m.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

// parseOrigin reads a pack's origin header.
func parseOrigin(m *kafka.Message) (origin, bool) {
	v := header(m, hdrOrigin)
	a, rest, ok := bytes.Cut(v, []byte("/"))
	if !ok {
		return origin{}, false
	}
	b, c, ok := bytes.Cut(rest, []byte("/"))
	if !ok {
		return origin{}, false
	}
	p, err1 := strconv.Atoi(string(a))
	off, err2 := strconv.ParseInt(string(b), 10, 64)
	idx, err3 := strconv.Atoi(string(c))
	if err1 != nil || err2 != nil || err3 != nil || idx < 0 || idx >= len(sourceFields) {
		return origin{}, false
	}
	return origin{partition: p, seq: off*int64(len(sourceFields)) + int64(idx)}, true
}

func headerInt(m *kafka.Message, key string) (int64, bool) {
	v, err := strconv.ParseInt(string(header(m, key)), 10, 64)
	return v, err == nil
}

// balancer sends the internal topic's messages (keys starting with a zero
// byte) to the partition they name and hashes every other key the way the
// Java client does.
type balancer struct{ murmur kafka.Murmur2Balancer }

// Balance implements kafka.Balancer.
func (b *balancer) Balance(msg kafka.Message, partitions ...int) int {
	if len(msg.Key) > 0 && msg.Key[0] == 0 {
		for _, p := range partitions {
			if p == msg.Partition {
				return p
			}
		}
	}
	return b.murmur.Balance(msg, partitions...)
}
