package hooks

import (
	"context"
	"time"
)

// Message is one record of a topic. An empty Value is a tombstone.
type Message struct {
	Topic   string
	Key     []byte
	Value   []byte
	Headers map[string]string
}

// Producer writes messages durably.
type Producer interface {
	// Produce blocks until every message is acknowledged by the topic's
	// in-sync replicas, or fails. Safe for concurrent use.
	Produce(ctx context.Context, msgs ...Message) error
}

// Follower reads a topic from its beginning and keeps reading it.
type Follower interface {
	// Follow calls apply for every message of topic, from the first
	// offset, in order within each partition, until ctx ends; apply may
	// be called from several goroutines at once. ready is called once,
	// after every message written before Follow started was applied.
	// Follow blocks and returns ctx's error when ctx ends, or a read
	// error.
	Follow(ctx context.Context, topic string, apply func(Message), ready func()) error
}

// Syncer tells when what was written to a topic has been read back.
type Syncer interface {
	// Sync blocks until every Follow of topic running on this Log has
	// applied every message written to topic before Sync was called, or
	// ctx ends (ctx's error), or the topic's end cannot be read. It is an
	// error when no Follow of topic runs. Safe for concurrent use.
	Sync(ctx context.Context, topic string) error
}

// Log is the retry, parked and held topics' store.
type Log interface {
	Producer
	Follower
	Syncer
}

// produce writes msgs, retrying a failed write (1 s, 2 s, ... 10 s apart)
// until it succeeds or ctx ends: a request must never be dropped because
// the broker blinked.
func produce(ctx context.Context, p Producer, onErr func(error), msgs ...Message) error {
	wait := time.Second
	for {
		err := p.Produce(ctx, msgs...)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		onErr(err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 10*time.Second)
	}
}
