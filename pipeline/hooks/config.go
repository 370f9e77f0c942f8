package hooks

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cdrguard/cdrguard/schemas"
)

// Modes of an endpoint.
const (
	// ModeEnforce sends requests.
	ModeEnforce = "enforce"
	// ModeShadow records what would have been sent, and sends nothing.
	ModeShadow = "shadow"
)

// Actions a request can carry (the endpoint's actions list).
const (
	ActionSuspend = "suspend"
	ActionRelease = "release"
)

// DefaultRetrySchedule is the waits before each retry: about three days
// in all, as the Standard Webhooks specification's example.
var DefaultRetrySchedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour}

// DefaultProtectedNumbers are never suspended unless protected.no_defaults
// is set: the emergency numbers 112 (GSM, EU), 911 (North America), 999
// (UK and others), 000 (Australia), 110, 118 and 119 (Japan, China), 100,
// 101, 102 and 108 (India), 111 (New Zealand), 117 (Switzerland), 15, 17
// and 18 (France), and the same with a leading +.
var DefaultProtectedNumbers = []string{"112", "911", "999", "000", "110", "118", "119", "100", "101", "102", "108", "111", "117", "15", "17", "18"}

// Config is the hooks section of cdrguard's configuration.
type Config struct {
	// Endpoints are the receivers.
	Endpoints []EndpointConfig `yaml:"endpoints"`
	// RetryTopic, ParkedTopic and HeldTopic default to the alerts topic
	// with .hooks-retry, .hooks-parked and .hooks-held appended.
	RetryTopic  string `yaml:"retry_topic"`
	ParkedTopic string `yaml:"parked_topic"`
	HeldTopic   string `yaml:"held_topic"`
	// AllowlistTopic is the dynamic allowlist (released subjects),
	// compacted, keyed by subject kind and subject; default the alerts
	// topic with .allowlist appended.
	AllowlistTopic string `yaml:"allowlist_topic"`
	// StateTopic keeps, per endpoint and subject, the last suspension or
	// release request and its outcome, and the confirm markers; default
	// the alerts topic with .hooks-state appended.
	StateTopic string `yaml:"state_topic"`
	// DLQTopic receives the alerts-topic messages the dispatcher cannot
	// decode, with the reason in their headers; default the alerts topic
	// with .hooks-dlq appended.
	DLQTopic string `yaml:"dlq_topic"`
	// API serves the release API; nil: no API.
	API *APIConfig `yaml:"api"`
	// Protected numbers and prefixes are never suspended.
	Protected ProtectedConfig `yaml:"protected"`
	// SubjectPeriod: at most one suspension request per subject and
	// endpoint per period (default 24h; in memory, so per process run).
	SubjectPeriod time.Duration `yaml:"subject_period"`
	// Breaker opens an endpoint's circuit after Failures consecutive
	// failed attempts, for OpenFor; requests meanwhile wait in the retry
	// topic.
	Breaker BreakerConfig `yaml:"breaker"`
	// QueueSize bounds each endpoint's in-memory queue (default 256); a
	// request that finds it full waits in the retry topic instead.
	QueueSize int `yaml:"queue_size"`
	// Workers is the number of concurrent requests per endpoint (default 4).
	Workers int `yaml:"workers"`
}

// ProtectedConfig lists numbers that are never suspended.
type ProtectedConfig struct {
	Numbers  []string `yaml:"numbers"`
	Prefixes []string `yaml:"prefixes"`
	// NoDefaults drops DefaultProtectedNumbers.
	NoDefaults bool `yaml:"no_defaults"`
}

// BreakerConfig configures the per-endpoint circuit breaker.
type BreakerConfig struct {
	Failures int           `yaml:"failures"`
	OpenFor  time.Duration `yaml:"open_for"`
}

// EndpointConfig is one receiver.
type EndpointConfig struct {
	Name          string          `yaml:"name"`
	URL           string          `yaml:"url"`
	SecretFile    string          `yaml:"secret_file"`
	SecretEnv     string          `yaml:"secret_env"`
	Actions       []string        `yaml:"actions"`
	MinSeverity   string          `yaml:"min_severity"`
	Rules         []string        `yaml:"rules"`
	SubjectKinds  []string        `yaml:"subject_kinds"`
	Mode          string          `yaml:"mode"`
	Timeout       time.Duration   `yaml:"timeout"`
	RetrySchedule []time.Duration `yaml:"retry_schedule"`
	Budget        *BudgetConfig   `yaml:"budget"`
}

// BudgetConfig bounds suspension requests per sliding window of wall-clock
// time; requests beyond it are held for approval.
type BudgetConfig struct {
	Requests int           `yaml:"requests"`
	Per      time.Duration `yaml:"per"`
	// PerRule counts each rule separately.
	PerRule bool `yaml:"per_rule"`
}

// Endpoint is a validated endpoint with its secrets read.
type Endpoint struct {
	EndpointConfig
	Secrets      []Secret
	minSeverity  schemas.Severity
	subjectKinds []schemas.SubjectKind
}

// withDefaults fills unset fields; alertsTopic names the derived topics.
func (c Config) withDefaults(alertsTopic string) Config {
	if c.RetryTopic == "" {
		c.RetryTopic = alertsTopic + ".hooks-retry"
	}
	if c.ParkedTopic == "" {
		c.ParkedTopic = alertsTopic + ".hooks-parked"
	}
	if c.HeldTopic == "" {
		c.HeldTopic = alertsTopic + ".hooks-held"
	}
	if c.AllowlistTopic == "" {
		c.AllowlistTopic = alertsTopic + ".allowlist"
	}
	if c.StateTopic == "" {
		c.StateTopic = alertsTopic + ".hooks-state"
	}
	if c.DLQTopic == "" {
		c.DLQTopic = alertsTopic + ".hooks-dlq"
	}
	if c.API != nil {
		api := *c.API
		if api.Listen == "" {
			api.Listen = DefaultAPIListen
		}
		c.API = &api
	}
	if c.SubjectPeriod == 0 {
		c.SubjectPeriod = 24 * time.Hour
	}
	if c.Breaker.Failures == 0 {
		c.Breaker.Failures = 5
	}
	if c.Breaker.OpenFor == 0 {
		c.Breaker.OpenFor = 30 * time.Second
	}
	if c.QueueSize == 0 {
		c.QueueSize = 256
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	return c
}

// Resolve validates c (messages name the key, "hooks.endpoints[0].url",
// and the bad value, never a secret), reads the secrets and returns the
// endpoints and c with its defaults. alertsTopic names the derived topics.
func (c Config) Resolve(alertsTopic string) (Config, []Endpoint, error) {
	c = c.withDefaults(alertsTopic)
	if len(c.Endpoints) == 0 {
		return c, nil, errors.New("hooks.endpoints: at least one endpoint is needed")
	}
	switch {
	case c.SubjectPeriod < 0:
		return c, nil, fmt.Errorf("hooks.subject_period %v must be positive", c.SubjectPeriod)
	case c.Breaker.Failures < 1:
		return c, nil, fmt.Errorf("hooks.breaker.failures %d must be at least 1", c.Breaker.Failures)
	case c.Breaker.OpenFor < 0:
		return c, nil, fmt.Errorf("hooks.breaker.open_for %v must be positive", c.Breaker.OpenFor)
	case c.QueueSize < 1 || c.QueueSize > 1_000_000:
		return c, nil, fmt.Errorf("hooks.queue_size %d must be between 1 and 1000000", c.QueueSize)
	case c.Workers < 1 || c.Workers > 256:
		return c, nil, fmt.Errorf("hooks.workers %d must be between 1 and 256", c.Workers)
	}
	if c.API != nil {
		if err := c.API.validate(); err != nil {
			return c, nil, err
		}
	}
	for i, n := range c.Protected.Numbers {
		if !isNumber(n) {
			return c, nil, fmt.Errorf("hooks.protected.numbers[%d] %q is not a number (digits, optional leading +)", i, n)
		}
	}
	for i, n := range c.Protected.Prefixes {
		if !isNumber(n) {
			return c, nil, fmt.Errorf("hooks.protected.prefixes[%d] %q is not a number prefix (digits, optional leading +)", i, n)
		}
	}
	seen := map[string]bool{}
	eps := make([]Endpoint, 0, len(c.Endpoints))
	for i, ec := range c.Endpoints {
		ep, err := resolveEndpoint(ec, fmt.Sprintf("hooks.endpoints[%d]", i))
		if err != nil {
			return c, nil, err
		}
		if seen[ep.Name] {
			return c, nil, fmt.Errorf("hooks.endpoints[%d].name %q is used twice", i, ep.Name)
		}
		seen[ep.Name] = true
		eps = append(eps, ep)
	}
	return c, eps, nil
}

func resolveEndpoint(ec EndpointConfig, key string) (Endpoint, error) {
	ep := Endpoint{EndpointConfig: ec}
	if ep.Mode == "" {
		ep.Mode = ModeEnforce
	}
	if ep.Timeout == 0 {
		ep.Timeout = 15 * time.Second
	}
	if ep.RetrySchedule == nil {
		ep.RetrySchedule = DefaultRetrySchedule
	}
	if len(ep.Actions) == 0 {
		ep.Actions = []string{ActionSuspend, ActionRelease}
	}
	if !validName(ep.Name) {
		return ep, fmt.Errorf("%s.name %q must be 1 to 64 letters, digits, '-' or '_'", key, ep.Name)
	}
	u, err := url.Parse(ep.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ep, fmt.Errorf("%s.url %q must be an absolute http or https URL", key, ep.URL)
	}
	if u.User != nil {
		return ep, fmt.Errorf("%s.url must not hold credentials", key)
	}
	for i, a := range ep.Actions {
		if a != ActionSuspend && a != ActionRelease {
			return ep, fmt.Errorf("%s.actions[%d] %q is not suspend or release", key, i, a)
		}
	}
	if ep.MinSeverity != "" {
		if ep.minSeverity, err = schemas.ParseSeverity(ep.MinSeverity); err != nil {
			return ep, fmt.Errorf("%s.min_severity: %w", key, err)
		}
	}
	for i, r := range ep.Rules {
		if strings.TrimSpace(r) == "" {
			return ep, fmt.Errorf("%s.rules[%d] is empty", key, i)
		}
	}
	for i, k := range ep.SubjectKinds {
		sk, err := schemas.ParseSubjectKind(k)
		if err != nil {
			return ep, fmt.Errorf("%s.subject_kinds[%d]: %w", key, i, err)
		}
		ep.subjectKinds = append(ep.subjectKinds, sk)
	}
	if ep.Mode != ModeEnforce && ep.Mode != ModeShadow {
		return ep, fmt.Errorf("%s.mode %q is not enforce or shadow", key, ep.Mode)
	}
	if ep.Timeout < 0 || ep.Timeout > 5*time.Minute {
		return ep, fmt.Errorf("%s.timeout %v must be between 0 and 5m", key, ep.Timeout)
	}
	for i, d := range ep.RetrySchedule {
		if d <= 0 {
			return ep, fmt.Errorf("%s.retry_schedule[%d] %v must be positive", key, i, d)
		}
	}
	if b := ep.Budget; b != nil {
		if b.Requests < 1 {
			return ep, fmt.Errorf("%s.budget.requests %d must be at least 1", key, b.Requests)
		}
		if b.Per <= 0 {
			return ep, fmt.Errorf("%s.budget.per %v must be positive", key, b.Per)
		}
	}
	var text string
	switch {
	case ep.SecretFile != "" && ep.SecretEnv != "":
		return ep, fmt.Errorf("%s: set secret_file or secret_env, not both", key)
	case ep.SecretFile != "":
		b, err := os.ReadFile(ep.SecretFile)
		if err != nil {
			return ep, fmt.Errorf("%s.secret_file: %w", key, err)
		}
		text = string(b)
	case ep.SecretEnv != "":
		v, ok := os.LookupEnv(ep.SecretEnv)
		if !ok {
			return ep, fmt.Errorf("%s.secret_env: $%s is not set", key, ep.SecretEnv)
		}
		text = v
	default:
		return ep, fmt.Errorf("%s: secret_file or secret_env is needed", key)
	}
	src := "secret_file"
	if ep.SecretEnv != "" {
		src = "secret_env"
	}
	if ep.Secrets, err = ParseSecrets(text); err != nil {
		return ep, fmt.Errorf("%s.%s: %w", key, src, err)
	}
	return ep, nil
}

// wants reports whether the endpoint gets the request of action for a.
func (ep *Endpoint) wants(action string, a *schemas.Alert) bool {
	if !slices.Contains(ep.Actions, action) {
		return false
	}
	if ep.minSeverity != 0 && a.Severity < ep.minSeverity {
		return false
	}
	if len(ep.Rules) > 0 && !slices.Contains(ep.Rules, a.Rule) {
		return false
	}
	if len(ep.subjectKinds) > 0 && !slices.Contains(ep.subjectKinds, a.SubjectKind) {
		return false
	}
	return true
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func isNumber(s string) bool {
	s = strings.TrimPrefix(s, "+")
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
