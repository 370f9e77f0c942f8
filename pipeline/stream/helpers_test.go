package stream_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio/kafkatest"
	"github.com/cdrguard/cdrguard/pipeline/rules"
	"github.com/cdrguard/cdrguard/pipeline/stream"
	"github.com/cdrguard/cdrguard/pipeline/synth"
	"github.com/cdrguard/cdrguard/schemas"
)

func defaultRules(t testing.TB) *rules.Set {
	t.Helper()
	set, err := rules.Load("../../deploy/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// replayAlerts is what `cdrguard replay` raises on records.
func replayAlerts(t testing.TB, recs []schemas.CDR) []schemas.Alert {
	t.Helper()
	return kafkatest.Replay(t, "../../deploy/rules.yaml", recs)
}

// job runs a streaming job in the background.
type job struct {
	cancel context.CancelFunc
	done   chan error
}

func testConfig(t testing.TB, kc *kafkaio.Client, topic, group, alerts string) stream.Config {
	t.Helper()
	return stream.Config{
		Kafka: kc, Topic: topic, Group: group, AlertsTopic: alerts, CreateTopics: true, ReplicationFactor: -1,
		Rules: defaultRules(t), IdleRelease: 2 * time.Second, CommitInterval: 200 * time.Millisecond,
		SessionTimeout: 6 * time.Second, RebalanceTimeout: 10 * time.Second, ShutdownTimeout: 20 * time.Second,
		Log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	}
}

func start(t testing.TB, cfg stream.Config) *job {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	j := &job{cancel: cancel, done: make(chan error, 1)}
	go func() { j.done <- stream.Run(ctx, cfg) }()
	return j
}

// stop asks the job to shut down and waits for it.
func (j *job) stop(t testing.TB) {
	t.Helper()
	j.cancel()
	select {
	case err := <-j.done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("job: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("job did not stop within a minute")
	}
}

var dayCache sync.Map

// day returns a generated day (cached per seed and scale).
func day(seed uint64, scale float64) []schemas.CDR {
	key := fmt.Sprint(seed, scale)
	if v, ok := dayCache.Load(key); ok {
		return v.([]schemas.CDR)
	}
	recs := synth.Generate(synth.Config{Seed: seed, Scale: scale}).Records
	dayCache.Store(key, recs)
	return recs
}
