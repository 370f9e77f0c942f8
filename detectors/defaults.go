package detectors

// DefaultConfig returns the engine's defaults, the one source of them:
// every zero field of a Config takes its value from here, and the
// commands' configuration starts from it (Kinds, which depend on the
// engine's role, stay empty: all kinds).
func DefaultConfig() Config {
	c := Config{}.withDefaults()
	c.Kinds = nil
	return c
}

// WithDefaults returns cfg with every zero field set to its default,
// including those derived from other fields (EndLateness from Lateness,
// DedupHorizon from Lateness and the longest window).
func (cfg Config) WithDefaults() Config { return cfg.withDefaults() }
