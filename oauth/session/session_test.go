package session_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/testenv"
	"github.com/authd-dev/authd/oauth/session"
	"github.com/redis/go-redis/v9"
)

// clock is a settable Config.Now.
type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) Set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// eachRedis runs f on a real Redis server, a Redis Cluster and miniredis.
func eachRedis(t *testing.T, f func(t *testing.T, rdb redis.UniversalClient)) {
	t.Run("redis", func(t *testing.T) { f(t, testenv.Redis(t)) })
	t.Run("cluster", func(t *testing.T) { f(t, testenv.RedisCluster(t)) })
	t.Run("miniredis", func(t *testing.T) {
		mr := miniredis.RunT(t)
		c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { c.Close() })
		f(t, c)
	})
}

const idle, maxLife = 30 * time.Minute, 2 * time.Hour

func newStore(rdb redis.UniversalClient) (*session.Store, *clock) {
	c := &clock{}
	c.Set(time.Now().Truncate(time.Second))
	return session.New(rdb, session.Config{Idle: idle, Max: maxLife, Now: c.Now}), c
}

// TestLifecycle: a session is created, resumed (recording its use and
// clients), listed and ended; both deadlines hold on the store's clock.
func TestLifecycle(t *testing.T) {
	eachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s, clk := newStore(rdb)
		t0 := clk.Now()
		sub := testenv.Name("1Subject")
		id, sess, err := s.Create(ctx, session.SignIn{Subject: sub, AuthTime: t0.Add(-time.Second), Methods: []string{"swk"}, Client: "a"})
		if err != nil {
			t.Fatal(err)
		}
		if !session.ValidID(id) || sess.Handle != session.Handle(id) || !session.ValidHandle(sess.Handle) || sess.Handle == id {
			t.Fatalf("id %q handle %q", id, sess.Handle)
		}
		if !sess.IdleUntil.Equal(t0.Add(idle)) || !sess.Expires.Equal(t0.Add(maxLife)) || !slices.Equal(sess.Clients, []string{"a"}) {
			t.Errorf("new session %+v", sess)
		}

		// Resumed just before the idle deadline: live, and its deadline
		// moves; the client joins once.
		clk.Set(t0.Add(idle - time.Millisecond))
		got, err := s.Resume(ctx, id, "b")
		if err != nil || got == nil {
			t.Fatalf("resume before the idle deadline: %+v %v", got, err)
		}
		if got.Subject != sub || !got.AuthTime.Equal(t0.Add(-time.Second)) || !slices.Equal(got.Methods, []string{"swk"}) ||
			!got.IdleUntil.Equal(clk.Now().Add(idle)) || !got.LastSeen.Equal(clk.Now()) || !slices.Equal(got.Clients, []string{"a", "b"}) {
			t.Errorf("resumed %+v", got)
		}
		if got, _ := s.Resume(ctx, id, "a"); got == nil || !slices.Equal(got.Clients, []string{"a", "b"}) {
			t.Errorf("a client recorded twice: %+v", got)
		}
		if g, err := s.Get(ctx, sess.Handle); err != nil || g == nil || g.Subject != sub {
			t.Errorf("Get: %+v %v", g, err)
		}
		list, err := s.List(ctx, sub)
		if err != nil || len(list) != 1 || list[0].Handle != sess.Handle {
			t.Fatalf("List: %+v %v", list, err)
		}

		// The idle deadline: one millisecond before it live, at it not.
		last := clk.Now()
		clk.Set(last.Add(idle))
		if got, err := s.Resume(ctx, id, ""); got != nil || err != nil {
			t.Errorf("resumed at its idle deadline: %+v %v", got, err)
		}
		if g, _ := s.Get(ctx, sess.Handle); g != nil {
			t.Error("Get found an idle-expired session")
		}
		if list, _ := s.List(ctx, sub); len(list) != 0 {
			t.Errorf("List after expiry: %+v", list)
		}

		// The absolute deadline, however often used.
		clk.Set(t0)
		id, _, err = s.Create(ctx, session.SignIn{Subject: sub, AuthTime: t0})
		if err != nil {
			t.Fatal(err)
		}
		for at := idle - time.Minute; at < maxLife; at += idle - time.Minute {
			clk.Set(t0.Add(at))
			if got, _ := s.Resume(ctx, id, ""); got == nil {
				t.Fatalf("ended at %v", at)
			}
		}
		clk.Set(t0.Add(maxLife - time.Millisecond))
		if got, _ := s.Resume(ctx, id, ""); got == nil || !got.IdleUntil.Equal(t0.Add(maxLife)) {
			t.Fatalf("before the absolute deadline: %+v", got)
		}
		clk.Set(t0.Add(maxLife))
		if got, _ := s.Resume(ctx, id, ""); got != nil {
			t.Fatalf("resumed at its absolute deadline: %+v", got)
		}

		// Ending.
		clk.Set(t0)
		id, sess, _ = s.Create(ctx, session.SignIn{Subject: sub, AuthTime: t0})
		if ok, err := s.End(ctx, sess.Handle); !ok || err != nil {
			t.Fatalf("End: %v %v", ok, err)
		}
		if ok, _ := s.End(ctx, sess.Handle); ok {
			t.Error("ended twice")
		}
		if got, _ := s.Resume(ctx, id, ""); got != nil {
			t.Error("resumed an ended session")
		}
	})
}

// TestBadIDs: what is not a session id or handle costs nothing and finds
// nothing.
func TestBadIDs(t *testing.T) {
	s := session.New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1}), session.Config{Idle: idle, Max: maxLife})
	ctx := context.Background()
	for _, id := range []string{"", "x", "a.b", string(make([]byte, 43)), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		if got, err := s.Resume(ctx, id, ""); got != nil || err != nil {
			t.Errorf("Resume(%q): %v %v", id, got, err)
		}
	}
	for _, h := range []string{"", "short", "AAAAAAAAAAAAAAAAAAAAA*", "AAAAAAAAAAAAAAAAAAAAAAA"} {
		if got, err := s.Get(ctx, h); got != nil || err != nil {
			t.Errorf("Get(%q): %v %v", h, got, err)
		}
		if ok, err := s.End(ctx, h); ok || err != nil {
			t.Errorf("End(%q): %v %v", h, ok, err)
		}
	}
	// A well-formed id reaches Redis, which is down: 503.
	_, err := s.Resume(ctx, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "")
	if errors.CodeOf(err) != errors.TemporarilyUnavailable {
		t.Errorf("Redis down: %v", err)
	}
	if _, _, err := s.Create(ctx, session.SignIn{Subject: "x", AuthTime: time.Now()}); errors.CodeOf(err) != errors.TemporarilyUnavailable {
		t.Errorf("Create with Redis down: %v", err)
	}
	if _, _, err := s.Create(ctx, session.SignIn{AuthTime: time.Now()}); errors.CodeOf(err) != errors.ServerError {
		t.Errorf("Create without a subject: %v", err)
	}
}

// TestPerSubject: listing and revoking by subject reach every session of
// the subject and no other's; a subject keeps at most MaxPerSubject, the
// oldest ending first.
func TestPerSubject(t *testing.T) {
	eachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s, clk := newStore(rdb)
		sub, other := testenv.Name("1A"), testenv.Name("1B")
		var ids []string
		for i := range session.MaxPerSubject + 3 {
			clk.Add(time.Second)
			id, _, err := s.Create(ctx, session.SignIn{Subject: sub, AuthTime: clk.Now(), Client: "c" + strconv.Itoa(i)})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		oid, _, _ := s.Create(ctx, session.SignIn{Subject: other, AuthTime: clk.Now()})
		list, err := s.List(ctx, sub)
		if err != nil || len(list) != session.MaxPerSubject {
			t.Fatalf("List: %d sessions, %v; want %d", len(list), err, session.MaxPerSubject)
		}
		if list[0].Handle != session.Handle(ids[3]) || list[len(list)-1].Handle != session.Handle(ids[len(ids)-1]) {
			t.Error("List is not oldest first, or the wrong sessions were ended")
		}
		for _, id := range ids[:3] {
			if got, _ := s.Resume(ctx, id, ""); got != nil {
				t.Error("a session beyond the cap lives on")
			}
		}
		n, err := s.EndSubject(ctx, sub)
		if err != nil || n != session.MaxPerSubject {
			t.Fatalf("EndSubject: %d %v", n, err)
		}
		for _, id := range ids {
			if got, _ := s.Resume(ctx, id, ""); got != nil {
				t.Fatal("a session outlived EndSubject")
			}
		}
		if got, _ := s.Resume(ctx, oid, ""); got == nil {
			t.Error("EndSubject ended another subject's session")
		}
		if n, _ := s.EndSubject(ctx, sub); n != 0 {
			t.Errorf("EndSubject again: %d", n)
		}
	})
}

// TestEndRace: 8 racers ending one session: exactly one ends it, and a
// resume racing them never brings it back.
func TestEndRace(t *testing.T) {
	eachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s, clk := newStore(rdb)
		for trial := range 20 {
			id, sess, err := s.Create(ctx, session.SignIn{Subject: testenv.Name("1R"), AuthTime: clk.Now()})
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var ended atomic.Int32
			start := make(chan struct{})
			for i := range 9 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					if i == 8 {
						s.Resume(ctx, id, "late")
						return
					}
					if ok, err := s.End(ctx, sess.Handle); err != nil {
						t.Error(err)
					} else if ok {
						ended.Add(1)
					}
				}()
			}
			close(start)
			wg.Wait()
			if ended.Load() != 1 {
				t.Fatalf("trial %d: %d racers ended the session; want exactly 1", trial, ended.Load())
			}
			if got, _ := s.Resume(ctx, id, ""); got != nil {
				t.Fatalf("trial %d: the session came back: %+v", trial, got)
			}
		}
	})
}
