package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/internal/testenv"
	"github.com/authd-dev/authd/store"
)

func runCmd(t *testing.T, f func(context.Context, *store.DB, []string, *bytes.Buffer, *bytes.Buffer) error, db *store.DB, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := f(context.Background(), db, args, &out, &errb)
	return out.String(), errb.String(), err
}

func clientCmd(ctx context.Context, db *store.DB, args []string, out, errb *bytes.Buffer) error {
	return runClient(ctx, db, args, out, errb)
}

func keysCmd(ctx context.Context, db *store.DB, args []string, out, errb *bytes.Buffer) error {
	return runKeys(ctx, db, args, envFunc(map[string]string{keyFileEnv: sharedKeyFile()}), out, errb)
}

func TestClientCreate(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		out, _, err := runCmd(t, clientCmd, db, "create", "--name", "My App",
			"--redirect-uri", "https://app.example.com/cb", "--redirect-uri", "http://127.0.0.1/cb",
			"--scope", "profile backup", "--grant", "authorization_code,refresh_token,client_credentials")
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		if err := json.Unmarshal([]byte(out), &c); err != nil {
			t.Fatalf("not JSON: %s", out)
		}
		id, _ := c["client_id"].(string)
		secret, _ := c["client_secret"].(string)
		if id == "" || len(secret) != 43 || c["client_name"] != "My App" || c["scope"] != "profile backup" ||
			c["token_endpoint_auth_method"] != "client_secret_basic" {
			t.Errorf("output %s", out)
		}
		if !strings.HasPrefix(out, "{\n  \"client_id\": ") || !strings.Contains(out, "\"client_secret\": ") {
			t.Errorf("client_id and client_secret should lead the output:\n%s", out)
		}
		// Stored hashed: the secret itself is nowhere in the database.
		var hash string
		if err := db.QueryRowContext(context.Background(), `SELECT secret_hash FROM oauth_clients WHERE id = $1`, id).Scan(&hash); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(secret))
		if hash != hex.EncodeToString(sum[:]) || strings.Contains(hash, secret) {
			t.Errorf("secret_hash %q", hash)
		}

		// Defaults, public.
		out, _, err = runCmd(t, clientCmd, db, "create", "--name", "SPA", "--public", "--redirect-uri", "com.example.app:/oauth")
		if err != nil {
			t.Fatal(err)
		}
		c = map[string]any{}
		if err := json.Unmarshal([]byte(out), &c); err != nil {
			t.Fatalf("not JSON: %s", out)
		}
		if _, has := c["client_secret"]; has || c["token_endpoint_auth_method"] != "none" || c["scope"] != "profile" {
			t.Errorf("public client %s", out)
		}
		if g, _ := c["grant_types"].([]any); len(g) != 2 || g[0] != "authorization_code" || g[1] != "refresh_token" {
			t.Errorf("default grants %v", g)
		}

		// List: both, no secrets.
		out, _, err = runCmd(t, clientCmd, db, "list")
		if err != nil {
			t.Fatal(err)
		}
		var list []map[string]any
		if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 2 {
			t.Fatalf("list: %s", out)
		}
		if strings.Contains(out, secret) || strings.Contains(out, "secret\"") {
			t.Errorf("list shows secrets: %s", out)
		}

		// Delete.
		if _, _, err := runCmd(t, clientCmd, db, "delete", id); err != nil {
			t.Fatal(err)
		}
		if _, _, err := runCmd(t, clientCmd, db, "delete", id); err == nil || !strings.Contains(err.Error(), "no client") {
			t.Errorf("deleting twice: %v", err)
		}
		out, _, err = runCmd(t, clientCmd, db, "list")
		list = nil
		if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 {
			t.Errorf("list after delete: %s %v", out, err)
		}
	})
}

func TestClientCreateRejects(t *testing.T) {
	db := testenv.DB(t, store.SQLite)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "--redirect-uri", "https://a.example/cb"}, "--name"},
		{[]string{"create", "--name", "x"}, "redirect-uri"},
		{[]string{"create", "--name", "x", "--redirect-uri", "http://app.example.com/cb"}, "https"},
		{[]string{"create", "--name", "x", "--redirect-uri", "https://app.example.com/cb#frag"}, "fragment"},
		{[]string{"create", "--name", "x", "--redirect-uri", "/cb"}, "absolute"},
		{[]string{"create", "--name", "x", "--redirect-uri", "app.example.com/cb"}, "absolute"},
		{[]string{"create", "--name", "x", "--redirect-uri", "https://user:pw@app.example.com/cb"}, "user information"},
		{[]string{"create", "--name", "x", "--redirect-uri", "https://*.example.com/cb"}, "wildcard"},
		{[]string{"create", "--name", "x", "--redirect-uri", "javascript:alert(1)"}, "private-use"},
		{[]string{"create", "--name", "x", "--redirect-uri", "myapp:/cb"}, "private-use"},
		{[]string{"create", "--name", "x", "--redirect-uri", "com.example.app://host/cb"}, "no authority"},
		{[]string{"create", "--name", "x", "--redirect-uri", "https:///cb"}, "host"},
		{[]string{"create", "--name", "x", "--redirect-uri", "https://app.example.com/c b"}, "spaces"},
		{[]string{"create", "--name", "x", "--redirect-uri", "https://a.example/cb", "--grant", "password"}, "Unknown grant"},
		{[]string{"create", "--name", "x", "--public", "--grant", "client_credentials"}, "public client"},
		{[]string{"create", "--name", "x", "--redirect-uri", "https://a.example/cb", "--scope", `pro"file`}, "Invalid scope"},
		{[]string{"create", "--name", "x", "--redirect-uri", "https://a.example/cb", "stray"}, "unexpected argument"},
		{[]string{"create", "--nope"}, "flag provided but not defined"},
		{[]string{}, "missing subcommand"},
		{[]string{"frobnicate"}, "unknown subcommand"},
		{[]string{"delete"}, "CLIENT_ID"},
		{[]string{"list", "x"}, "no arguments"},
	} {
		_, _, err := runCmd(t, clientCmd, db, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error mentioning %q", tc.args, err, tc.want)
		}
	}
	for _, ok := range []string{"https://app.example.com/cb", "http://localhost:8080/cb", "http://127.0.0.1/cb", "http://[::1]:9/cb", "com.example.app:/oauth", "https://app.example.com/cb?tenant=1"} {
		if _, _, err := runCmd(t, clientCmd, db, "create", "--name", "ok", "--redirect-uri", ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	// A client_credentials-only client needs no redirect URI.
	if _, _, err := runCmd(t, clientCmd, db, "create", "--name", "svc", "--grant", "client_credentials"); err != nil {
		t.Errorf("client_credentials only: %v", err)
	}
}

func TestKeysCommand(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		out, _, err := runCmd(t, keysCmd, db, "list")
		if err != nil || strings.TrimSpace(out) != "[]" {
			t.Fatalf("empty list: %q %v", out, err)
		}
		rotate := func(args ...string) []map[string]any {
			t.Helper()
			out, _, err := runCmd(t, keysCmd, db, append([]string{"rotate"}, args...)...)
			var made []map[string]any
			if err != nil || json.Unmarshal([]byte(out), &made) != nil {
				t.Fatalf("rotate %v: %s %v", args, out, err)
			}
			// Keys in one millisecond are kept apart by one: let it pass.
			time.Sleep(3 * time.Millisecond)
			return made
		}
		// Without --alg: one key of each algorithm.
		both := rotate("--now")
		if len(both) != 2 || both[0]["alg"] != "ES256" || both[1]["alg"] != "RS256" ||
			both[0]["status"] != "current" || both[1]["status"] != "current" || both[0]["kid"] == both[1]["kid"] {
			t.Fatalf("rotate --now: %v", both)
		}
		kids := []string{both[0]["kid"].(string)}
		second := rotate("--alg", "ES256", "--now")
		if len(second) != 1 || second[0]["alg"] != "ES256" || second[0]["status"] != "current" {
			t.Fatalf("rotate --alg ES256 --now: %v", second)
		}
		kids = append(kids, second[0]["kid"].(string))
		// A routine rotation: published now, signing in 7 minutes.
		next := rotate("--alg", "RS256")
		if len(next) != 1 || next[0]["alg"] != "RS256" || next[0]["status"] != "next" {
			t.Fatalf("rotate --alg RS256: %v", next)
		}
		if at, err := time.Parse(time.RFC3339, next[0]["active_from"].(string)); err != nil || time.Until(at) < 6*time.Minute {
			t.Errorf("rotated key active from %v, want about 7 minutes from now", next[0]["active_from"])
		}
		out, _, err = runCmd(t, keysCmd, db, "list")
		var list []map[string]any
		if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 4 {
			t.Fatalf("list: %s %v", out, err)
		}
		// Each algorithm has its own current key: the RS256 key from the
		// first rotation stays current while the ES256 one is previous.
		statuses := map[any][]any{}
		for _, k := range list {
			statuses[k["alg"]] = append(statuses[k["alg"]], k["status"])
		}
		if fmt.Sprint(statuses["ES256"]) != "[current previous]" || fmt.Sprint(statuses["RS256"]) != "[next current]" || list[0]["status"] != "next" {
			t.Errorf("list: %s", out)
		}
		if strings.Contains(out, "private") {
			t.Error("list shows private keys")
		}
		// A leaked key: rotate --now happened above; retire the old one.
		if _, _, err := runCmd(t, keysCmd, db, "retire", kids[1]); err == nil {
			t.Error("retired the ES256 key that signs")
		}
		if _, _, err := runCmd(t, keysCmd, db, "retire", both[1]["kid"].(string)); err == nil {
			t.Error("retired the RS256 key that signs")
		}
		if out, _, err := runCmd(t, keysCmd, db, "retire", kids[0]); err != nil || !strings.Contains(out, kids[0]) {
			t.Errorf("retire: %q %v", out, err)
		}
		if _, _, err := runCmd(t, keysCmd, db, "retire", kids[0]); err == nil {
			t.Error("retired a key twice")
		}
		out, _, err = runCmd(t, keysCmd, db, "list")
		if err != nil || strings.Contains(out, kids[0]) || !strings.Contains(out, kids[1]) {
			t.Errorf("list after retiring %s: %s %v", kids[0], out, err)
		}
		for _, bad := range [][]string{{}, {"delete"}, {"rotate", "--alg", "HS256"}, {"rotate", "now"}, {"list", "x"}} {
			if _, _, err := runCmd(t, keysCmd, db, bad...); err == nil {
				t.Errorf("keys %v accepted", bad)
			}
		}
	})
}
