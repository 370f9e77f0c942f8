package hooks

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/schemas"
)

// DefaultAPIListen is the release API's address unless hooks.api.listen
// says otherwise: loopback only.
const DefaultAPIListen = "127.0.0.1:8086"

// APIConfig is hooks.api: the release API served by the dispatcher.
type APIConfig struct {
	// Listen is the address (default DefaultAPIListen).
	Listen string `yaml:"listen"`
	// TokensFile holds the accepted bearer tokens, one per line (blank
	// lines and lines starting with # are skipped).
	TokensFile string `yaml:"tokens_file"`
	// CertFile and KeyFile turn TLS on.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Insecure allows a non-loopback Listen without TLS (behind a
	// TLS-terminating proxy or mesh).
	Insecure bool `yaml:"insecure"`
}

func (c *APIConfig) validate() error {
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("hooks.api.listen %q is not host:port: %w", c.Listen, err)
	}
	if c.TokensFile == "" {
		return errors.New("hooks.api.tokens_file is needed (bearer tokens, one per line)")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("hooks.api: set both cert_file and key_file, or neither")
	}
	ip := net.ParseIP(host)
	loopback := host == "localhost" || (ip != nil && ip.IsLoopback())
	if !loopback && c.CertFile == "" && !c.Insecure {
		return fmt.Errorf("hooks.api.listen %q is not loopback: set cert_file and key_file (or insecure: true behind a TLS proxy)", c.Listen)
	}
	return nil
}

// ReadTokens reads a tokens file: one token per line, at least 16
// characters; blank lines and # comments are skipped. Errors never
// quote a token.
func ReadTokens(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hooks.api.tokens_file: %w", err)
	}
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(line) < 16 {
			return nil, fmt.Errorf("hooks.api.tokens_file %s line %d: a token must have at least 16 characters", path, i+1)
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("hooks.api.tokens_file %s holds no token", path)
	}
	return out, nil
}

// ServeAPI serves the release API (Handler) on cfg.API until ctx ends,
// then shuts it down. It returns at once (nil) when cfg.API is nil.
func (d *Dispatcher) ServeAPI(ctx context.Context) error {
	c := d.cfg.API
	if c == nil {
		return nil
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("hooks.api.listen %s: %w", c.Listen, err)
	}
	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	d.log.Info("hooks api", zap.String("listen", ln.Addr().String()), zap.Bool("tls", c.CertFile != ""))
	errc := make(chan error, 1)
	go func() {
		if c.CertFile != "" {
			errc <- srv.ServeTLS(ln, c.CertFile, c.KeyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("hooks api: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	<-errc
	return nil
}

// Handler is the release API:
//
//	POST /api/v1/releases               release or false_positive  -> 202 {"decision_id"}
//	POST /api/v1/decisions              confirm (also release, false_positive) -> 202 {"decision_id"}
//	GET  /api/v1/subjects/{subject}     ?kind=caller: what the dispatcher knows
//	POST /api/v1/held/{id}/approve      {"by","reason"} -> 200 {"decision_id","request_id"}
//	POST /api/v1/held/{id}/reject
//	POST /api/v1/parked/{id}/redeliver
//
// Every call needs Authorization: Bearer <token> (Options.APITokens).
func (d *Dispatcher) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/releases", func(w http.ResponseWriter, r *http.Request) {
		d.decide(w, r, DecisionRelease, DecisionFalsePositive)
	})
	mux.HandleFunc("POST /api/v1/decisions", func(w http.ResponseWriter, r *http.Request) {
		d.decide(w, r, DecisionConfirm, DecisionRelease, DecisionFalsePositive)
	})
	mux.HandleFunc("GET /api/v1/subjects/{subject}", d.subjectState)
	mux.HandleFunc("POST /api/v1/held/{id}/approve", func(w http.ResponseWriter, r *http.Request) { d.act(w, r, DecisionApprove) })
	mux.HandleFunc("POST /api/v1/held/{id}/reject", func(w http.ResponseWriter, r *http.Request) { d.act(w, r, DecisionReject) })
	mux.HandleFunc("POST /api/v1/parked/{id}/redeliver", func(w http.ResponseWriter, r *http.Request) { d.act(w, r, DecisionRedeliver) })
	hashes := make([][32]byte, len(d.opts.APITokens))
	for i, t := range d.opts.APITokens {
		hashes[i] = sha256.Sum256([]byte(t))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		h := sha256.Sum256([]byte(tok))
		valid := 0
		for i := range hashes {
			valid |= subtle.ConstantTimeCompare(h[:], hashes[i][:])
		}
		if !ok || valid != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cdrguard"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "a valid bearer token is needed"})
			return
		}
		if !d.ready.Load() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the dispatcher is loading its topics"})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// badRequest answers 400 naming the bad field when err is a FieldError.
func badRequest(w http.ResponseWriter, err error) {
	out := map[string]string{"error": err.Error()}
	if fe, ok := errors.AsType[*FieldError](err); ok {
		out["field"] = fe.Field
	}
	writeJSON(w, http.StatusBadRequest, out)
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return &FieldError{ute.Field, "has the wrong type"}
		}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return &FieldError{strings.Trim(f, `"`), "is not a known field"}
		}
		return &FieldError{"body", "is not a JSON object: " + err.Error()}
	}
	return nil
}

func (d *Dispatcher) decide(w http.ResponseWriter, r *http.Request, allowed ...string) {
	var dr DecisionRequest
	if err := decodeBody(r, &dr); err != nil {
		badRequest(w, err)
		return
	}
	if dr.Action == "" {
		dr.Action = allowed[0]
	}
	if _, err := dr.validate(allowed...); err != nil {
		badRequest(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 45*time.Second)
	defer cancel()
	var dec Decision
	if dr.Action == DecisionConfirm {
		var err error
		if dec, _, err = Confirm(ctx, d.opts.Log, d.cfg, dr, SourceAPI, d.now(), d.opts.Recorder); err != nil {
			d.fail(w, "confirm", err)
			return
		}
	} else {
		res, err := d.Release(ctx, dr, SourceAPI)
		if err != nil {
			d.fail(w, "release", err)
			return
		}
		dec = res.Decision
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"decision_id": dec.ID})
}

// Release releases a subject (Release) through this dispatcher: the
// subject is allowlisted here at once, and the decision recorded.
func (d *Dispatcher) Release(ctx context.Context, dr DecisionRequest, source string) (ReleaseResult, error) {
	eps := make([]Endpoint, len(d.endpoints))
	for i, e := range d.endpoints {
		eps[i] = e.Endpoint
	}
	res, err := Release(ctx, d.opts.Log, d.cfg, eps, dr, source, d.now(), d.opts.Recorder)
	if res.Decision.ID != "" { // valid: allowlist here even if a later step failed (fail safe)
		d.mem.addAllow(AllowEntry{SubjectKind: res.Decision.SubjectKind, Subject: res.Decision.Subject, DecisionID: res.Decision.ID,
			Action: res.Decision.Action, By: res.Decision.By, Reason: res.Decision.Reason, At: res.Decision.Time})
	}
	if err != nil {
		return res, err
	}
	d.recordDecision(res.Decision)
	d.log.Info("subject released", zap.String("subject", res.Decision.Subject), zap.String("decision_id", res.Decision.ID),
		zap.String("by", res.Decision.By), zap.Int("releases", len(res.Requests)), zap.Int("cancelled", len(res.Cancelled)))
	if len(res.NoRelease) > 0 {
		d.log.Warn("endpoints got a suspension but take no releases", zap.String("subject", res.Decision.Subject), zap.Strings("endpoints", res.NoRelease))
	}
	return res, nil
}

func isFieldError(err error) bool {
	_, ok := errors.AsType[*FieldError](err)
	return ok
}

func (d *Dispatcher) recordDecision(dec Decision) {
	if d.opts.Decisions != nil {
		d.opts.Decisions.Record(dec)
	}
}

func (d *Dispatcher) fail(w http.ResponseWriter, what string, err error) {
	if isFieldError(err) {
		badRequest(w, err)
		return
	}
	d.log.Error("hooks api: "+what+" failed", zap.Error(err))
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": what + " failed: " + err.Error()})
}

// act approves or rejects a held request, or redelivers a parked one.
func (d *Dispatcher) act(w http.ResponseWriter, r *http.Request, action string) {
	var body struct {
		By     string `json:"by"`
		Reason string `json:"reason"`
	}
	if err := decodeBody(r, &body); err != nil {
		badRequest(w, err)
		return
	}
	if err := checkText("by", body.By, 128); err != nil {
		badRequest(w, err)
		return
	}
	if err := checkText("reason", body.Reason, 2000); err != nil {
		badRequest(w, err)
		return
	}
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), 45*time.Second)
	defer cancel()
	now := d.now()
	var reqs []Request
	var err error
	switch action {
	case DecisionApprove:
		reqs, err = Requeue(ctx, d.opts.Log, d.cfg.HeldTopic, d.cfg.RetryTopic, []string{id}, true, now)
	case DecisionReject:
		reqs, err = Reject(ctx, d.opts.Log, d.cfg.HeldTopic, []string{id}, d.opts.Recorder, body.By, now)
	case DecisionRedeliver:
		reqs, err = Requeue(ctx, d.opts.Log, d.cfg.ParkedTopic, d.cfg.RetryTopic, []string{id}, false, now)
	}
	if err != nil {
		if strings.HasPrefix(err.Error(), "no request ") || id == "all" {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		}
		d.fail(w, action, err)
		return
	}
	q := reqs[0]
	dec := Decision{ID: newDecisionID(), Time: now, SubjectKind: q.SubjectKind, Subject: q.Subject, Action: action,
		AlertID: q.AlertID, RequestID: q.ID, By: body.By, Reason: body.Reason, Source: SourceAPI}
	d.recordDecision(dec)
	writeJSON(w, http.StatusOK, map[string]string{"decision_id": dec.ID, "request_id": q.ID})
}

// EndpointState is one endpoint's part of SubjectView.
type EndpointState struct {
	Endpoint       string     `json:"endpoint"`
	LastRequestID  string     `json:"last_request_id"`
	Action         string     `json:"action"`
	Outcome        string     `json:"outcome"`
	AlertID        string     `json:"alert_id,omitempty"`
	SuspendedSince *time.Time `json:"suspended_since,omitempty"`
	ExpiresAt      *time.Time `json:"expires_at,omitempty"`
	Pending        []string   `json:"pending,omitempty"`
	Held           []string   `json:"held,omitempty"`
	Parked         []string   `json:"parked,omitempty"`
}

// SubjectView is the answer of GET /api/v1/subjects/{subject}.
type SubjectView struct {
	Subject     string          `json:"subject"`
	SubjectKind string          `json:"subject_kind"`
	Allowlisted bool            `json:"allowlisted"`
	Allowlist   *AllowEntry     `json:"allowlist,omitempty"`
	Confirmed   *Confirmed      `json:"confirmed,omitempty"`
	Endpoints   []EndpointState `json:"endpoints"`
}

// Subject returns what the dispatcher knows of a subject.
func (d *Dispatcher) Subject(kind, subject string) SubjectView {
	v := SubjectView{Subject: subject, SubjectKind: kind, Endpoints: []EndpointState{}}
	if e, ok := d.mem.allowed(kind, subject); ok {
		v.Allowlisted, v.Allowlist = true, &e
	}
	d.mem.mu.Lock()
	if c, ok := d.mem.confirmed[kind+"/"+subject]; ok {
		v.Confirmed = &c
	}
	d.mem.mu.Unlock()
	by := map[string]*EndpointState{}
	get := func(ep string) *EndpointState {
		if by[ep] == nil {
			by[ep] = &EndpointState{Endpoint: ep}
		}
		return by[ep]
	}
	for _, s := range d.mem.subjectStates(kind, subject) {
		es := get(s.Endpoint)
		es.LastRequestID, es.Action, es.Outcome, es.AlertID, es.ExpiresAt = s.RequestID, s.Action, s.Outcome, s.AlertID, s.ExpiresAt
		if s.Action == ActionSuspend && s.Outcome == OutcomeDelivered {
			t := s.At
			es.SuspendedSince = &t
		}
	}
	pending, held, parked := d.sched.subject(kind, subject)
	for _, q := range pending {
		get(q.Endpoint).Pending = append(get(q.Endpoint).Pending, q.ID)
	}
	for _, q := range held {
		get(q.Endpoint).Held = append(get(q.Endpoint).Held, q.ID)
	}
	for _, q := range parked {
		get(q.Endpoint).Parked = append(get(q.Endpoint).Parked, q.ID)
	}
	for _, e := range d.endpoints {
		if es := by[e.Name]; es != nil {
			v.Endpoints = append(v.Endpoints, *es)
		}
	}
	return v
}

func (d *Dispatcher) subjectState(w http.ResponseWriter, r *http.Request) {
	kind := r.URL.Query().Get("kind")
	if kind == "" {
		kind = schemas.SubjectCaller.String()
	}
	if _, err := schemas.ParseSubjectKind(kind); err != nil {
		badRequest(w, &FieldError{"kind", fmt.Sprintf("%q is not caller, trunk, imei, imsi or source_ip", kind)})
		return
	}
	writeJSON(w, http.StatusOK, d.Subject(kind, r.PathValue("subject")))
}
