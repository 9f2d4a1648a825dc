package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/internal/testenv"
	"github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/oauth/session"
	"github.com/authd-dev/authd/store"
)

// TestConfigSessions: the session lifetimes, their defaults, 0 turning
// sessions off, and the mistakes refused at start.
func TestConfigSessions(t *testing.T) {
	c, err := parseConfig("serve", nil, envFunc(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.SessionIdle != time.Hour || c.SessionMax != 12*time.Hour || serverConfig(c, nil, nil, nil).SessionsOff {
		t.Errorf("defaults: idle %v, max %v", c.SessionIdle, c.SessionMax)
	}
	for _, tc := range []struct {
		env  map[string]string
		args []string
		off  bool
	}{
		{env: map[string]string{"AUTHD_SESSION_IDLE": "0"}, off: true},
		{env: map[string]string{"AUTHD_SESSION_MAX": "0"}, off: true},
		{args: []string{"--session-idle", "0s"}, off: true},
		{env: map[string]string{"AUTHD_SESSION_IDLE": "15m", "AUTHD_SESSION_MAX": "15m"}},
		{env: map[string]string{"AUTHD_SESSION_IDLE": "2h"}, args: []string{"--session-max", "24h"}},
	} {
		c, err := parseConfig("serve", tc.args, envFunc(tc.env), io.Discard)
		if err != nil {
			t.Errorf("%v %v: %v", tc.env, tc.args, err)
			continue
		}
		if got := serverConfig(c, nil, nil, nil).SessionsOff; got != tc.off {
			t.Errorf("%v %v: sessions off = %v", tc.env, tc.args, got)
		}
	}
	for _, tc := range []struct {
		env     map[string]string
		setting string
	}{
		{map[string]string{"AUTHD_SESSION_IDLE": "-1m"}, "AUTHD_SESSION_IDLE"},
		{map[string]string{"AUTHD_SESSION_IDLE": "1h30"}, "AUTHD_SESSION_IDLE"},
		{map[string]string{"AUTHD_SESSION_MAX": "500ms"}, "AUTHD_SESSION_MAX"},
		{map[string]string{"AUTHD_SESSION_IDLE": "13h"}, "AUTHD_SESSION_IDLE"},
	} {
		_, err := parseConfig("serve", nil, envFunc(tc.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.setting) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want one line naming %s", tc.env, err, tc.setting)
		}
	}
}

func sessionsCmd(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), append([]string{"sessions"}, args...), envFunc(env), strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), err
}

// TestSessionsCommand: list prints a subject's live sessions without
// anything a browser could use; revoke ends them by subject or handle.
func TestSessionsCommand(t *testing.T) {
	for _, kind := range []string{"redis", "cluster"} {
		t.Run(kind, func(t *testing.T) {
			env := map[string]string{}
			st := session.New(testenv.Redis(t), session.Config{Idle: time.Hour, Max: 12 * time.Hour})
			if kind == "redis" {
				env["AUTHD_REDIS_URL"] = testenv.RedisURL(t)
			} else {
				env["AUTHD_REDIS_CLUSTER_ADDRS"] = strings.Join(testenv.ClusterAddrs(t), ",")
				st = session.New(testenv.RedisCluster(t), session.Config{Idle: time.Hour, Max: 12 * time.Hour})
			}
			ctx := context.Background()
			sub := testenv.Name("1Sessions")
			var ids, handles []string
			for _, client := range []string{"app-one", "app-two"} {
				id, s, err := st.Create(ctx, session.SignIn{Subject: sub, AuthTime: time.Now(), Methods: []string{oauth.AMRSoftwareKey}, Client: client})
				if err != nil {
					t.Fatal(err)
				}
				ids, handles = append(ids, id), append(handles, s.Handle)
			}

			out, _, err := sessionsCmd(t, env, "list", "--subject", sub)
			if err != nil {
				t.Fatal(err)
			}
			var list []map[string]any
			if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 2 {
				t.Fatalf("list: %v\n%s", err, out)
			}
			for i, s := range list {
				if s["handle"] != handles[i] || s["subject"] != sub || s["auth_time"] == nil || s["last_seen"] == nil ||
					s["expires_at"] == nil || s["idle_until"] == nil || !jsonEq(s["amr"], []string{"swk"}) || !jsonEq(s["clients"], []string{[]string{"app-one", "app-two"}[i]}) {
					t.Errorf("session %d: %v", i, s)
				}
			}
			for _, id := range ids {
				if strings.Contains(out, id) {
					t.Fatal("list printed a session id")
				}
			}

			// Revoke one by its handle, then the rest by subject.
			out, errOut, err := sessionsCmd(t, env, "revoke", handles[0])
			if err != nil || !strings.Contains(out, `"revoked": true`) || !strings.Contains(errOut, "stay valid") {
				t.Fatalf("revoke handle: %v %s %s", err, out, errOut)
			}
			if s, _ := st.Resume(ctx, ids[0], ""); s != nil {
				t.Error("the revoked session lives on")
			}
			if s, _ := st.Resume(ctx, ids[1], ""); s == nil {
				t.Error("revoking one session ended another")
			}
			if _, _, err := sessionsCmd(t, env, "revoke", handles[0]); err == nil || !strings.Contains(err.Error(), "no live session") {
				t.Errorf("revoking it again: %v", err)
			}
			out, _, err = sessionsCmd(t, env, "revoke", "--subject", sub)
			if err != nil || !strings.Contains(out, `"revoked": 1`) {
				t.Fatalf("revoke subject: %v %s", err, out)
			}
			if s, _ := st.Resume(ctx, ids[1], ""); s != nil {
				t.Error("revoke --subject left a session")
			}
			out, _, _ = sessionsCmd(t, env, "list", "--subject", sub)
			if strings.TrimSpace(out) != "[]" {
				t.Errorf("list after revoking: %s", out)
			}
		})
	}
}

func jsonEq(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestSessionsCommandUsage: every mistake is a clear error, and none
// reaches Redis.
func TestSessionsCommandUsage(t *testing.T) {
	env := map[string]string{"AUTHD_REDIS_URL": "redis://127.0.0.1:1/0"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing subcommand"},
		{[]string{"purge"}, "unknown subcommand"},
		{[]string{"list"}, "--subject"},
		{[]string{"list", "--subject", "x", "extra"}, "--subject"},
		{[]string{"revoke"}, "either --subject"},
		{[]string{"revoke", "--subject", "x", "AAAAAAAAAAAAAAAAAAAAAA"}, "either --subject"},
		{[]string{"revoke", "not-a-handle"}, "not a session handle"},
	} {
		_, _, err := sessionsCmd(t, env, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	_, _, err := sessionsCmd(t, nil, "list", "--subject", "x")
	if err == nil || !strings.Contains(err.Error(), "AUTHD_REDIS_URL") {
		t.Errorf("without Redis settings: %v", err)
	}
	out, _, err := sessionsCmd(t, nil, "help")
	if err != nil || !strings.Contains(out, "Tokens already issued are not") {
		t.Errorf("help: %v %s", err, out)
	}
}

// TestClientCreatePostLogoutRedirectURI: the URIs /logout may lead to are
// registered, validated like redirect URIs, and listed.
func TestClientCreatePostLogoutRedirectURI(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		out, _, err := runCmd(t, clientCmd, db, "create", "--name", "RP", "--redirect-uri", "https://rp.example.com/cb",
			"--post-logout-redirect-uri", "https://rp.example.com/bye", "--post-logout-redirect-uri", "http://127.0.0.1:8000/bye")
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		json.Unmarshal([]byte(out), &c)
		if !jsonEq(c["post_logout_redirect_uris"], []string{"https://rp.example.com/bye", "http://127.0.0.1:8000/bye"}) {
			t.Errorf("create: %s", out)
		}
		out, _, _ = runCmd(t, clientCmd, db, "list")
		if !strings.Contains(out, `"post_logout_redirect_uris": [`) {
			t.Errorf("list: %s", out)
		}
		_, _, err = runCmd(t, clientCmd, db, "create", "--name", "RP", "--redirect-uri", "https://rp.example.com/cb",
			"--post-logout-redirect-uri", "http://rp.example.com/bye")
		if err == nil || !strings.Contains(err.Error(), "Post-logout redirect URI") || !strings.Contains(err.Error(), "https") {
			t.Errorf("http post-logout URI: %v", err)
		}
		// Without one, the output has none.
		out, _, _ = runCmd(t, clientCmd, db, "create", "--name", "RP", "--redirect-uri", "https://rp.example.com/cb")
		if strings.Contains(out, "post_logout_redirect_uris") {
			t.Errorf("create without: %s", out)
		}
	})
}
