package hooks

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Snapshot reads topic (a retry, parked or held topic) to its current end
// and returns its live requests by webhook-id, oldest first.
func Snapshot(ctx context.Context, f Follower, topic string) ([]Request, error) {
	live, err := readTopic(ctx, f, topic)
	if err != nil {
		return nil, err
	}
	out := make([]Request, 0, len(live))
	for key, v := range live {
		if strings.HasPrefix(key, disabledKeyPrefix) {
			continue
		}
		r, err := DecodeRequest(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", topic, err)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Requeue moves the requests ids of topic from (the parked or the held
// topic) into the retry topic, due now with a fresh schedule, and removes
// them from: `hooks redeliver` and `hooks approve`. approve marks them
// approved past the budget. A running dispatcher picks them up. It
// returns the requests moved; an id not in from is an error, and nothing
// is moved then.
func Requeue(ctx context.Context, l Log, from, retryTopic string, ids []string, approve bool, now time.Time) ([]Request, error) {
	reqs, err := pick(ctx, l, from, ids)
	if err != nil {
		return nil, err
	}
	for i := range reqs {
		r := &reqs[i]
		r.Attempts, r.NextAt, r.LastError, r.LastStatus = 0, now, "", 0
		r.Approved = r.Approved || approve
		// Into the retry topic first: a crash in between leaves a copy in
		// both, never in neither.
		if err := l.Produce(ctx, Message{Topic: retryTopic, Key: []byte(r.ID), Value: r.Encode()}); err != nil {
			return nil, fmt.Errorf("cannot queue %s: %w", r.ID, err)
		}
		if err := l.Produce(ctx, Message{Topic: from, Key: []byte(r.ID)}); err != nil {
			return nil, fmt.Errorf("cannot remove %s from %s: %w", r.ID, from, err)
		}
	}
	return reqs, nil
}

// Reject removes held requests ids from the held topic without sending
// them, recording each as rejected.
func Reject(ctx context.Context, l Log, heldTopic string, ids []string, rec Recorder, by string, now time.Time) ([]Request, error) {
	reqs, err := pick(ctx, l, heldTopic, ids)
	if err != nil {
		return nil, err
	}
	for _, r := range reqs {
		if err := l.Produce(ctx, Message{Topic: heldTopic, Key: []byte(r.ID)}); err != nil {
			return nil, fmt.Errorf("cannot remove %s from %s: %w", r.ID, heldTopic, err)
		}
		if rec != nil {
			rec.Record(Delivery{RequestID: r.ID, AlertID: r.AlertID, Endpoint: r.Endpoint, Action: r.Action, Subject: r.Subject,
				SubjectKind: r.SubjectKind, Rule: r.Rule, Outcome: OutcomeRejected, Mode: ModeEnforce, Time: now, Error: "rejected by " + by})
		}
	}
	return reqs, nil
}

// Enable removes the disabled marker an HTTP 410 put on endpoint.
func Enable(ctx context.Context, p Producer, retryTopic, endpoint string) error {
	if err := p.Produce(ctx, Message{Topic: retryTopic, Key: []byte(DisabledKey(endpoint))}); err != nil {
		return fmt.Errorf("cannot re-enable endpoint %s: %w", endpoint, err)
	}
	return nil
}

// pick returns the live requests ids of topic; "all" picks every one.
func pick(ctx context.Context, f Follower, topic string, ids []string) ([]Request, error) {
	all, err := Snapshot(ctx, f, topic)
	if err != nil {
		return nil, err
	}
	if len(ids) == 1 && ids[0] == "all" {
		return all, nil
	}
	byID := map[string]Request{}
	for _, r := range all {
		byID[r.ID] = r
	}
	out := make([]Request, 0, len(ids))
	for _, id := range ids {
		r, ok := byID[id]
		if !ok {
			return nil, fmt.Errorf("no request %s in %s", id, topic)
		}
		out = append(out, r)
	}
	return out, nil
}
