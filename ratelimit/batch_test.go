package ratelimit

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
)

// TestBatcherDrains runs many concurrent decisions through one pipeline
// slot, some of whose callers give up at once: every caller returns, the
// live ones with a decision, and the batcher ends empty with no leader.
func TestBatcherDrains(t *testing.T) {
	l, _, _ := newMini(t, Options{Pipelines: 1, Timeout: 5 * time.Second})
	p := Policy{Name: "drain", Limit: 150, Window: time.Hour}
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted, canceled := 0, 0
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			if i%10 == 0 {
				c, cancel := context.WithCancel(ctx)
				cancel()
				ctx = c
			}
			d, err := allow(ctx, l, "drain", p)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && ctx.Err() != nil && errors.CodeOf(err) == errors.TemporarilyUnavailable:
				canceled++
			case err != nil:
				t.Errorf("Allow: %v", err)
			case d.Allowed:
				admitted++
			}
		}()
	}
	wg.Wait()
	if canceled != 20 || admitted != 150 {
		t.Errorf("%d canceled, %d admitted; want 20 and 150", canceled, admitted)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.batch.mu.Lock()
		leaders, pending := l.batch.leaders, len(l.batch.pending)
		l.batch.mu.Unlock()
		if leaders == 0 && pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("batcher left with %d leaders and %d pending calls", leaders, pending)
		}
		time.Sleep(time.Millisecond)
	}
}
