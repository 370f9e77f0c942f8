package hooks

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestBatchRecorderRetriesAndFlushes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var rows []Delivery
		fail := true
		r := NewBatchRecorder(func(_ context.Context, ds []Delivery) error {
			mu.Lock()
			defer mu.Unlock()
			if fail {
				return errors.New("clickhouse down")
			}
			rows = append(rows, ds...)
			return nil
		}, 10, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { r.Run(ctx); close(done) }()
		for i := range 12 {
			r.Record(Delivery{RequestID: itoa(i)})
			synctest.Wait()
		}
		time.Sleep(time.Second)
		mu.Lock()
		fail = false
		mu.Unlock()
		time.Sleep(time.Second)
		r.Record(Delivery{RequestID: "last"})
		cancel()
		<-done
		if len(rows) != 13 || r.Dropped() != 0 {
			t.Errorf("inserted %d rows, dropped %d; want 13, 0", len(rows), r.Dropped())
		}
	})
}
