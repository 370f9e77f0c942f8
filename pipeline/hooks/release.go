package hooks

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/cdrguard/cdrguard/schemas"
)

// ReleaseResult is what a release did.
type ReleaseResult struct {
	Decision Decision
	// Requests are the number.release requests queued, one per endpoint
	// that got, or had pending, held or parked, a suspension of the
	// subject.
	Requests []Request
	// Cancelled are the pending and held suspensions, and the pending
	// expiry releases, removed before the release was queued.
	Cancelled []Request
	// NoRelease names the endpoints that got a suspension of the subject
	// but do not take releases (their actions list lacks release).
	NoRelease []string
}

// Release lifts the suspensions of r's subject (action release or
// false_positive), in this order:
//
//  1. the subject goes on the dynamic allowlist (cfg.AllowlistTopic):
//     the durable fact; from then on every dispatcher that has read it
//     refuses suspensions of it, retries and approvals included;
//  2. its pending and held suspensions (and pending expiry releases) are
//     tombstoned, recorded as cancelled;
//  3. one number.release request per endpoint that got or had pending,
//     held or parked a suspension of it goes into the retry topic, due
//     now; the dispatcher sends it once no suspension of the subject is
//     in flight.
//
// cfg must have its defaults (Config.Resolve). rec may be nil. The
// Decision (recorded by the caller) is in the result. An error before
// step 1 completes changed nothing; a later error leaves the subject
// allowlisted, and the release can be asked for again.
func Release(ctx context.Context, l Log, cfg Config, eps []Endpoint, r DecisionRequest, source string, now time.Time, rec Recorder) (ReleaseResult, error) {
	var res ReleaseResult
	kind, err := r.validate(DecisionRelease, DecisionFalsePositive)
	if err != nil {
		return res, err
	}
	ks := kind.String()
	res.Decision = Decision{ID: newDecisionID(), Time: now, SubjectKind: ks, Subject: r.Subject, Action: r.Action,
		AlertID: r.AlertID, By: r.By, Reason: r.Reason, Source: source}
	entry := AllowEntry{SubjectKind: ks, Subject: r.Subject, DecisionID: res.Decision.ID, Action: r.Action, By: r.By, Reason: r.Reason, At: now}
	v, _ := json.Marshal(entry)
	if err := l.Produce(ctx, Message{Topic: cfg.AllowlistTopic, Key: []byte(AllowKey(ks, r.Subject)), Value: v}); err != nil {
		return res, fmt.Errorf("cannot allowlist %s: %w", r.Subject, err)
	}
	retry, err := Snapshot(ctx, l, cfg.RetryTopic)
	if err != nil {
		return res, err
	}
	held, err := Snapshot(ctx, l, cfg.HeldTopic)
	if err != nil {
		return res, err
	}
	parked, err := Snapshot(ctx, l, cfg.ParkedTopic)
	if err != nil {
		return res, err
	}
	states, err := readTopic(ctx, l, cfg.StateTopic)
	if err != nil {
		return res, err
	}
	mine := func(q *Request) bool { return q.SubjectKind == ks && q.Subject == r.Subject }
	// Endpoint -> the suspension being lifted (its alert, for the body).
	target := map[string]Request{}
	for _, q := range retry {
		if !mine(&q) {
			continue
		}
		if q.Action == ActionSuspend || q.Expiry {
			if err := l.Produce(ctx, Message{Topic: cfg.RetryTopic, Key: []byte(q.ID)}); err != nil {
				return res, fmt.Errorf("cannot cancel %s: %w", q.ID, err)
			}
			res.Cancelled = append(res.Cancelled, q)
		}
		if q.Action == ActionSuspend {
			target[q.Endpoint] = q
		}
	}
	for _, q := range held {
		if mine(&q) && q.Action == ActionSuspend {
			if err := l.Produce(ctx, Message{Topic: cfg.HeldTopic, Key: []byte(q.ID)}); err != nil {
				return res, fmt.Errorf("cannot cancel %s: %w", q.ID, err)
			}
			res.Cancelled = append(res.Cancelled, q)
			target[q.Endpoint] = q
		}
	}
	for _, q := range parked {
		if mine(&q) && q.Action == ActionSuspend {
			target[q.Endpoint] = q
		}
	}
	alerts := map[string]json.RawMessage{}
	for _, ep := range eps {
		raw, ok := states[StateKey(ep.Name, ks, r.Subject)]
		if !ok {
			continue
		}
		var s SubjectState
		if json.Unmarshal(raw, &s) == nil && s.Action == ActionSuspend {
			if _, ok := target[ep.Name]; !ok {
				target[ep.Name] = Request{Endpoint: ep.Name, AlertID: s.AlertID, Rule: s.Rule}
			}
			alerts[ep.Name] = s.Alert
		}
	}
	for _, q := range res.Cancelled {
		if rec != nil {
			rec.Record(Delivery{RequestID: q.ID, AlertID: q.AlertID, Endpoint: q.Endpoint, Action: q.Action, Subject: q.Subject,
				SubjectKind: q.SubjectKind, Rule: q.Rule, Outcome: OutcomeCancelled, Mode: ModeEnforce, Time: now,
				Error: fmt.Sprintf("%s %s by %s", r.Action, res.Decision.ID, r.By)})
		}
	}
	for _, ep := range eps {
		sus, ok := target[ep.Name]
		if !ok {
			continue
		}
		if !slices.Contains(ep.Actions, ActionRelease) {
			res.NoRelease = append(res.NoRelease, ep.Name)
			continue
		}
		alert := alerts[ep.Name]
		if len(alert) == 0 && len(sus.Body) > 0 {
			var b schemas.HookBody
			if json.Unmarshal(sus.Body, &b) == nil {
				alert = b.Alert
			}
		}
		if len(alert) == 0 {
			alert = json.RawMessage("{}")
		}
		body := schemas.HookBody{Type: schemas.HookRelease, Subject: r.Subject, SubjectKind: kind, Alert: alert, Reason: r.Reason}
		raw, err := body.AppendJSON(nil)
		if err != nil {
			return res, err
		}
		q := Request{ID: WebhookID(res.Decision.ID, ActionRelease, ep.Name), Endpoint: ep.Name, Action: ActionRelease,
			AlertID: sus.AlertID, Rule: sus.Rule, Subject: r.Subject, SubjectKind: ks, Body: raw, NextAt: now, CreatedAt: now,
			DecisionID: res.Decision.ID}
		if err := l.Produce(ctx, Message{Topic: cfg.RetryTopic, Key: []byte(q.ID), Value: q.Encode()}); err != nil {
			return res, fmt.Errorf("cannot queue the release for %s: %w", ep.Name, err)
		}
		res.Requests = append(res.Requests, q)
	}
	return res, nil
}

// Confirm records that an operator confirmed the suspension of r's
// subject: a confirm marker in the state topic, so no expiry releases
// it, and the pending expiry releases tombstoned (recorded as
// cancelled). It returns the decision and the releases cancelled.
func Confirm(ctx context.Context, l Log, cfg Config, r DecisionRequest, source string, now time.Time, rec Recorder) (Decision, []Request, error) {
	kind, err := r.validate(DecisionConfirm)
	if err != nil {
		return Decision{}, nil, err
	}
	ks := kind.String()
	dec := Decision{ID: newDecisionID(), Time: now, SubjectKind: ks, Subject: r.Subject, Action: DecisionConfirm,
		AlertID: r.AlertID, By: r.By, Reason: r.Reason, Source: source}
	v, _ := json.Marshal(Confirmed{DecisionID: dec.ID, By: r.By, At: now})
	if err := l.Produce(ctx, Message{Topic: cfg.StateTopic, Key: []byte(ConfirmKey(ks, r.Subject)), Value: v}); err != nil {
		return dec, nil, fmt.Errorf("cannot confirm %s: %w", r.Subject, err)
	}
	retry, err := Snapshot(ctx, l, cfg.RetryTopic)
	if err != nil {
		return dec, nil, err
	}
	var cancelled []Request
	for _, q := range retry {
		if q.SubjectKind != ks || q.Subject != r.Subject || !q.Expiry {
			continue
		}
		if err := l.Produce(ctx, Message{Topic: cfg.RetryTopic, Key: []byte(q.ID)}); err != nil {
			return dec, cancelled, fmt.Errorf("cannot cancel %s: %w", q.ID, err)
		}
		cancelled = append(cancelled, q)
		if rec != nil {
			rec.Record(Delivery{RequestID: q.ID, AlertID: q.AlertID, Endpoint: q.Endpoint, Action: q.Action, Subject: q.Subject,
				SubjectKind: q.SubjectKind, Rule: q.Rule, Outcome: OutcomeCancelled, Mode: ModeEnforce, Time: now,
				Error: "suspension confirmed by " + r.By})
		}
	}
	return dec, cancelled, nil
}
