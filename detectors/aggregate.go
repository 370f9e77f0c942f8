package detectors

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// CallerMinute is one caller's traffic in one minute, for callers whose
// day has reached the floor (Config.CallerFloor). It is emitted once the
// watermark passes the minute's end.
type CallerMinute struct {
	Caller          string
	Minute          time.Time
	Calls           uint32
	Answered        uint32
	ShortCalls      uint32
	Rejected        uint32
	TalkS           uint32
	DistinctCallees uint32
}

// CallerPeriod is one caller's traffic in one UTC hour (Output.CallerHours)
// or one UTC day (Output.CallerDays), for callers with at least
// Config.CallerFloor calls that day (for an hour: by the hour's end). A row
// is emitted again whenever the period's figures change; the one with the
// highest Version is current.
type CallerPeriod struct {
	Caller string
	// Start is the start of the hour or day.
	Start      time.Time
	Calls      uint32
	Answered   uint32
	ShortCalls uint32
	Rejected   uint32
	TalkS      uint32
	// DistinctCallees is exact for callers with detailed windows and an
	// upper bound for callers that only ever had compact state.
	DistinctCallees uint32
	// Version is the watermark minute at emission (Unix minutes).
	Version uint64
}

// NetworkMinute is the whole stream's traffic in one minute.
type NetworkMinute struct {
	Minute     time.Time
	Calls      uint64
	Answered   uint64
	ShortCalls uint64
	Rejected   uint64
	TalkS      uint64
}

// counter is one caller's running figures for one period.
type counter struct {
	calls, answered, short, rejected, distinct uint32
	talk                                       uint32
}

// dayCounter is one caller's running figures for its current UTC day and
// hour (and the previous hour, until its last change is emitted).
type dayCounter struct {
	counter
	day       uint32 // ts/86400 + 1; 0 = none
	hour      uint32 // ts/3600 + 1
	hourC     counter
	prevHour  uint32 // a closed hour whose last change awaits emission; 0 = none
	prevHourC counter
	dirty     bool // changed since last emitted
}

func (d *counter) add(cl *call, newCallee bool) {
	d.calls++
	d.talk += cl.talk
	if cl.answered {
		d.answered++
	}
	if cl.short {
		d.short++
	}
	if cl.rejected {
		d.rejected++
	}
	if newCallee {
		d.distinct++
	}
}

type dayKey struct {
	caller uint64
	day    uint32
}

type minuteKey struct {
	caller uint64
	minute uint32
}

// minuteAcc is one caller's open minute; its distinct count comes from
// the callees it remembers (exact up to four, then every call counts).
type minuteAcc struct {
	counter
	peers [4]uint64
}

// aggregator keeps the per-caller and network aggregates of an engine's
// caller table. Rows are emitted when the watermark closes their minute;
// day rows are re-emitted with a rising version as they change, so a sink
// that keeps the highest version per (caller, day) is exact and a replay
// writes the same rows again.
type aggregator struct {
	e       *Engine
	floor   uint32
	days    map[uint64]dayCounter // the current day of every caller
	late    map[dayKey]dayCounter // previous days still open
	dirty   []uint64
	names   map[uint64]string // callers above the floor that are not numbers
	minutes map[minuteKey]minuteAcc
	net     map[uint32]counter
	closed  uint32 // minutes before this one are closed
	buf     []byte
	// lateRecords counts records too late for their closed minute or day.
	lateRecords uint64
}

func newAggregator(e *Engine) *aggregator {
	return &aggregator{
		e:       e,
		floor:   uint32(e.cfg.CallerFloor),
		days:    map[uint64]dayCounter{},
		late:    map[dayKey]dayCounter{},
		names:   map[uint64]string{},
		minutes: map[minuteKey]minuteAcc{},
		net:     map[uint32]counter{},
	}
}

// add counts a caller's call.
func (a *aggregator) add(key uint64, caller string, callee uint64, newCallee bool, cl *call) {
	d := a.days[key]
	day := cl.ts/86400 + 1
	if d.day != day {
		if day < d.day {
			// A late record for the caller's previous day.
			k := dayKey{key, day}
			if old, ok := a.late[k]; ok {
				old.add(cl, newCallee)
				a.late[k] = old
			} else {
				a.lateRecords++
			}
			return
		}
		if d.calls > 0 && d.day*86400 > a.closed*60 {
			// The old day is still open to late records; its last row
			// is emitted when the watermark closes it.
			a.late[dayKey{key, d.day}] = dayCounter{counter: d.counter, day: d.day}
		}
		prevHour, prevHourC := d.prevHour, d.prevHourC
		if d.dirty && d.hour != 0 {
			prevHour, prevHourC = d.hour, d.hourC
		}
		d = dayCounter{day: day, prevHour: prevHour, prevHourC: prevHourC, dirty: d.dirty && prevHour != 0}
	}
	d.add(cl, newCallee)
	hour := cl.ts/3600 + 1
	switch {
	case hour == d.hour:
		d.hourC.add(cl, newCallee)
	case hour > d.hour:
		if d.dirty && d.hour != 0 {
			d.prevHour, d.prevHourC = d.hour, d.hourC // emit its last change first
		}
		d.hour, d.hourC = hour, counter{}
		d.hourC.add(cl, newCallee)
	default:
		a.lateRecords++ // too late for its hour row; the day row counts it
	}
	if d.calls >= a.floor {
		if key&keyOpaque != 0 && d.calls == a.floor {
			if _, ok := a.names[key]; !ok {
				a.names[key] = strings.Clone(caller)
			}
		}
		if !d.dirty {
			d.dirty = true
			a.dirty = append(a.dirty, key)
		}
	}
	a.days[key] = d
	if d.calls < a.floor {
		return
	}
	minute := cl.ts / 60
	if minute < a.closed {
		a.lateRecords++
		return
	}
	k := minuteKey{key, minute}
	m := a.minutes[k]
	m.add(cl, false)
	seen := false
	for _, p := range m.peers {
		seen = seen || p == callee
	}
	if !seen {
		m.distinct++
		if n := m.distinct; n <= uint32(len(m.peers)) {
			m.peers[n-1] = callee
		}
	}
	a.minutes[k] = m
}

// network counts a call in the network totals.
func (a *aggregator) network(cl *call) {
	minute := cl.ts / 60
	if minute < a.closed {
		return
	}
	n := a.net[minute]
	n.add(cl, false)
	a.net[minute] = n
}

// advance closes the minutes that end at or before the watermark wm and
// emits their rows (unless the engine is quiet: a rebuild replays records
// whose rows were already written).
func (a *aggregator) advance(wm uint32, out *Output) {
	upto := wm / 60
	if upto <= a.closed {
		return
	}
	a.closed = upto
	quiet := a.e.quiet
	start := len(out.NetworkMinutes)
	for m, n := range a.net {
		if m >= upto {
			continue
		}
		if !quiet {
			out.NetworkMinutes = append(out.NetworkMinutes, NetworkMinute{
				Minute: tsTime(m * 60), Calls: uint64(n.calls), Answered: uint64(n.answered), ShortCalls: uint64(n.short),
				Rejected: uint64(n.rejected), TalkS: uint64(n.talk)})
		}
		delete(a.net, m)
	}
	slices.SortFunc(out.NetworkMinutes[start:], func(x, y NetworkMinute) int { return x.Minute.Compare(y.Minute) })

	start = len(out.CallerMinutes)
	for k, m := range a.minutes {
		if k.minute >= upto {
			continue
		}
		if !quiet {
			out.CallerMinutes = append(out.CallerMinutes, CallerMinute{
				Caller: a.name(k.caller), Minute: tsTime(k.minute * 60), Calls: m.calls, Answered: m.answered,
				ShortCalls: m.short, Rejected: m.rejected, TalkS: m.talk, DistinctCallees: m.distinct})
		}
		delete(a.minutes, k)
	}
	slices.SortFunc(out.CallerMinutes[start:], func(x, y CallerMinute) int {
		return cmp.Or(x.Minute.Compare(y.Minute), strings.Compare(x.Caller, y.Caller))
	})

	if quiet {
		return // dirty day rows wait for the first emitting advance
	}
	version := uint64(fromTS(upto*60) / 60000)
	start = len(out.CallerDays)
	startH := len(out.CallerHours)
	for _, key := range a.dirty {
		d, ok := a.days[key]
		if !ok || !d.dirty {
			continue
		}
		if d.prevHour != 0 {
			out.CallerHours = append(out.CallerHours, a.hourRow(key, d.prevHour, &d.prevHourC, version))
		}
		if d.calls >= a.floor {
			out.CallerDays = append(out.CallerDays, a.dayRow(key, &d, version))
			out.CallerHours = append(out.CallerHours, a.hourRow(key, d.hour, &d.hourC, version))
		}
		d.dirty, d.prevHour, d.prevHourC = false, 0, counter{}
		a.days[key] = d
	}
	a.dirty = a.dirty[:0]
	slices.SortFunc(out.CallerHours[startH:], comparePeriods)
	for k, d := range a.late {
		if k.day*86400 > wm {
			continue // that day is still open
		}
		if d.calls >= a.floor {
			out.CallerDays = append(out.CallerDays, a.dayRow(k.caller, &d, version))
		}
		delete(a.late, k)
	}
	slices.SortFunc(out.CallerDays[start:], comparePeriods)
}

func (a *aggregator) dayRow(key uint64, d *dayCounter, version uint64) CallerPeriod {
	return a.periodRow(key, (d.day-1)*86400, &d.counter, version)
}

func (a *aggregator) hourRow(key uint64, hour uint32, c *counter, version uint64) CallerPeriod {
	return a.periodRow(key, (hour-1)*3600, c, version)
}

// periodRow is the row of a caller's period starting at ts.
func (a *aggregator) periodRow(key uint64, ts uint32, c *counter, version uint64) CallerPeriod {
	return CallerPeriod{Caller: a.name(key), Start: tsTime(ts), Calls: c.calls, Answered: c.answered,
		ShortCalls: c.short, Rejected: c.rejected, TalkS: c.talk, DistinctCallees: min(c.distinct, c.calls), Version: version}
}

// comparePeriods orders period rows by start, then caller.
func comparePeriods(x, y CallerPeriod) int {
	return cmp.Or(x.Start.Compare(y.Start), strings.Compare(x.Caller, y.Caller))
}

// name returns the caller number of a caller key.
func (a *aggregator) name(key uint64) string {
	if b, ok := unpackKey(a.buf[:0], key); ok {
		a.buf = b
		return string(b)
	}
	return a.names[key]
}

// flush emits every open row, as if the watermark had passed them: the end
// of a replay.
func (a *aggregator) flush(out *Output) {
	a.advance(^uint32(0)-86400*2, out)
}

// sweep forgets callers whose day closed more than a day ago.
func (a *aggregator) sweep() {
	closedDay := a.closed * 60 / 86400 // days up to this one (1-based) are over
	for k, d := range a.days {
		if d.day+1 < closedDay && !d.dirty {
			delete(a.days, k)
			delete(a.names, k)
		}
	}
}
