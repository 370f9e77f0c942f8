package clickhouse

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a ClickHouse server version, as SELECT version() reports it
// ("18.16.1", "24.8.4.13").
type Version struct {
	Major, Minor, Patch int
	// Raw is the text the server reported.
	Raw string
}

// ParseVersion reads a version() string. It needs at least major.minor;
// anything after a '-' or '+' (build tags) is ignored.
func ParseVersion(s string) (Version, error) {
	v := Version{Raw: s}
	core := s
	if i := strings.IndexAny(core, "-+ "); i >= 0 {
		core = core[:i]
	}
	parts := strings.Split(core, ".")
	if len(parts) < 2 {
		return v, fmt.Errorf("server version %q is not major.minor[.patch…]", s)
	}
	nums := [3]*int{&v.Major, &v.Minor, &v.Patch}
	for i := 0; i < len(parts) && i < len(nums); i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil || n < 0 {
			return v, fmt.Errorf("server version %q is not major.minor[.patch…]", s)
		}
		*nums[i] = n
	}
	return v, nil
}

// String returns the version as the server reported it.
func (v Version) String() string {
	if v.Raw != "" {
		return v.Raw
	}
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// AtLeast reports whether v is major.minor or newer.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

// Features are the server capabilities the migrations depend on. They are
// derived from the server's version (FeaturesFor), never probed by trial
// and error, so the DDL a server gets is predictable and reviewable
// (Render).
type Features struct {
	// LowCardinality: LowCardinality(String) without the experimental
	// setting. 18.x needs allow_experimental_low_cardinality_type=1;
	// production ready since 19.3 (ClickHouse PR #4323).
	LowCardinality bool
	// Codecs: per-column CODEC(…) clauses (ZSTD, Delta), since 19.1
	// (PRs #3899, #4052). 18.16 rejects the syntax.
	Codecs bool
	// TTL: table and column TTL expressions, since 19.6 (PR #4212).
	TTL bool
	// DateTime64: sub-second timestamps, since 20.1. Without it raw CDR
	// times are stored to the second.
	DateTime64 bool
	// AddColumnIfNotExists: ALTER TABLE … ADD COLUMN IF NOT EXISTS, since
	// 19.1 (PR #3900).
	AddColumnIfNotExists bool
}

// FeaturesFor maps a server version to the features it has.
func FeaturesFor(v Version) Features {
	return Features{
		LowCardinality:       v.AtLeast(19, 3),
		Codecs:               v.AtLeast(19, 1),
		TTL:                  v.AtLeast(19, 6),
		DateTime64:           v.AtLeast(20, 1),
		AddColumnIfNotExists: v.AtLeast(19, 1),
	}
}
