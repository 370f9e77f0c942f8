package detectors

import "unsafe"

// StateBytes estimates the memory the engine's state takes, in bytes:
// the compact per-key tables (their slot arrays, the dominant cost for a
// carrier's millions of low-volume callers), the detailed state of busy
// keys (window rings, peer sets, rule memory), the records held for
// ordering and the duplicate fingerprints. It counts what the engine
// allocated, by capacity, not what the Go runtime adds around it, and
// walks every busy key: call it about once a second, not per record.
func (e *Engine) StateBytes() int64 {
	var n int64
	for _, t := range e.tables {
		if t != nil {
			n += int64(cap(t.slots)) * int64(unsafe.Sizeof(t.slots[:1][0]))
		}
	}
	n += int64(cap(e.heavies)) * int64(unsafe.Sizeof((*heavy)(nil)))
	for _, h := range e.heavies {
		if h != nil {
			n += h.bytes()
		}
	}
	if e.held != nil {
		n += e.held.bytes()
	}
	if e.dedup != nil {
		n += int64(cap(e.dedup.cur.slots)+cap(e.dedup.prev.slots)) * 8
	}
	return n
}

func (h *heavy) bytes() int64 {
	n := int64(unsafe.Sizeof(*h)) + int64(len(h.subject))
	for i := range h.rings {
		n += int64(unsafe.Sizeof(h.rings[i])) + int64(cap(h.rings[i].b))*int64(unsafe.Sizeof(bucket{}))
	}
	n += h.callees.bytes() + h.callers.bytes()
	for _, name := range h.names {
		n += 8 + int64(len(name)) + 16
	}
	n += int64(cap(h.recent))*int64(unsafe.Sizeof(recentCaller{})) + int64(cap(h.rules))*int64(unsafe.Sizeof(ruleState{}))
	if h.seq != nil {
		n += int64(unsafe.Sizeof(*h.seq))
	}
	return n
}

func (s *peerSet) bytes() int64 {
	return int64(cap(s.last.slots))*int64(unsafe.Sizeof(s.last.slots[:1][0])) +
		int64(cap(s.recs.slots))*int64(unsafe.Sizeof(s.recs.slots[:1][0])) +
		int64(cap(s.slots))*int64(unsafe.Sizeof(sketchSlot{}))
}

func (r *reorder) bytes() int64 {
	n := int64(cap(r.heap)+cap(r.arrivals))*4 + int64(len(r.secs))*(4+8+16)
	for _, s := range r.secs {
		n += int64(unsafe.Sizeof(*s)) + int64(cap(s.recs))*int64(unsafe.Sizeof(held{})) + int64(cap(s.order))*4 + int64(cap(s.arena))
	}
	return n
}
