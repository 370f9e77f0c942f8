package console

import (
	"context"
	"fmt"

	"github.com/cdrguard/cdrguard/pipeline/hooks"
)

// Waiting lists the webhook requests waiting for a supervisor, as the
// dispatcher's topics hold them now.
type Waiting interface {
	// Waiting returns the held requests (over a budget, waiting for
	// approval) and the parked ones (given up, waiting for a redelivery),
	// oldest first. It blocks until both topics are read to their current
	// end or ctx ends; safe for concurrent use.
	Waiting(ctx context.Context) (held, parked []hooks.Request, err error)
}

// TopicWaiting reads the dispatcher's held and parked topics, as
// `cdrguard hooks held` and `hooks parked` do.
type TopicWaiting struct {
	// Follower reads the topics (*hooks.KafkaLog).
	Follower hooks.Follower
	// HeldTopic and ParkedTopic are hooks.held_topic and
	// hooks.parked_topic with their defaults.
	HeldTopic, ParkedTopic string
}

// Waiting implements Waiting.
func (w TopicWaiting) Waiting(ctx context.Context) (held, parked []hooks.Request, err error) {
	if held, err = hooks.Snapshot(ctx, w.Follower, w.HeldTopic); err != nil {
		return nil, nil, fmt.Errorf("cannot read the held requests: %w", err)
	}
	if parked, err = hooks.Snapshot(ctx, w.Follower, w.ParkedTopic); err != nil {
		return nil, nil, fmt.Errorf("cannot read the parked requests: %w", err)
	}
	return held, parked, nil
}
