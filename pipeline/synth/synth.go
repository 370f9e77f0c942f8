// Package synth generates a synthetic carrier day of CDRs with ground
// truth: ordinary subscribers, couriers, company switchboards, call-centre
// callbacks, enterprise SIP trunks, service desks calling customers back
// and a known bulk notifier (all legitimate), and the robo-dialer patterns
// cdrguard exists to catch — telemarketing agents, new hires, low-and-slow
// dialers, SIM rotation on a handset, SIM-box gateways, AI dialer pools on
// one SIP trunk or spread thinly over several, pitch dialers, repeat
// harassers, shops re-dialling the people who refused them and war
// diallers. Records come in arrival order: a record
// appears when its call ends, and collectors ship batches shuffled within
// the batch. The same seed gives the same day.
package synth

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/cdrguard/cdrguard/schemas"
)

// Class is a ground-truth population.
type Class string

// Classes. The robo-dialer classes are those for which Robo is true.
const (
	Ordinary     Class = "ordinary"
	Courier      Class = "courier"
	Switchboard  Class = "switchboard"
	CallCentre   Class = "call_centre"
	BulkNotifier Class = "bulk_notifier" // legitimate, allowlisted
	Enterprise   Class = "enterprise_trunk"
	CallbackDesk Class = "callback_desk"
	Telemarketer Class = "telemarketer"
	NewHire      Class = "new_hire"
	LowAndSlow   Class = "low_and_slow"
	SIMRotation  Class = "sim_rotation"
	AIPool       Class = "ai_pool"
	Harasser     Class = "harasser"
	WarDialler   Class = "war_dialler"
	SIMBox       Class = "sim_box"
	SpreadPool   Class = "spread_pool"
	PitchDialler Class = "pitch_dialler"
	Redialler    Class = "redialler"
)

// Robo reports whether the class is a robo-dialer pattern.
func (c Class) Robo() bool {
	switch c {
	case Telemarketer, NewHire, LowAndSlow, SIMRotation, AIPool, Harasser, WarDialler,
		SIMBox, SpreadPool, PitchDialler, Redialler:
		return true
	}
	return false
}

// Label is the ground truth of one subject.
type Label struct {
	// Kind is "caller" or a source kind ("trunk", "imei", "source_ip").
	Kind string `json:"kind"`
	// Subject is the number or source identifier.
	Subject string `json:"subject"`
	// Class is the population it belongs to.
	Class Class `json:"class"`
	// Robo is true for robo-dialer classes.
	Robo bool `json:"robo"`
	// Calls is how many calls the subject made (or carried) in the day.
	Calls int `json:"calls"`
}

// Config sizes the day. Zero fields take defaults; Scale multiplies every
// population (1 gives about half a million records).
type Config struct {
	// Seed makes the day reproducible.
	Seed uint64
	// Day is the UTC day to generate (its date is used). Default
	// 2026-11-02.
	Day time.Time
	// Scale multiplies every population. Default 1.
	Scale float64
	// BatchSeconds is the collectors' shipping period. Default 30.
	BatchSeconds int
	// Duplicates is the share of records a mediation system delivers
	// twice, the copy a few minutes after the original. Default 0.
	Duplicates float64
	// ResentBatches is how many whole shipping batches a collector
	// re-sends after a restart, 20 to 60 minutes after the original.
	// Default 0.
	ResentBatches int
	// BulkPrefix is the number prefix of the legitimate bulk notifier,
	// which the default rules file allowlists. Default "+1800555".
	BulkPrefix string
}

// Population sizes at scale 1.
const (
	nOrdinary     = 100000
	nCourier      = 200
	nSwitchboard  = 20
	nCallCentre   = 10
	nBulk         = 3
	nTelemarketer = 30
	nNewHire      = 20
	nLowAndSlow   = 20
	nSIMDevice    = 10
	nAIPool       = 5
	nHarasser     = 30
	nWarDialler   = 5
	nEnterprise   = 5
	nCallbackDesk = 20
	nSIMBox       = 3
	nSpreadPool   = 3
	nPitchDialler = 6
	nRedialler    = 10
	nExchanges    = 20
)

// Day is a generated day: records in arrival order and the ground truth.
type Day struct {
	// Records in arrival order.
	Records []schemas.CDR
	// Labels of every caller and of the labelled sources.
	Labels []Label
	// Duplicates is how many of Records are copies of another
	// (Config.Duplicates and Config.ResentBatches).
	Duplicates int
}

type gen struct {
	cfg    Config
	rng    *rand.Rand
	day    int64 // day start, Unix ms
	recs   []schemas.CDR
	labels map[string]*Label
	order  []string
	used   map[string]bool
	subs   []string // ordinary subscribers' numbers, as callees
	seq    int
}

// Generate builds a day.
func Generate(cfg Config) *Day {
	if cfg.Day.IsZero() {
		cfg.Day = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	}
	if cfg.Scale <= 0 {
		cfg.Scale = 1
	}
	if cfg.BatchSeconds <= 0 {
		cfg.BatchSeconds = 30
	}
	if cfg.BulkPrefix == "" {
		cfg.BulkPrefix = "+1800555"
	}
	y, m, d := cfg.Day.UTC().Date()
	g := &gen{
		cfg:    cfg,
		rng:    rand.New(rand.NewPCG(cfg.Seed, 0x63647267756172)),
		day:    time.Date(y, m, d, 0, 0, 0, 0, time.UTC).UnixMilli(),
		labels: map[string]*Label{},
		used:   map[string]bool{},
	}
	g.run()
	recs, dups := g.arrivalOrder()
	return &Day{Records: recs, Labels: g.labelList(), Duplicates: dups}
}

func (g *gen) n(base int) int { return max(1, int(math.Round(float64(base)*g.cfg.Scale))) }

func (g *gen) run() {
	nOrd := g.n(nOrdinary)
	g.subs = make([]string, nOrd)
	for i := range g.subs {
		g.subs[i] = g.newNumber()
	}
	g.ordinary()
	for range g.n(nCourier) {
		g.courier(g.newNumber())
	}
	for i := range g.n(nSwitchboard) {
		g.switchboard(i)
	}
	for i := range g.n(nCallCentre) {
		g.callCentre(i)
	}
	for i := range nBulk {
		g.bulkNotifier(fmt.Sprintf("%s%04d", g.cfg.BulkPrefix, 100+i))
	}
	for range g.n(nTelemarketer) {
		g.agent(g.newNumber(), Telemarketer, 2000, 250.0/40)
	}
	for range g.n(nNewHire) {
		g.agent(g.newNumber(), NewHire, 600, 600.0/(9*60))
	}
	for range g.n(nLowAndSlow) {
		g.lowAndSlow(g.newNumber())
	}
	for i := range g.n(nSIMDevice) {
		g.simRotation(i)
	}
	for i := range g.n(nAIPool) {
		g.aiPool(i)
	}
	for range g.n(nHarasser) {
		g.harasser(g.newNumber())
	}
	for range g.n(nWarDialler) {
		g.warDialler(g.newNumber())
	}
	for i := range g.n(nEnterprise) {
		g.enterprise(i)
	}
	for i := range g.n(nCallbackDesk) {
		g.callbackDesk(i)
	}
	for i := range g.n(nSIMBox) {
		g.simBox(i)
	}
	for i := range g.n(nSpreadPool) {
		g.spreadPool(i)
	}
	for range g.n(nPitchDialler) {
		g.pitchDialler(g.newNumber())
	}
	for range g.n(nRedialler) {
		g.redialler(g.newNumber())
	}
}

// newNumber returns an unused NANP-style E.164 number.
func (g *gen) newNumber() string {
	for {
		npa := 201 + g.rng.IntN(788)
		if npa%100 == 11 || npa/100 == 8 && npa%11 == 0 { // N11 codes, toll-free 8xx
			continue
		}
		s := fmt.Sprintf("+1%03d%03d%04d", npa, 200+g.rng.IntN(800), g.rng.IntN(10000))
		if !g.used[s] {
			g.used[s] = true
			return s
		}
	}
}

// randomCallee is a number somewhere on the network (a subscriber or not).
func (g *gen) randomCallee() string {
	if g.rng.IntN(2) == 0 {
		return g.subs[g.rng.IntN(len(g.subs))]
	}
	return fmt.Sprintf("+1%03d%03d%04d", 201+g.rng.IntN(788), 200+g.rng.IntN(800), g.rng.IntN(10000))
}

func (g *gen) label(kind, subject string, class Class) *Label {
	k := kind + "\x00" + subject
	l, ok := g.labels[k]
	if !ok {
		l = &Label{Kind: kind, Subject: subject, Class: class, Robo: class.Robo()}
		g.labels[k] = l
		g.order = append(g.order, k)
	}
	return l
}

// Source identities of a call.
type origin struct {
	trunk, ip, imsi, imei, cell string
	attest                      byte
}

type mobile struct{ imsi, imei, cell string }

func (g *gen) newMobile() mobile {
	return mobile{
		imsi: "310" + strconv.FormatUint(260000000000+g.rng.Uint64N(99999999999), 10),
		imei: "35" + strconv.FormatUint(1000000000000+g.rng.Uint64N(8999999999999), 10),
		cell: fmt.Sprintf("cell-%04d", g.rng.IntN(3000)),
	}
}

// outcome of one call attempt.
type outcome struct {
	disp  schemas.Disposition
	cause uint16
	ringS float64 // until answer or release
	talkS int32
}

func (g *gen) answered(talk float64) outcome {
	return outcome{disp: schemas.Answered, cause: 16, ringS: 3 + g.rng.Float64()*15, talkS: int32(max(1, math.Round(talk)))}
}

func (g *gen) unanswered() outcome {
	switch r := g.rng.Float64(); {
	case r < 0.70:
		return outcome{disp: schemas.NoAnswer, cause: 19, ringS: 20 + g.rng.Float64()*25}
	case r < 0.85:
		return outcome{disp: schemas.Busy, cause: 17, ringS: 0.5 + g.rng.Float64()}
	case r < 0.95:
		return outcome{disp: schemas.Rejected, cause: 21, ringS: 2 + g.rng.Float64()*8}
	default:
		return outcome{disp: schemas.Failed, cause: 34, ringS: 0.5 + g.rng.Float64()}
	}
}

// nuisance is the outcome of a robo-dialer's call: mostly unanswered or
// rejected, and when answered mostly hung up within seconds.
func (g *gen) nuisance() outcome {
	switch r := g.rng.Float64(); {
	case r < 0.42:
		return outcome{disp: schemas.NoAnswer, cause: 19, ringS: 15 + g.rng.Float64()*20}
	case r < 0.62:
		return outcome{disp: schemas.Rejected, cause: 21, ringS: 2 + g.rng.Float64()*6}
	case r < 0.67:
		return outcome{disp: schemas.Busy, cause: 17, ringS: 0.5 + g.rng.Float64()}
	case r < 0.90:
		return g.answered(1 + g.rng.Float64()*7)
	default:
		return g.answered(10 + g.rng.ExpFloat64()*40)
	}
}

// lognormal with the given median and sigma.
func (g *gen) lognormal(median, sigma float64) float64 {
	return median * math.Exp(sigma*g.rng.NormFloat64())
}

// at returns the Unix ms of a second-of-day offset.
func (g *gen) at(sec float64) int64 { return g.day + int64(sec*1000) }

// call appends one CDR.
func (g *gen) call(caller, callee string, startSec float64, o outcome, src origin) {
	if startSec < 0 || startSec >= 86400 {
		return
	}
	g.seq++
	start := g.at(startSec)
	c := schemas.CDR{
		CallID:      fmt.Sprintf("c%x-%07d", g.cfg.Seed&0xffff, g.seq),
		Caller:      caller,
		Callee:      callee,
		StartMS:     start,
		Disposition: o.disp,
		CauseCode:   o.cause,
		Trunk:       src.trunk,
		SourceIP:    src.ip,
		IMSI:        src.imsi,
		IMEI:        src.imei,
		CellID:      src.cell,
		Attestation: src.attest,
	}
	ring := int64(o.ringS * 1000)
	if o.disp == schemas.Answered {
		c.AnswerMS = start + ring
		c.EndMS = c.AnswerMS + int64(o.talkS)*1000
		c.SetDuration(o.talkS)
	} else {
		c.EndMS = start + ring
		c.SetDuration(0)
	}
	g.recs = append(g.recs, c)
	g.label("caller", caller, "").Calls++
	for _, s := range [...]struct{ kind, id string }{{"trunk", src.trunk}, {"imei", src.imei}, {"source_ip", src.ip}} {
		if s.id == "" {
			continue
		}
		if l, ok := g.labels[s.kind+"\x00"+s.id]; ok {
			l.Calls++
		}
	}
}

// diurnal hour weights for ordinary calling (sum is irrelevant).
var diurnal = [24]float64{0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.4, 1.2, 2.2, 2.8, 3, 3, 3, 2.8, 2.8, 2.8, 3, 3.2, 3.4, 3.2, 2.8, 2.2, 1.4, 0.6}

func (g *gen) diurnalSecond() float64 {
	var total float64
	for _, w := range diurnal {
		total += w
	}
	r := g.rng.Float64() * total
	for h, w := range diurnal {
		if r < w {
			return float64(h)*3600 + g.rng.Float64()*3600
		}
		r -= w
	}
	return 23*3600 + g.rng.Float64()*3600
}

// between returns a uniform time of day between two hours.
func (g *gen) between(fromH, toH float64) float64 {
	return (fromH + g.rng.Float64()*(toH-fromH)) * 3600
}

func (g *gen) poisson(mean float64) int {
	// Knuth for small means, normal approximation for large.
	if mean > 30 {
		return max(0, int(math.Round(mean+math.Sqrt(mean)*g.rng.NormFloat64())))
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= g.rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// ordinary subscribers: a few calls a day to a handful of contacts, some
// retries after an unanswered call; mobiles and landlines.
func (g *gen) ordinary() {
	nEx := max(1, g.n(nExchanges))
	for i := range nEx {
		g.label("trunk", fmt.Sprintf("tr-pstn-%02d", i), Ordinary)
	}
	for _, num := range g.subs {
		g.label("caller", num, Ordinary)
		var src origin
		if g.rng.Float64() < 0.65 {
			m := g.newMobile()
			src = origin{imsi: m.imsi, imei: m.imei, cell: m.cell, attest: 'A'}
		} else {
			src = origin{trunk: fmt.Sprintf("tr-pstn-%02d", g.rng.IntN(nEx)), attest: 'A'}
		}
		contacts := make([]string, 3+g.rng.IntN(12))
		for j := range contacts {
			contacts[j] = g.randomCallee()
		}
		mean := 2.0
		if g.rng.Float64() < 0.2 {
			mean = 6
		}
		for range g.poisson(mean) {
			// Zipf-like preference for the first contacts.
			callee := contacts[min(len(contacts)-1, int(g.rng.ExpFloat64()*2.5))]
			if g.rng.Float64() < 0.15 {
				callee = g.randomCallee()
			}
			t := g.diurnalSecond()
			for attempt := 0; attempt < 3; attempt++ {
				var o outcome
				if g.rng.Float64() < 0.72 {
					o = g.answered(g.lognormal(70, 1.1))
				} else {
					o = g.unanswered()
				}
				g.call(num, callee, t, o, src)
				if o.disp == schemas.Answered || g.rng.Float64() > 0.3 {
					break
				}
				t += 120 + g.rng.Float64()*1200
			}
		}
	}
}

// couriers: a hundred-odd short answered calls a day to distinct customers.
func (g *gen) courier(num string) {
	g.label("caller", num, Courier)
	m := g.newMobile()
	src := origin{imsi: m.imsi, imei: m.imei, cell: m.cell, attest: 'A'}
	n := 80 + g.rng.IntN(81)
	for range n {
		t := g.between(8, 19)
		callee := g.randomCallee()
		if g.rng.Float64() < 0.85 {
			g.call(num, callee, t, g.answered(g.lognormal(25, 0.5)), src)
			continue
		}
		g.call(num, callee, t, g.unanswered(), src)
		if g.rng.Float64() < 0.5 {
			g.call(num, callee, t+60+g.rng.Float64()*240, g.answered(g.lognormal(20, 0.5)), src)
		}
	}
}

// switchboards: a company's main number makes hundreds of long answered
// calls a day through its SIP trunk; employees' direct lines share it.
func (g *gen) switchboard(i int) {
	trunk := fmt.Sprintf("tr-corp-%02d", i)
	ip := fmt.Sprintf("198.51.100.%d", 10+i)
	g.label("trunk", trunk, Switchboard)
	g.label("source_ip", ip, Switchboard)
	src := origin{trunk: trunk, ip: ip, attest: 'A'}
	main := g.newNumber()
	g.label("caller", main, Switchboard)
	for range 200 + g.rng.IntN(401) {
		o := g.answered(g.lognormal(180, 0.8))
		if g.rng.Float64() < 0.1 {
			o = g.unanswered()
		}
		g.call(main, g.randomCallee(), g.between(9, 17), o, src)
	}
	for range 20 + g.rng.IntN(31) {
		did := g.newNumber()
		g.label("caller", did, Switchboard)
		for range 5 + g.rng.IntN(11) {
			o := g.answered(g.lognormal(150, 1))
			if g.rng.Float64() < 0.2 {
				o = g.unanswered()
			}
			g.call(did, g.randomCallee(), g.between(8.5, 18), o, src)
		}
	}
}

// call centres: agents call customers back; an unanswered callback is
// retried up to twice, half an hour or more apart.
func (g *gen) callCentre(i int) {
	trunk := fmt.Sprintf("tr-cc-%02d", i)
	ip := fmt.Sprintf("198.51.100.%d", 100+i)
	g.label("trunk", trunk, CallCentre)
	g.label("source_ip", ip, CallCentre)
	src := origin{trunk: trunk, ip: ip, attest: 'A'}
	for range 20 + g.rng.IntN(21) {
		agent := g.newNumber()
		g.label("caller", agent, CallCentre)
		for range (60 + g.rng.IntN(61)) * 2 / 3 {
			customer := g.randomCallee()
			t := g.between(9, 17)
			for attempt := 0; attempt < 3; attempt++ {
				var o outcome
				if g.rng.Float64() < 0.6 {
					o = g.answered(g.lognormal(240, 0.7))
				} else {
					o = g.unanswered()
				}
				g.call(agent, customer, t, o, src)
				if o.disp == schemas.Answered {
					break
				}
				t += 1800 + g.rng.Float64()*3600
			}
		}
	}
}

// bulkNotifier: a legitimate automated notifier (appointment reminders):
// a thousand short calls a day, allowlisted by the carrier.
func (g *gen) bulkNotifier(num string) {
	g.label("caller", num, BulkNotifier)
	src := origin{trunk: "tr-notify", ip: "198.51.100.200", attest: 'A'}
	g.label("trunk", "tr-notify", BulkNotifier)
	g.label("source_ip", "198.51.100.200", BulkNotifier)
	for range 1000 {
		o := g.answered(4 + g.rng.Float64()*10)
		if g.rng.Float64() < 0.4 {
			o = g.unanswered()
		}
		g.call(num, g.randomCallee(), g.between(9, 19), o, src)
	}
}

// agent: a call-shop agent on their own SIM dialling `total` calls at
// `perMin` calls a minute in sessions with breaks, re-dialling some who
// refused.
func (g *gen) agent(num string, class Class, total int, perMin float64) {
	g.label("caller", num, class)
	m := g.newMobile()
	src := origin{imsi: m.imsi, imei: m.imei, cell: m.cell, attest: 'A'}
	total = total*9/10 + g.rng.IntN(total/5+1)
	t := g.between(8.5, 10)
	var refused []string
	sessionLeft := 0
	for made := 0; made < total && t < 21*3600; made++ {
		if sessionLeft == 0 {
			if made > 0 {
				t += 600 + g.rng.Float64()*900 // a break
			}
			sessionLeft = 150 + g.rng.IntN(200)
		}
		sessionLeft--
		callee := g.randomCallee()
		if len(refused) > 0 && g.rng.Float64() < 0.08 {
			callee = refused[g.rng.IntN(len(refused))]
		}
		o := g.nuisance()
		if o.disp == schemas.Rejected && len(refused) < 200 {
			refused = append(refused, callee)
		}
		g.call(num, callee, t, o, src)
		t += g.rng.ExpFloat64() * 60 / perMin
	}
}

// lowAndSlow: 40–60 short calls an hour, all day.
func (g *gen) lowAndSlow(num string) {
	g.label("caller", num, LowAndSlow)
	src := origin{trunk: fmt.Sprintf("tr-pstn-%02d", g.rng.IntN(max(1, g.n(nExchanges)))), attest: 'B'}
	rate := 40 + g.rng.Float64()*20
	for t := g.between(7, 9); t < 22*3600; t += g.rng.ExpFloat64() * 3600 / rate {
		g.call(num, g.randomCallee(), t, g.nuisance(), src)
	}
}

// simRotation: a SIM box (one IMEI) cycling through SIM cards so that no
// number makes many calls.
func (g *gen) simRotation(i int) {
	dev := g.newMobile()
	g.label("imei", dev.imei, SIMRotation)
	sims := make([]struct{ num, imsi string }, 40)
	for j := range sims {
		sims[j].num = g.newNumber()
		sims[j].imsi = g.newMobile().imsi
		g.label("caller", sims[j].num, SIMRotation)
	}
	t := g.between(8, 10)
	for made := 0; made < 600 && t < 21*3600; made++ {
		s := sims[(made/15)%len(sims)]
		g.call(s.num, g.randomCallee(), t, g.nuisance(), origin{imsi: s.imsi, imei: dev.imei, cell: dev.cell, attest: 'A'})
		t += g.rng.ExpFloat64() * 60
	}
	_ = i
}

// aiPool: an "AI" auto-dialer on a SIP trunk presenting a pool of landline
// numbers, each used lightly.
func (g *gen) aiPool(i int) {
	trunk := fmt.Sprintf("tr-voip-%02d", i)
	ip := fmt.Sprintf("203.0.113.%d", 10+i)
	g.label("trunk", trunk, AIPool)
	g.label("source_ip", ip, AIPool)
	pool := make([]string, 150)
	for j := range pool {
		pool[j] = g.newNumber()
		g.label("caller", pool[j], AIPool)
	}
	src := origin{trunk: trunk, ip: ip, attest: 'C'}
	for t := g.between(8, 9); t < 21*3600; t += g.rng.ExpFloat64() * 15.6 {
		g.call(pool[g.rng.IntN(len(pool))], g.randomCallee(), t, g.nuisance(), src)
	}
}

// harasser: an ordinary-looking number that calls one or two victims again
// and again although they reject the calls.
func (g *gen) harasser(num string) {
	g.label("caller", num, Harasser)
	m := g.newMobile()
	src := origin{imsi: m.imsi, imei: m.imei, cell: m.cell, attest: 'A'}
	for range 1 + g.rng.IntN(2) {
		victim := g.subs[g.rng.IntN(len(g.subs))]
		n := 8 + g.rng.IntN(13)
		t := g.between(8, 12)
		for range n {
			var o outcome
			switch r := g.rng.Float64(); {
			case r < 0.5:
				o = outcome{disp: schemas.Rejected, cause: 21, ringS: 1 + g.rng.Float64()*5}
			case r < 0.8:
				o = outcome{disp: schemas.NoAnswer, cause: 19, ringS: 20 + g.rng.Float64()*20}
			case r < 0.9:
				o = g.answered(1 + g.rng.Float64()*6)
			default:
				o = g.answered(g.lognormal(30, 0.5))
			}
			g.call(num, victim, t, o, src)
			t += 300 + g.rng.ExpFloat64()*2400
		}
	}
	for range 2 + g.rng.IntN(4) {
		g.call(num, g.randomCallee(), g.diurnalSecond(), g.answered(g.lognormal(60, 1)), src)
	}
}

// warDialler: dials a block of consecutive numbers.
func (g *gen) warDialler(num string) {
	g.label("caller", num, WarDialler)
	src := origin{trunk: fmt.Sprintf("tr-pstn-%02d", g.rng.IntN(max(1, g.n(nExchanges)))), attest: 'B'}
	base := fmt.Sprintf("+1%03d%03d", 201+g.rng.IntN(788), 200+g.rng.IntN(800))
	line := g.rng.IntN(2000)
	t := g.between(10, 16)
	end := t + (1+g.rng.Float64())*3600
	for ; t < end && line < 10000; line++ {
		var o outcome
		switch r := g.rng.Float64(); {
		case r < 0.4:
			o = outcome{disp: schemas.Failed, cause: 1, ringS: 0.5 + g.rng.Float64()}
		case r < 0.75:
			o = outcome{disp: schemas.NoAnswer, cause: 19, ringS: 15 + g.rng.Float64()*15}
		case r < 0.92:
			o = g.answered(1 + g.rng.Float64()*5)
		default:
			o = g.answered(10 + g.rng.ExpFloat64()*20)
		}
		g.call(num, fmt.Sprintf("%s%04d", base, line), t, o, src)
		t += 4 + g.rng.ExpFloat64()*4
	}
}

// enterprise: a company's SIP trunk with hundreds of direct-dial numbers,
// each used a few times a day, mostly for long answered calls.
func (g *gen) enterprise(i int) {
	trunk := fmt.Sprintf("tr-ent-%02d", i)
	ip := fmt.Sprintf("198.51.100.%d", 150+i)
	g.label("trunk", trunk, Enterprise)
	g.label("source_ip", ip, Enterprise)
	src := origin{trunk: trunk, ip: ip, attest: 'A'}
	for range 200 + g.rng.IntN(301) {
		did := g.newNumber()
		g.label("caller", did, Enterprise)
		for range 1 + g.poisson(3) {
			o := g.answered(g.lognormal(200, 1))
			if g.rng.Float64() < 0.35 {
				o = g.unanswered()
			}
			g.call(did, g.randomCallee(), g.between(8, 18.5), o, src)
		}
	}
}

// callbackDesk: a service desk's switchboard (a clinic, a repair shop)
// calling its customers back several times a day as their case moves on.
// A busy or unanswered callback is retried a quarter of an hour or more
// later, and some customers' lines are often busy.
func (g *gen) callbackDesk(i int) {
	trunk := fmt.Sprintf("tr-desk-%02d", i)
	ip := fmt.Sprintf("198.51.100.%d", 50+i)
	g.label("trunk", trunk, CallbackDesk)
	g.label("source_ip", ip, CallbackDesk)
	src := origin{trunk: trunk, ip: ip, attest: 'A'}
	desk := g.newNumber()
	g.label("caller", desk, CallbackDesk)
	for range 30 + g.rng.IntN(51) {
		customer := g.randomCallee()
		busy := 0.1
		if g.rng.Float64() < 0.25 {
			busy = 0.5 // often on the phone
		}
		t := g.between(8.5, 12)
		for range 2 + g.rng.IntN(3) { // the case moves on
			for attempt := 0; attempt < 3 && t < 18*3600; attempt++ {
				var o outcome
				switch r := g.rng.Float64(); {
				case r < busy:
					o = outcome{disp: schemas.Busy, cause: 17, ringS: 0.5 + g.rng.Float64()}
				case r < busy+0.1:
					o = outcome{disp: schemas.NoAnswer, cause: 19, ringS: 20 + g.rng.Float64()*25}
				default:
					o = g.answered(g.lognormal(150, 0.8))
				}
				g.call(desk, customer, t, o, src)
				if o.disp == schemas.Answered {
					break
				}
				t += 900 + g.rng.Float64()*1800
			}
			t += 3600 + g.rng.Float64()*7200
		}
	}
}

// simBox: a SIM-box gateway: several GSM modules (IMEIs) fed from a SIM
// bank that rotates its SIMs over the modules call by call. Each SIM makes
// a few dozen calls and is thrown away for a fresh one, so no number and
// no SIM lasts long enough to stand out: only the modules show the
// rotation.
func (g *gen) simBox(i int) {
	type sim struct {
		num, imsi string
		left      int
	}
	fresh := func() sim {
		s := sim{num: g.newNumber(), imsi: g.newMobile().imsi, left: 20 + g.rng.IntN(30)}
		g.label("caller", s.num, SIMBox)
		return s
	}
	cell := fmt.Sprintf("cell-%04d", g.rng.IntN(3000))
	modules := make([]string, 4+g.rng.IntN(4))
	for m := range modules {
		modules[m] = g.newMobile().imei
		g.label("imei", modules[m], SIMBox)
	}
	bank := make([]sim, 3*len(modules)) // the SIMs seated at a time
	for j := range bank {
		bank[j] = fresh()
	}
	for _, imei := range modules {
		for t, end := g.between(8, 9.5), g.between(19, 21); t < end; t += 60 + g.rng.ExpFloat64()*90 {
			j := g.rng.IntN(len(bank))
			s := &bank[j]
			g.call(s.num, g.randomCallee(), t, g.nuisance(), origin{imsi: s.imsi, imei: imei, cell: cell, attest: 'A'})
			if s.left--; s.left == 0 {
				*s = fresh()
			}
		}
	}
	_ = i
}

// spreadPool: an auto-dialer spreading a pool of landline numbers thinly
// over several SIP trunks, each with its own signalling address, so that
// no trunk carries much of it and no number is used more than a few
// times.
func (g *gen) spreadPool(i int) {
	srcs := make([]origin, 3+g.rng.IntN(4))
	for k := range srcs {
		trunk := fmt.Sprintf("tr-sip-%02d-%d", i, k)
		ip := fmt.Sprintf("203.0.113.%d", 100+10*i+k)
		g.label("trunk", trunk, SpreadPool)
		g.label("source_ip", ip, SpreadPool)
		srcs[k] = origin{trunk: trunk, ip: ip, attest: 'B'}
	}
	pool := make([]string, 200+g.rng.IntN(201))
	for j := range pool {
		pool[j] = g.newNumber()
		g.label("caller", pool[j], SpreadPool)
	}
	perHour := 150 + g.rng.Float64()*100 // over all its trunks
	for t := g.between(8, 9); t < 21*3600; t += g.rng.ExpFloat64() * 3600 / perHour {
		g.call(pool[g.rng.IntN(len(pool))], g.randomCallee(), t, g.nuisance(), srcs[g.rng.IntN(len(srcs))])
	}
}

// pitchDialler: an auto-dialer playing a recorded pitch. Most calls are
// answered and cut off within seconds, when the callee hears the
// recording; a few listen for a while.
func (g *gen) pitchDialler(num string) {
	g.label("caller", num, PitchDialler)
	src := origin{trunk: fmt.Sprintf("tr-pstn-%02d", g.rng.IntN(max(1, g.n(nExchanges)))), attest: 'B'}
	perMin := 1 + g.rng.Float64()*2
	t := g.between(8.5, 10)
	for end := t + (6+4*g.rng.Float64())*3600; t < end; t += g.rng.ExpFloat64() * 60 / perMin {
		var o outcome
		switch r := g.rng.Float64(); {
		case r < 0.2:
			o = outcome{disp: schemas.NoAnswer, cause: 19, ringS: 15 + g.rng.Float64()*20}
		case r < 0.25:
			o = outcome{disp: schemas.Rejected, cause: 21, ringS: 2 + g.rng.Float64()*6}
		case r < 0.88:
			o = g.answered(g.lognormal(9, 0.5)) // cut off
		default:
			o = g.answered(20 + g.rng.ExpFloat64()*60) // listens
		}
		g.call(num, g.randomCallee(), t, o, src)
	}
}

// redialler: a call shop's number working a list at a walking pace and
// calling back, again and again through the day, everyone who refused it,
// until they stop refusing or it gives up on them.
func (g *gen) redialler(num string) {
	g.label("caller", num, Redialler)
	m := g.newMobile()
	src := origin{imsi: m.imsi, imei: m.imei, cell: m.cell, attest: 'A'}
	type target struct {
		callee string
		due    float64
		left   int
	}
	var again []target
	t, end := g.between(8.5, 10), g.between(18, 20)
	for ; t < end; t += 120 + g.rng.ExpFloat64()*240 {
		tg := target{callee: g.randomCallee(), left: 3 + g.rng.IntN(6)}
		var o outcome
		if len(again) > 0 && again[0].due <= t {
			tg, again = again[0], again[1:]
			switch r := g.rng.Float64(); { // someone who refused before
			case r < 0.5:
				o = outcome{disp: schemas.Rejected, cause: 21, ringS: 1 + g.rng.Float64()*5}
			case r < 0.7:
				o = g.answered(1 + g.rng.Float64()*6)
			case r < 0.9:
				o = outcome{disp: schemas.NoAnswer, cause: 19, ringS: 20 + g.rng.Float64()*20}
			default:
				o = g.answered(g.lognormal(40, 0.6))
			}
		} else {
			o = g.nuisance()
		}
		g.call(num, tg.callee, t, o, src)
		refused := o.disp == schemas.Rejected || o.disp == schemas.Busy || o.disp == schemas.Answered && o.talkS < 10
		if tg.left--; refused && tg.left > 0 {
			tg.due = t + 1800 + g.rng.Float64()*5400
			i, _ := slices.BinarySearchFunc(again, tg.due, func(a target, d float64) int { return cmp.Compare(a.due, d) })
			again = slices.Insert(again, i, tg)
		}
	}
}

// arrivalOrder sorts records by when a collector would ship them: a record
// appears when its call ends (plus up to two seconds of mediation), and
// each shipping batch is shuffled. Copies (Config.Duplicates,
// Config.ResentBatches) arrive in later batches; it returns how many.
func (g *gen) arrivalOrder() ([]schemas.CDR, int) {
	type item struct {
		batch int64
		r     uint64
		i     int
	}
	period := int64(g.cfg.BatchSeconds) * 1000
	items := make([]item, 0, len(g.recs))
	for i := range g.recs {
		arrive := g.recs[i].EndMS + g.rng.Int64N(2000)
		items = append(items, item{batch: arrive / period, r: g.rng.Uint64(), i: i})
	}
	n := len(items)
	for j := range n {
		if g.cfg.Duplicates > 0 && g.rng.Float64() < g.cfg.Duplicates {
			again := items[j].batch*period + (60+g.rng.Int64N(240))*1000
			items = append(items, item{batch: again / period, r: g.rng.Uint64(), i: items[j].i})
		}
	}
	if g.cfg.ResentBatches > 0 && n > 0 {
		byBatch := map[int64][]int{}
		for j := range n {
			byBatch[items[j].batch] = append(byBatch[items[j].batch], items[j].i)
		}
		for range g.cfg.ResentBatches {
			b := items[g.rng.IntN(n)].batch
			again := b + (20*60+g.rng.Int64N(40*60))*1000/period
			for _, i := range byBatch[b] {
				items = append(items, item{batch: again, r: g.rng.Uint64(), i: i})
			}
		}
	}
	slices.SortFunc(items, func(a, b item) int {
		if a.batch != b.batch {
			return int(a.batch - b.batch)
		}
		switch {
		case a.r < b.r:
			return -1
		case a.r > b.r:
			return 1
		}
		return 0
	})
	out := make([]schemas.CDR, len(items))
	for j, it := range items {
		out[j] = g.recs[it.i]
	}
	return out, len(items) - n
}

func (g *gen) labelList() []Label {
	out := make([]Label, 0, len(g.order))
	for _, k := range g.order {
		l := g.labels[k]
		if l.Class == "" {
			continue // a callee-only number that never called
		}
		out = append(out, *l)
	}
	return out
}
