package detectors

import "github.com/cdrguard/cdrguard/schemas"

// Bits of light.info: talk seconds in the low 13 bits (saturating), then
// the call's outcome.
const (
	infoTalkMask = 1<<13 - 1
	infoAnswered = 1 << 13
	infoRejected = 1 << 14
	infoShort    = 1 << 15
)

// Bits of light.flags.
const (
	flagExempt = 1 << iota // allowlisted: never gets detailed windows
)

// light is the compact state every key has (24 bytes, no pointers): its
// latest call and its calls in the current and previous half hour, enough
// to decide when the key is busy enough for detailed windows (heavy
// state). Keys live in a hashTable by value, so a key costs one 32-byte
// slot and nothing else, and the garbage collector never scans them.
type light struct {
	peer  uint64 // callee of the latest call (caller keys) or its caller (sources)
	ts    uint32 // start of the latest call (0 for none)
	heavy uint32 // 1 + index into Engine.heavies; 0 while light
	half  uint16 // low bits of the current half-hour number
	info  uint16 // outcome of the latest call
	nCur  uint8  // calls in the current half hour (saturating)
	nPrev uint8  // calls in the previous half hour (saturating)
	flags uint8
}

// countHalfHour counts a call in the half-hour counters.
func (l *light) countHalfHour(ts uint32) {
	h := uint16(ts / 1800)
	switch d := h - l.half; {
	case l.nCur == 0 && l.nPrev == 0 || d == 1:
		if d == 1 {
			l.nPrev = l.nCur
		} else {
			l.nPrev = 0
		}
		l.half, l.nCur = h, 1
	case d == 0:
		l.nCur = min(l.nCur, 254) + 1
	case d == 0xffff: // the previous half hour, late
		l.nPrev = min(l.nPrev, 254) + 1
	case d < 0x8000: // later than the next half hour: the old counts expired
		l.half, l.nCur, l.nPrev = h, 1, 0
	}
}

// remember makes c the key's latest call if it is.
func (l *light) remember(peer uint64, c *call) {
	if c.ts >= l.ts {
		l.peer, l.ts, l.info = peer, c.ts, c.info()
	}
}

// call is one record as the windows see it.
type call struct {
	ts       uint32 // start, seconds since epoch
	talk     uint32
	answered bool
	rejected bool // rejected or busy
	short    bool // unanswered, or answered with under the short-call time
	refused  bool // rejected, busy, or answered and hung up within the short-call time
}

func (c *call) info() uint16 {
	v := uint16(min(c.talk, infoTalkMask))
	if c.answered {
		v |= infoAnswered
	}
	if c.rejected {
		v |= infoRejected
	}
	if c.short {
		v |= infoShort
	}
	return v
}

func callFromInfo(ts uint32, v uint16) call {
	c := call{ts: ts, talk: uint32(v & infoTalkMask), answered: v&infoAnswered != 0,
		rejected: v&infoRejected != 0, short: v&infoShort != 0}
	c.refused = c.rejected || c.answered && c.short
	return c
}

// table holds the keys of one subject kind.
type table struct {
	kind schemas.SubjectKind
	hashTable[light]
}

func newTable(kind schemas.SubjectKind) *table { return &table{kind: kind} }

// ruleState is a busy key's memory of one rule.
type ruleState struct {
	until  uint32 // cooldown end (event time); 0 = none
	level  int8   // level alerted within the cooldown
	evalAt uint32 // window calls at the last evaluation
}

// heavy is the detailed state of a busy key: its sliding windows, the
// peers it called (or, for sources, the caller IDs it carried), and its
// rules' cooldowns.
type heavy struct {
	kind    schemas.SubjectKind
	subject string
	rings   []ring
	callees peerSet
	callers peerSet           // sources only
	names   map[uint64]string // sources: caller IDs that are not numbers
	recent  []recentCaller    // sources, once callers is sketched
	seq     *seqTable         // callers: runs of consecutive callees
	rules   []ruleState
}

type recentCaller struct {
	key uint64
	ts  uint32
}
