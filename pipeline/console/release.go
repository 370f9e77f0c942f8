package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cdrguard/cdrguard/pipeline/hooks"
)

// Releaser is the hook dispatcher's release API: the actions that change
// a number's suspension state. Every method blocks until the API answered
// or ctx ended, and is safe for concurrent use. Errors say what failed;
// an API refusal wraps ErrAPI with the status and the API's message.
type Releaser interface {
	// Release asks the dispatcher to release a subject (action "release"
	// or "false_positive": false_positive also allowlists it). The
	// dispatcher sends number.release to every endpoint that suspended it
	// and records the decision in ClickHouse; it returns the decision's
	// id.
	Release(ctx context.Context, r ReleaseRequest) (decisionID string, err error)
	// SubjectState returns what the dispatcher knows of a subject: per
	// endpoint its last request and outcome, what is pending, held or
	// parked, and whether it is allowlisted or confirmed.
	SubjectState(ctx context.Context, kind, subject string) (hooks.SubjectView, error)
	// Held approves (approve true) or rejects a held suspension request.
	Held(ctx context.Context, requestID string, approve bool, by, reason string) error
	// Redeliver queues a parked request for delivery again.
	Redeliver(ctx context.Context, requestID, by, reason string) error
}

// ReleaseRequest is the body of POST /api/v1/releases.
type ReleaseRequest struct {
	Subject     string `json:"subject"`
	SubjectKind string `json:"subject_kind"`
	Reason      string `json:"reason"`
	By          string `json:"by"`
	AlertID     string `json:"alert_id,omitempty"`
	// Action is "release" or "false_positive".
	Action string `json:"action"`
}

// Errors of the release API client.
var (
	// ErrAPI wraps a refusal by the release API (a status other than the
	// one the contract promises).
	ErrAPI = errors.New("release api refused the request")
	// ErrNoReleaser is returned for actions that need the release API
	// when none is configured.
	ErrNoReleaser = errors.New("no release api configured (console.release_api.url)")
)

// HTTPReleaser calls the release API over HTTP with a bearer token. Its
// String never shows the token.
type HTTPReleaser struct {
	base   *url.URL
	token  string
	client *http.Client
}

// NewHTTPReleaser returns a client of the API at baseURL (http or https),
// authenticating with token. timeout bounds every call (default 10 s).
func NewHTTPReleaser(baseURL, token string, timeout time.Duration) (*HTTPReleaser, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("release api url %q is not an http(s) URL", baseURL)
	}
	if strings.TrimSpace(token) == "" {
		return nil, errors.New("release api token is empty")
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &HTTPReleaser{base: u, token: strings.TrimSpace(token), client: &http.Client{Timeout: timeout}}, nil
}

// String names the API without its token.
func (h *HTTPReleaser) String() string { return "release api " + h.base.String() }

// Release implements Releaser.
func (h *HTTPReleaser) Release(ctx context.Context, r ReleaseRequest) (string, error) {
	var out struct {
		DecisionID string `json:"decision_id"`
	}
	if err := h.call(ctx, http.MethodPost, "/api/v1/releases", r, http.StatusAccepted, &out); err != nil {
		return "", fmt.Errorf("cannot %s %s: %w", r.Action, r.Subject, err)
	}
	return out.DecisionID, nil
}

// SubjectState implements Releaser.
func (h *HTTPReleaser) SubjectState(ctx context.Context, kind, subject string) (hooks.SubjectView, error) {
	var out hooks.SubjectView
	path := "/api/v1/subjects/" + url.PathEscape(subject) + "?" + url.Values{"kind": {kind}}.Encode()
	if err := h.call(ctx, http.MethodGet, path, nil, http.StatusOK, &out); err != nil {
		return out, fmt.Errorf("cannot read the suspension state of %s: %w", subject, err)
	}
	return out, nil
}

type byReason struct {
	By     string `json:"by"`
	Reason string `json:"reason"`
}

// Held implements Releaser.
func (h *HTTPReleaser) Held(ctx context.Context, id string, approve bool, by, reason string) error {
	verb := "reject"
	if approve {
		verb = "approve"
	}
	if err := h.call(ctx, http.MethodPost, "/api/v1/held/"+url.PathEscape(id)+"/"+verb, byReason{by, reason}, 0, nil); err != nil {
		return fmt.Errorf("cannot %s held request %s: %w", verb, id, err)
	}
	return nil
}

// Redeliver implements Releaser.
func (h *HTTPReleaser) Redeliver(ctx context.Context, id, by, reason string) error {
	if err := h.call(ctx, http.MethodPost, "/api/v1/parked/"+url.PathEscape(id)+"/redeliver", byReason{by, reason}, 0, nil); err != nil {
		return fmt.Errorf("cannot redeliver parked request %s: %w", id, err)
	}
	return nil
}

// call sends one request; want 0 accepts any 2xx. out, if not nil,
// receives the JSON response.
func (h *HTTPReleaser) call(ctx context.Context, method, path string, in any, want int, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("cannot encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.base.String()+path, body)
	if err != nil {
		return fmt.Errorf("cannot build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("cannot read response: %w", err)
	}
	ok := resp.StatusCode == want || (want == 0 && resp.StatusCode/100 == 2)
	if !ok {
		msg := strings.TrimSpace(string(data))
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		return fmt.Errorf("%w: HTTP %d: %s", ErrAPI, resp.StatusCode, msg)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("cannot decode response: %w", err)
		}
	}
	return nil
}
