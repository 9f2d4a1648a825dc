package ratelimit

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxBatch bounds the decisions sent in one pipeline.
const maxBatch = 128

// batcher runs decisions on Redis, sending those that arrive while others
// are in flight together, one pipeline per round trip. Each decision is
// still its own script run, atomic and exact; batching only saves the
// system calls and round trips that dominate a short script's cost on both
// ends of the connection.
//
// At most max pipelines are in flight. A caller that finds a free slot
// leads: it sends its own decision at once, with whatever else is queued
// (usually nothing on a lightly loaded server, which therefore pays no
// extra latency), then every decision that queued up meanwhile, and hands
// the queue to a goroutine once its own result is in. A caller that finds
// every slot taken queues its decision and waits for a leader to send it.
type batcher struct {
	rdb     redis.UniversalClient
	timeout time.Duration
	max     int

	mu      sync.Mutex
	pending []*call
	leaders int
}

// call is one decision: its script arguments and, once done is closed,
// its result in cmd.
type call struct {
	ctx  context.Context
	keys []string
	args []any
	cmd  *redis.Cmd
	done chan struct{}
}

// run executes c and returns when c is done or ctx is.
func (b *batcher) run(ctx context.Context, c *call) {
	c.ctx = ctx
	c.done = make(chan struct{})
	b.mu.Lock()
	b.pending = append(b.pending, c)
	lead := b.leaders < b.max
	if lead {
		b.leaders++
	}
	b.mu.Unlock()
	if lead {
		b.lead(c)
	}
	select {
	case <-c.done:
	case <-ctx.Done():
	}
}

// lead runs batches from the queue until own is done, then hands what is
// left to a goroutine; with own nil, until the queue is empty.
func (b *batcher) lead(own *call) {
	released := false
	defer func() {
		if !released {
			// exec panicked: give the slot back so that decisions
			// continue (each caller's wait is bounded by its context).
			b.mu.Lock()
			b.leaders--
			b.mu.Unlock()
		}
	}()
	for {
		b.mu.Lock()
		if len(b.pending) == 0 {
			b.leaders--
			b.mu.Unlock()
			released = true
			return
		}
		if own != nil && isDone(own) {
			b.mu.Unlock()
			released = true
			go b.lead(nil)
			return
		}
		n := min(len(b.pending), maxBatch)
		batch := make([]*call, n)
		copy(batch, b.pending)
		rest := copy(b.pending, b.pending[n:])
		clear(b.pending[rest:])
		b.pending = b.pending[:rest]
		b.mu.Unlock()
		b.exec(batch)
	}
}

func isDone(c *call) bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// exec runs one batch and closes each call's done channel. Calls whose
// caller gave up are dropped unsent.
func (b *batcher) exec(batch []*call) {
	live := batch[:0:0]
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.cmd = redis.NewCmd(c.ctx)
			c.cmd.SetErr(err)
			close(c.done)
			continue
		}
		live = append(live, c)
	}
	defer func() {
		for _, c := range live {
			close(c.done)
		}
	}()
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	if len(live) == 1 {
		c := live[0]
		c.cmd = allowScript.Run(ctx, b.rdb, c.keys, c.args...)
		return
	}
	pipe := b.rdb.Pipeline()
	for _, c := range live {
		c.cmd = allowScript.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	pipe.Exec(ctx)
	// After SCRIPT FLUSH, a restart or a failover the script is unknown:
	// send it in full to the calls that were refused for that (EVAL also
	// caches it for the next EVALSHA).
	var again redis.Pipeliner
	for _, c := range live {
		if redis.HasErrorPrefix(c.cmd.Err(), "NOSCRIPT") {
			if again == nil {
				again = b.rdb.Pipeline()
			}
			c.cmd = allowScript.Eval(ctx, again, c.keys, c.args...)
		}
	}
	if again != nil {
		again.Exec(ctx)
	}
}
