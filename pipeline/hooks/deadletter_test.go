package hooks

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestUndecodableAlertSetAside: a message of the alerts topic that is no
// alert is counted, set aside in the dead-letter topic with the reason
// and its origin in headers, and committed; the alerts after it are
// delivered.
func TestUndecodableAlertSetAside(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLog()
		ep := testEndpoint(t, "sps")
		r := newReceiver(t, ep.SecretEnv, 200)
		d, err := New(Options{Config: Config{Endpoints: []EndpointConfig{ep}}, AlertsTopic: "alerts", Log: l,
			Doer: func(Endpoint) Doer { return handlerDoer{r} }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- d.Run(ctx, l.source()) }()
		defer func() {
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v", err)
			}
		}()
		if err := l.Produce(ctx, Message{Topic: "alerts", Key: []byte("k"), Value: []byte(`{"alert_id":`)}); err != nil {
			t.Fatal(err)
		}
		l.produceAlerts(t, testAlert("a1", "+15550100001"))
		time.Sleep(time.Second)
		synctest.Wait()
		dlq := l.messages("alerts.hooks-dlq")
		if len(dlq) != 1 {
			t.Fatalf("%d messages in the dead-letter topic, want 1", len(dlq))
		}
		m := dlq[0]
		if string(m.Value) != `{"alert_id":` || string(m.Key) != "k" || m.Headers["cdrguard-topic"] != "alerts" ||
			m.Headers["cdrguard-partition"] != "0" || m.Headers["cdrguard-offset"] != "0" || !strings.Contains(m.Headers["cdrguard-error"], "alert") {
			t.Errorf("dead letter %q %q %v", m.Key, m.Value, m.Headers)
		}
		if n := testutil.ToFloat64(d.metrics.badAlerts); n != 1 {
			t.Errorf("bad alerts counted %v, want 1", n)
		}
		if n := len(r.received()); n != 1 {
			t.Errorf("delivered %d, want the alert after it", n)
		}
		if c := l.committedAlerts(); c != 2 {
			t.Errorf("committed %d of 2", c)
		}
	})
}

// TestUndecodableAlertWaitsForTheDeadLetterTopic: while the dead-letter
// topic cannot be written, the message stays unresolved (its offset is
// not committed) and the alerts after it are still delivered.
func TestUndecodableAlertWaitsForTheDeadLetterTopic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &topicDown{memLog: newMemLog(), topic: "alerts.hooks-dlq"}
		l.down.Store(true)
		ep := testEndpoint(t, "sps")
		r := newReceiver(t, ep.SecretEnv, 200)
		d, err := New(Options{Config: Config{Endpoints: []EndpointConfig{ep}}, AlertsTopic: "alerts", Log: l,
			Doer: func(Endpoint) Doer { return handlerDoer{r} }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- d.Run(ctx, l.source()) }()
		defer func() {
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v", err)
			}
		}()
		if err := l.memLog.Produce(ctx, Message{Topic: "alerts", Value: []byte("not json")}); err != nil {
			t.Fatal(err)
		}
		l.produceAlerts(t, testAlert("a1", "+15550100001"))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := len(r.received()); n != 1 {
			t.Errorf("delivered %d while the dead-letter topic is down, want 1", n)
		}
		if c := l.committedAlerts(); c != 0 {
			t.Errorf("committed %d before the dead letter was written", c)
		}
		l.down.Store(false)
		time.Sleep(15 * time.Second)
		synctest.Wait()
		if n := len(l.messages("alerts.hooks-dlq")); n != 1 {
			t.Errorf("%d dead letters, want 1", n)
		}
		if c := l.committedAlerts(); c != 2 {
			t.Errorf("committed %d of 2", c)
		}
	})
}

// topicDown is a memLog one topic of which refuses writes while down.
type topicDown struct {
	*memLog
	topic string
	down  atomic.Bool
}

func (l *topicDown) Produce(ctx context.Context, msgs ...Message) error {
	for _, m := range msgs {
		if l.down.Load() && m.Topic == l.topic {
			return errors.New("unknown topic " + m.Topic)
		}
	}
	return l.memLog.Produce(ctx, msgs...)
}
