package kafkatest

import (
	"context"
	"testing"
	"time"
)

// TestGroupOffsetsSaysWhenItCannotTell: a topic that does not exist is
// an error, not "nothing committed", while a group that has committed
// nothing on an existing topic reads -1 per partition.
func TestGroupOffsetsSaysWhenItCannotTell(t *testing.T) {
	kc := Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	group := Name(t, "group")
	if offs, err := GroupOffsets(ctx, kc, group, Name(t, "missing")); err == nil {
		t.Fatalf("offsets on a missing topic = %v, want an error", offs)
	}
	topic := Name(t, "cdrs")
	Produce(t, kc, topic, 3, [][]byte{[]byte("v")}, [][]byte{[]byte("k")}, []time.Time{{}})
	offs, err := GroupOffsets(ctx, kc, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(offs) != 3 || offs[0] != -1 || offs[1] != -1 || offs[2] != -1 {
		t.Errorf("offsets of a group that never committed = %v, want [-1 -1 -1]", offs)
	}
	if n := Committed(t, kc, group, topic); n != 0 {
		t.Errorf("Committed = %d, want 0", n)
	}
	ok, state, err := CaughtUp(ctx, kc, group, []string{topic})
	if err != nil || ok {
		t.Errorf("CaughtUp of a group that never committed = %v, %q, %v; want false, nil error", ok, state, err)
	}
}
