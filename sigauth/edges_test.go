package sigauth

import (
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/authtoken"
	"github.com/authd-dev/authd/errors"
)

// Every deadline the verifier keeps is checked on both sides: the last
// millisecond it still holds, and the first it no longer does, with the
// verifier's clock and miniredis's moved together.

// TestReplayGuardLastMoment: a signed POST replayed at the last moment its
// timestamp is inside the window is still refused as a replay (the guard's
// key outlives the window), and one millisecond later the window itself
// refuses it.
func TestReplayGuardLastMoment(t *testing.T) {
	for _, skew := range []time.Duration{0, -4 * time.Minute, 4 * time.Minute} {
		e := newTestEnv(t)
		ts := e.now.Add(skew)
		tok := e.token(testWIF, TokenOptions{RequestPath: "/backup", Timestamp: ts})
		if _, err := e.auth("POST", "/backup", tok, nil); err != nil {
			t.Fatalf("skew %v: first use: %v", skew, err)
		}
		e.advance(ts.Add(DefaultWindow).Sub(e.now)) // the token's last valid moment
		_, err := e.auth("POST", "/backup", tok, nil)
		if ee := wantCode(t, err, errors.InvalidTimestamp); ee.Description != descReplay {
			t.Errorf("skew %v: replay at the window's end: %q, want the replay refusal", skew, ee.Description)
		}
		e.advance(time.Millisecond)
		_, err = e.auth("POST", "/backup", tok, nil)
		if ee := wantCode(t, err, errors.InvalidTimestamp); !strings.HasPrefix(ee.Description, "Auth token timestamp is outside the accepted window") {
			t.Errorf("skew %v: replay past the window: %q, want the window refusal", skew, ee.Description)
		}
		// The key lives one second past the window: there one millisecond
		// before that, gone at it.
		key := e.v.replayKey(signerOf(t, testWIF), authtoken.SignedMessage("/backup", authtoken.FormatTimestamp(ts), ""))
		e.advance(time.Second - 2*time.Millisecond)
		if !e.mr.Exists(key) {
			t.Errorf("skew %v: the replay key expired before the window's end + 1 s", skew)
		}
		e.advance(time.Millisecond)
		if e.mr.Exists(key) {
			t.Errorf("skew %v: the replay key outlived the window's end + 1 s", skew)
		}
	}
}

// lockEnv drives the lockout with bad tokens (a signature over another
// path: invalid_signature) and good ones, without moving the clock.
type lockEnv struct{ *testEnv }

func (e lockEnv) bad(t *testing.T, want errors.Code) {
	t.Helper()
	_, err := e.auth("GET", "/backup", e.token(testWIF, TokenOptions{RequestPath: "/elsewhere"}), nil)
	wantCode(t, err, want)
}

// lockNow fails lockoutThreshold times, the last of them locking, and
// returns when the lock ends.
func (e lockEnv) lockNow(t *testing.T, want time.Duration) time.Time {
	t.Helper()
	for range lockoutThreshold {
		e.bad(t, errors.InvalidSignature)
	}
	e.lockedFor(t, want)
	return e.now.Add(want)
}

// lockedFor checks a good token is refused with RetryAfter d.
func (e lockEnv) lockedFor(t *testing.T, d time.Duration) {
	t.Helper()
	_, err := e.auth("GET", "/backup", e.token(testWIF, TokenOptions{RequestPath: "/backup"}), nil)
	if ee := wantCode(t, err, errors.RateLimitExceeded); ee.RetryAfter != d {
		t.Fatalf("RetryAfter %v, want %v", ee.RetryAfter, d)
	}
}

// TestLockoutEnds: each step's lock holds one millisecond before its end
// and is over at it; the failures that follow lock at the next step (the
// last step repeats).
func TestLockoutEnds(t *testing.T) {
	e := lockEnv{newTestEnv(t)}
	steps := append(lockoutSteps[:len(lockoutSteps):len(lockoutSteps)], lockoutSteps[len(lockoutSteps)-1])
	until := e.lockNow(t, steps[0])
	for i, step := range steps {
		e.advance(until.Sub(e.now) - time.Millisecond)
		e.lockedFor(t, time.Millisecond)
		e.bad(t, errors.RateLimitExceeded) // still locked, and not counted
		e.advance(time.Millisecond)
		if i+1 == len(steps) {
			// Over: a good token passes.
			if _, err := e.auth("GET", "/backup", e.token(testWIF, TokenOptions{RequestPath: "/backup"}), nil); err != nil {
				t.Fatalf("after the %v lock: %v", step, err)
			}
			break
		}
		// Over: bad tokens are judged again and counted, without a
		// success (which would reset the level), up to the next step.
		until = e.lockNow(t, steps[i+1])
	}
}

// TestLockoutQuietPeriod: the level escalates while failures come within
// lockoutQuiet of the last one, and starts again from the first step once
// that much time passed without any, to the millisecond.
func TestLockoutQuietPeriod(t *testing.T) {
	for _, tc := range []struct {
		gap  time.Duration
		want time.Duration
	}{
		{lockoutQuiet, lockoutSteps[1]},                    // the last moment of the quiet period: escalates
		{lockoutQuiet + time.Millisecond, lockoutSteps[0]}, // past it: the first step again
	} {
		e := lockEnv{newTestEnv(t)}
		e.lockNow(t, lockoutSteps[0])
		e.advance(tc.gap) // from the last failure
		e.lockNow(t, tc.want)
	}
	// A success within the quiet period, even at its last moment, resets
	// the level: the next failures lock at the first step.
	e := lockEnv{newTestEnv(t)}
	e.lockNow(t, lockoutSteps[0])
	e.advance(lockoutQuiet)
	if _, err := e.auth("GET", "/backup", e.token(testWIF, TokenOptions{RequestPath: "/backup"}), nil); err != nil {
		t.Fatal(err)
	}
	e.lockNow(t, lockoutSteps[0])
}
