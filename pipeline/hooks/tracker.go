package hooks

import (
	"sync"

	"github.com/segmentio/kafka-go"
)

// tracker follows the alerts offsets fetched and resolved, per partition,
// and says up to where they may be committed: the last offset before the
// first unresolved one. Safe for concurrent use.
type tracker struct {
	mu    sync.Mutex
	parts map[int]*partOffsets
}

type partOffsets struct {
	topic   string
	pending []int64 // fetched, in order; resolved ones until the head moves
	done    map[int64]bool
	commit  int64 // last committable offset, -1 for none
	sent    int64 // last offset committed
}

func newTracker() *tracker { return &tracker{parts: map[int]*partOffsets{}} }

// add records a fetched message; call it in fetch order.
func (t *tracker) add(m kafka.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.parts[m.Partition]
	if p == nil {
		p = &partOffsets{topic: m.Topic, done: map[int64]bool{}, commit: -1, sent: -1}
		t.parts[m.Partition] = p
	}
	p.pending = append(p.pending, m.Offset)
}

// resolve marks a fetched message resolved.
func (t *tracker) resolve(partition int, offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.parts[partition]
	p.done[offset] = true
	i := 0
	for i < len(p.pending) && p.done[p.pending[i]] {
		delete(p.done, p.pending[i])
		p.commit = p.pending[i]
		i++
	}
	p.pending = p.pending[i:]
}

// committable returns one message per partition whose committable offset
// moved since the last call (kafka-go commits Offset+1).
func (t *tracker) committable() []kafka.Message {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []kafka.Message
	for part, p := range t.parts {
		if p.commit > p.sent {
			out = append(out, kafka.Message{Topic: p.topic, Partition: part, Offset: p.commit})
		}
	}
	return out
}

// committed records that msgs were committed.
func (t *tracker) committed(msgs []kafka.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range msgs {
		if p := t.parts[m.Partition]; p != nil && m.Offset > p.sent {
			p.sent = m.Offset
		}
	}
}

// idle reports whether every fetched message is resolved and committed.
func (t *tracker) idle() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.parts {
		if len(p.pending) > 0 || p.commit > p.sent {
			return false
		}
	}
	return true
}
