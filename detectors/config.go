package detectors

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cdrguard/cdrguard/schemas"
)

// Window is one sliding window size and how finely it slides.
type Window struct {
	// Size is the window's length. Rules name windows by it ("1h").
	Size time.Duration
	// Buckets is how many buckets the window is made of: the window
	// slides one bucket (Size/Buckets) at a time.
	Buckets int
}

// Config tunes an Engine. The zero value of a field means its default.
type Config struct {
	// Windows are the sliding window sizes rules may use. Default 5 min
	// (10 buckets), 1 h (12 buckets) and 24 h (24 buckets).
	Windows []Window
	// Lateness is how far behind the latest start time a record may arrive
	// and still count as on time. Default 10 minutes.
	Lateness time.Duration
	// ShortCallS is the talk time under which an answered call counts as
	// short (unanswered calls are always short). Default 10 s.
	ShortCallS int
	// Kinds are the subject kinds this engine keeps windows for. Default
	// all. A streaming deployment runs callers and sources in separate
	// engines (sources are re-keyed through their own topic).
	Kinds []schemas.SubjectKind
	// DetailCalls is the gate between the compact state every key has and
	// the detailed windows of a busy key: a caller, trunk or address gets
	// detailed windows once it makes this many calls in the current and
	// previous half hour (a caller also when it calls a callee again after
	// a short call, an IMEI or IMSI when it shows a second caller ID).
	// Its calls before that are summarised by the last two. Default 8.
	DetailCalls int
	// ExactPeers is how many distinct callees (or caller IDs) a key counts
	// exactly before it switches to a fixed-size estimate. Default 4096.
	ExactPeers int
	// SketchSlots is the size of that estimate (linear counting with
	// last-seen times). Default 8192; must be a power of two.
	SketchSlots int
	// Aggregates turns on per-caller and network aggregates (Output's
	// CallerMinutes, CallerHours, CallerDays, NetworkMinutes).
	Aggregates bool
	// CallerFloor is the number of calls in a UTC day from which a caller
	// gets aggregate rows. Default 20.
	CallerFloor int
	// StartOrder runs held records in start-time order, released one
	// Lateness after the latest start, instead of the default end order:
	// held records run in end-time order once the end watermark (the
	// WatermarkQuorum-th latest end minus EndLateness, or with an external
	// watermark the one Advance sets) passes their end. CDRs are written
	// when calls end and shipped in batches of about a minute, so records
	// arrive nearly in end order and a short hold suffices: with end order
	// an alert leaves the engine about EndLateness after the end of the
	// call that raised it; with start order about one Lateness after its
	// start, and calls longer than the lateness are late. Every engine of
	// a deployment must use the same order (a source engine's external
	// watermark is on the order key of the engines feeding it).
	StartOrder bool
	// EndLateness is, with end order, how far behind the latest end time
	// seen a record may arrive and still run in order. Default 75 s (a
	// minute's batch and its mediation delay), at most Lateness.
	EndLateness time.Duration
	// WatermarkQuorum is how many records must have started at or after a
	// time before the engine's own watermark follows it: the watermark is
	// the WatermarkQuorum-th latest start seen minus the lateness, so that
	// fewer records far ahead of their stream (a switch with a wrong
	// clock) are held until the stream reaches them instead of releasing
	// everything held. 1 follows the latest start. Default 4.
	WatermarkQuorum int
	// DedupHorizon is how long, in the engine's clock, the engine
	// remembers the records it took so that a copy delivered again (the
	// same caller and call_id, or without a call_id the same caller,
	// callee, start and sources) is counted once: long enough for a batch
	// a collector re-sends after a restart. Default one hour past the
	// lateness (at most the longest window); negative turns
	// deduplication off. A record is remembered
	// for between one and two horizons (see Stats.Duplicates).
	DedupHorizon time.Duration
	// ExternalWatermark makes the watermark the caller's to set (Advance)
	// instead of the latest end (or start) time seen minus the lateness:
	// a source engine fed by many input partitions advances to the least
	// of their watermarks. With end order it has no watermark on starts
	// to close aggregates by, so it cannot have Aggregates.
	ExternalWatermark bool
}

// Defaults used for zero Config fields.
var (
	DefaultWindows = []Window{{5 * time.Minute, 10}, {time.Hour, 12}, {24 * time.Hour, 24}}
)

const (
	defaultLateness    = 10 * time.Minute
	defaultShortCallS  = 10
	defaultDetailCalls = 8
	defaultExactPeers  = 4096
	defaultSketchSlots = 8192
	defaultCallerFloor = 20
	defaultQuorum      = 4
	defaultEndLateness = 75 * time.Second
	maxQuorum          = 64
	// maxWindows bounds Config.Windows (the engine's per-window scratch).
	maxWindows = 8
)

// withDefaults returns cfg with zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	if len(cfg.Windows) == 0 {
		cfg.Windows = DefaultWindows
	}
	cfg.Windows = slices.Clone(cfg.Windows)
	if cfg.Lateness == 0 {
		cfg.Lateness = defaultLateness
	}
	if cfg.ShortCallS == 0 {
		cfg.ShortCallS = defaultShortCallS
	}
	if len(cfg.Kinds) == 0 {
		for k := range schemas.NumSubjectKinds {
			cfg.Kinds = append(cfg.Kinds, k)
		}
	}
	if cfg.DetailCalls == 0 {
		cfg.DetailCalls = defaultDetailCalls
	}
	if cfg.ExactPeers == 0 {
		cfg.ExactPeers = defaultExactPeers
	}
	if cfg.SketchSlots == 0 {
		cfg.SketchSlots = defaultSketchSlots
	}
	if cfg.CallerFloor == 0 {
		cfg.CallerFloor = defaultCallerFloor
	}
	if cfg.WatermarkQuorum == 0 {
		cfg.WatermarkQuorum = defaultQuorum
	}
	if cfg.EndLateness == 0 {
		cfg.EndLateness = min(defaultEndLateness, cfg.Lateness)
	}
	if cfg.DedupHorizon == 0 {
		cfg.DedupHorizon = min(cfg.Lateness+time.Hour, cfg.longest())
	}
	return cfg
}

// Validate checks cfg after defaults are applied; messages name the field
// and the bad value.
func (cfg Config) Validate() error {
	cfg = cfg.withDefaults()
	for i, w := range cfg.Windows {
		switch {
		case w.Size < time.Minute || w.Size > 7*24*time.Hour:
			return fmt.Errorf("windows[%d].size %v must be between 1m and 168h", i, w.Size)
		case w.Size%time.Second != 0:
			return fmt.Errorf("windows[%d].size %v must be whole seconds", i, w.Size)
		case w.Buckets < 1 || w.Buckets > 1440:
			return fmt.Errorf("windows[%d].buckets %d must be between 1 and 1440", i, w.Buckets)
		case (w.Size/time.Second)%time.Duration(w.Buckets) != 0:
			return fmt.Errorf("windows[%d]: size %v is not a whole number of seconds per bucket with %d buckets", i, w.Size, w.Buckets)
		}
		for j := range i {
			if cfg.Windows[j].Size == w.Size {
				return fmt.Errorf("windows[%d].size %v is listed twice", i, w.Size)
			}
		}
	}
	switch {
	case cfg.Lateness < 0 || cfg.Lateness > 24*time.Hour:
		return fmt.Errorf("lateness %v must be between 0 and 24h", cfg.Lateness)
	case cfg.ShortCallS < 1 || cfg.ShortCallS > 3600:
		return fmt.Errorf("short_call_s %d must be between 1 and 3600", cfg.ShortCallS)
	case cfg.DetailCalls < 2 || cfg.DetailCalls > 1000:
		return fmt.Errorf("detail_calls %d must be between 2 and 1000", cfg.DetailCalls)
	case cfg.ExactPeers < 16 || cfg.ExactPeers > 1<<20:
		return fmt.Errorf("exact_peers %d must be between 16 and 1048576", cfg.ExactPeers)
	case cfg.SketchSlots < 256 || cfg.SketchSlots > 1<<20 || cfg.SketchSlots&(cfg.SketchSlots-1) != 0:
		return fmt.Errorf("sketch_slots %d must be a power of two between 256 and 1048576", cfg.SketchSlots)
	case cfg.CallerFloor < 1:
		return fmt.Errorf("caller_floor %d must be at least 1", cfg.CallerFloor)
	case cfg.WatermarkQuorum < 1 || cfg.WatermarkQuorum > maxQuorum:
		return fmt.Errorf("watermark_quorum %d must be between 1 and %d", cfg.WatermarkQuorum, maxQuorum)
	case cfg.EndLateness < 0 || cfg.EndLateness > cfg.Lateness || cfg.EndLateness%time.Second != 0:
		return fmt.Errorf("end_lateness %v must be whole seconds between 0 and the lateness %v", cfg.EndLateness, cfg.Lateness)
	case cfg.DedupHorizon > 0 && (cfg.DedupHorizon < time.Minute || cfg.DedupHorizon%time.Second != 0):
		return fmt.Errorf("dedup_horizon %v must be whole seconds and at least 1m (or off)", cfg.DedupHorizon)
	}
	if longest := cfg.longest(); cfg.DedupHorizon > longest {
		// A rebuild replays one longest window: it could not rebuild
		// what a longer horizon remembers.
		return fmt.Errorf("dedup_horizon %v must not be longer than the longest window %v", cfg.DedupHorizon, longest)
	}
	if len(cfg.Windows) > maxWindows {
		return fmt.Errorf("windows: %d listed, at most %d", len(cfg.Windows), maxWindows)
	}
	for _, k := range cfg.Kinds {
		if k >= schemas.NumSubjectKinds {
			return fmt.Errorf("kinds: unknown subject kind %d", k)
		}
	}
	if cfg.Aggregates && cfg.ExternalWatermark && !cfg.StartOrder {
		return errors.New("aggregates need the engine's own watermark with end order (external watermark set)")
	}
	if cfg.Aggregates && !slices.Contains(cfg.Kinds, schemas.SubjectCaller) {
		return fmt.Errorf("aggregates need the caller kind in kinds %v", cfg.Kinds)
	}
	return nil
}

// CheckRules reports whether an engine can run rules with cfg (zero
// fields get defaults), without building one: cfg is valid, every rule is
// valid, no name is used twice and every rule's window is one of cfg's
// windows. NewEngine fails with the same error; a program calls
// CheckRules at startup, before it connects to anything, so that a rules
// file naming a window the configuration lacks fails there and not when
// the first partition is assigned. Which kinds cfg tracks is not checked:
// a streaming deployment runs each rule only in the engines of its kind.
func (cfg Config) CheckRules(rules []Rule) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid detector config: %w", err)
	}
	cfg = cfg.withDefaults()
	names := make(map[string]bool, len(rules))
	for i := range rules {
		r := &rules[i]
		if err := r.Validate(); err != nil {
			return err
		}
		if names[r.Name] {
			return fmt.Errorf("rule %q is defined twice", r.Name)
		}
		names[r.Name] = true
		if cfg.windowIndex(r.Window) < 0 {
			return fmt.Errorf("rule %q: window %s is not one of the configured windows %s",
				r.Name, FormatDuration(r.Window), windowList(cfg.Windows))
		}
	}
	return nil
}

// longest returns the longest of cfg.Windows (0 for none).
func (cfg Config) longest() time.Duration {
	var d time.Duration
	for _, w := range cfg.Windows {
		d = max(d, w.Size)
	}
	return d
}

// windowIndex returns the index of the window of size d in cfg.Windows,
// or -1.
func (cfg Config) windowIndex(d time.Duration) int {
	return slices.IndexFunc(cfg.Windows, func(w Window) bool { return w.Size == d })
}
