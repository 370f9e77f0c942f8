package stream

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cdrguard/cdrguard/schemas"
)

// Headers of the internal sources topic and of outputs.
const (
	// hdrOrigin on a re-keyed record: "inputPartition/offset/sourceIndex".
	hdrOrigin = "cdrguard-origin"
	// hdrWatermark: the sending input partition's watermark (Unix ms).
	hdrWatermark = "cdrguard-watermark"
	// hdrSource on a watermark message: the sending input partition.
	hdrSource = "cdrguard-source"
	// hdrAlertID on an alert: its ID, so a restarted worker can read the
	// IDs already published without decoding alerts.
	hdrAlertID = "alert_id"
)

// watermarkKey marks a watermark message on the sources topic.
var watermarkKey = []byte("\x00watermark")

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

// rekey appends to msgs one message per calling source of c, keyed by the
// source, carrying what a source engine reads. buf is scratch space.
func rekey(msgs []kafka.Message, topic string, c *schemas.CDR, partition int, offset, watermark int64) []kafka.Message {
	for i, f := range sourceFields {
		id := f.get(c)
		if id == "" {
			continue
		}
		r := schemas.CDR{Caller: c.Caller, Callee: c.Callee, StartMS: c.StartMS, Disposition: c.Disposition}
		r.SetDuration(c.DurationS)
		f.set(&r, id)
		key := make([]byte, 0, len(id)+10)
		key = append(append(append(key, f.kind.String()...), ':'), id...)
		msgs = append(msgs, kafka.Message{
			Topic: topic,
			Key:   key,
			Value: schemas.AppendJSON(nil, &r),
			Time:  time.UnixMilli(c.StartMS),
			Headers: []kafka.Header{
				{Key: hdrOrigin, Value: fmt.Appendf(nil, "%d/%d/%d", partition, offset, i)},
				{Key: hdrWatermark, Value: strconv.AppendInt(nil, watermark, 10)},
			},
		})
	}
	return msgs
}

// watermarkMessages tells every source partition an input partition's
// watermark.
func watermarkMessages(msgs []kafka.Message, topic string, partitions, from int, watermark int64, now time.Time) []kafka.Message {
	wm := strconv.AppendInt(nil, watermark, 10)
	src := strconv.AppendInt(nil, int64(from), 10)
	for p := range partitions {
		msgs = append(msgs, kafka.Message{
			Topic: topic, Partition: p, Key: watermarkKey, Time: now,
			Headers: []kafka.Header{{Key: hdrSource, Value: src}, {Key: hdrWatermark, Value: wm}},
		})
	}
	return msgs
}

// origin is where a re-keyed record came from.
type origin struct {
	partition int
	seq       int64 // offset*len(sourceFields) + source index: rises along a partition
}

func header(m *kafka.Message, key string) []byte {
	for _, h := range m.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

// parseOrigin reads a re-keyed record's origin header.
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

// balancer sends watermark messages to the partition they name and hashes
// every other key the way the Java client does.
type balancer struct{ murmur kafka.Murmur2Balancer }

// Balance implements kafka.Balancer.
func (b *balancer) Balance(msg kafka.Message, partitions ...int) int {
	if bytes.Equal(msg.Key, watermarkKey) {
		for _, p := range partitions {
			if p == msg.Partition {
				return p
			}
		}
	}
	return b.murmur.Balance(msg, partitions...)
}
