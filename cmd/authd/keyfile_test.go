package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authd-dev/authd/internal/testenv"
	"github.com/authd-dev/authd/migrations"
	"github.com/authd-dev/authd/store"
	"github.com/pressly/goose/v3"
)

// newKeyLine returns one key-encryption key line, as openssl rand -base64
// 32 prints it.
func newKeyLine() string {
	k := make([]byte, 32)
	rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

// writeKeyFile writes a key-encryption key file with lines (one new key
// when none are given), mode 0600, in a temporary directory of t.
func writeKeyFile(t testing.TB, lines ...string) string {
	t.Helper()
	if len(lines) == 0 {
		lines = []string{newKeyLine()}
	}
	p := filepath.Join(t.TempDir(), "authd.keys")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sharedKeyFile is a key-encryption key file for command helpers that have
// no testing.T; it lives as long as the test binary's temporary files.
var sharedKeyFile = sync.OnceValue(func() string {
	dir, err := os.MkdirTemp("", "authd-keys-")
	if err != nil {
		panic(err)
	}
	p := filepath.Join(dir, "authd.keys")
	if err := os.WriteFile(p, []byte(newKeyLine()+"\n"), 0o600); err != nil {
		panic(err)
	}
	return p
})

// TestKeyFileSetting: AUTHD_KEY_ENCRYPTION_KEY_FILE (and --key-encryption-
// key-file) must name a private file of valid keys; PostgreSQL needs it;
// with SQLite it defaults to <database>.keys, which may not exist yet.
func TestKeyFileSetting(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secret := newKeyLine()
	good := write("good.keys", "# comment\n\n"+newKeyLine()+"\n  "+newKeyLine()+"  \n", 0o600)
	const pg = "postgres://authd@db.example.com:5432/authd"
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"postgres without it", map[string]string{"AUTHD_DATABASE_URL": pg}, nil},
		{"missing file", map[string]string{"AUTHD_DATABASE_URL": pg, keyFileEnv: filepath.Join(dir, "none")}, nil},
		{"a directory", map[string]string{keyFileEnv: dir}, nil},
		{"not base64", map[string]string{keyFileEnv: write("bad.keys", secret+"\nnot a key!\n", 0o600)}, nil},
		{"short key", map[string]string{keyFileEnv: write("short.keys", base64.StdEncoding.EncodeToString(make([]byte, 16))+"\n", 0o600)}, nil},
		{"unpadded key", map[string]string{keyFileEnv: write("raw.keys", strings.TrimRight(secret, "=")+"\n", 0o600)}, nil},
		{"repeated key", map[string]string{keyFileEnv: write("twice.keys", secret+"\n"+secret+"\n", 0o600)}, nil},
		{"no key", map[string]string{keyFileEnv: write("empty.keys", "# nothing yet\n", 0o600)}, nil},
		{"group-readable", map[string]string{keyFileEnv: write("group.keys", secret+"\n", 0o640)}, nil},
		{"world-readable", map[string]string{keyFileEnv: write("world.keys", secret+"\n", 0o604)}, nil},
		{"flag", nil, []string{"--key-encryption-key-file", write("flag.keys", "x\n", 0o600)}},
		{"sqlite default, bad", map[string]string{"AUTHD_DATABASE_URL": "sqlite://" + write("bad.db.keys", secret+"\n", 0o644)[:len(dir)+7]}, nil},
	} {
		_, err := parseConfig("serve", tc.args, envFunc(tc.env), io.Discard)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, keyFileEnv) || strings.Contains(msg, "\n") || strings.Contains(msg, secret) || strings.Contains(msg, strings.TrimRight(secret, "=")) {
			t.Errorf("%s: %q does not name %s on one line, or quotes a key", tc.name, msg, keyFileEnv)
		}
	}

	c, err := parseConfig("serve", nil, envFunc(map[string]string{"AUTHD_DATABASE_URL": pg, keyFileEnv: good}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.KeyFile.path != good || c.KeyFile.enc == nil || len(c.KeyFile.enc.IDs()) != 2 {
		t.Errorf("good file: %+v", c.KeyFile)
	}
	c, err = parseConfig("serve", []string{"--key-encryption-key-file", good}, envFunc(nil), io.Discard)
	if err != nil || c.KeyFile.path != good {
		t.Errorf("flag: %v %+v", err, c.KeyFile)
	}
	// SQLite without the setting: beside the database, created later.
	c, err = parseConfig("serve", nil, envFunc(map[string]string{"AUTHD_DATABASE_URL": "sqlite://" + filepath.Join(dir, "fresh.db")}), io.Discard)
	if err != nil || c.KeyFile.path != filepath.Join(dir, "fresh.db.keys") || c.KeyFile.enc != nil {
		t.Errorf("sqlite default: %v %+v", err, c.KeyFile)
	}
	if _, err := os.Stat(filepath.Join(dir, "fresh.db.keys")); err == nil {
		t.Error("reading the configuration created the key file")
	}
}

// TestConfigRefreshFamilyMax: the setting, its default and its bounds.
func TestConfigRefreshFamilyMax(t *testing.T) {
	c, err := parseConfig("serve", nil, envFunc(nil), io.Discard)
	if err != nil || c.RefreshFamilyMax != 90*24*time.Hour {
		t.Fatalf("default: %v %v", c, err)
	}
	c, err = parseConfig("serve", []string{"--refresh-family-max", "240h"}, envFunc(nil), io.Discard)
	if err != nil || c.RefreshFamilyMax != 240*time.Hour {
		t.Fatalf("flag: %v %v", c, err)
	}
	for _, v := range []string{"90d", "0s", "-1h", "1m"} {
		_, err := parseConfig("serve", nil, envFunc(map[string]string{"AUTHD_REFRESH_FAMILY_MAX": v}), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "AUTHD_REFRESH_FAMILY_MAX") {
			t.Errorf("%s: %v", v, err)
		}
	}
}

// TestBinaryKeyFileErrors: the real binary refuses to start on a key file
// that is missing (PostgreSQL), unreadable, malformed or readable by
// others, and on PostgreSQL without the setting: one line naming the
// setting, before touching the database.
func TestBinaryKeyFileErrors(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	world := writeKeyFile(t)
	os.Chmod(world, 0o644)
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"postgres without it", []string{"AUTHD_DATABASE_URL=postgres://authd@127.0.0.1:1/authd"}},
		{"missing", []string{"AUTHD_DATABASE_URL=postgres://authd@127.0.0.1:1/authd", keyFileEnv + "=" + filepath.Join(dir, "nope")}},
		{"unreadable", []string{keyFileEnv + "=" + dir}},
		{"bad line", []string{keyFileEnv + "=" + writeKeyFile(t, newKeyLine(), "hunter2")}},
		{"world-readable", []string{keyFileEnv + "=" + world}},
	} {
		cmd := exec.Command(bin)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), append(tc.env, "AUTHD_ADDR=127.0.0.1:0")...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
			t.Errorf("%s: exit %v, want non-zero", tc.name, err)
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], keyFileEnv) || strings.Contains(lines[0], "hunter2") {
			t.Errorf("%s: stderr = %q, want one line naming %s", tc.name, stderr.String(), keyFileEnv)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "authd.db")); err == nil {
		t.Error("a bad key file still created the database")
	}
}

// serveSQLite runs authd in-process on the SQLite database at dbPath until
// stop is called, and returns its base URL and logs.
func serveSQLite(t *testing.T, dbPath string, env map[string]string) (base string, logs *syncBuffer, stop func() error) {
	t.Helper()
	full := map[string]string{"AUTHD_ADDR": "127.0.0.1:0", "AUTHD_DATABASE_URL": "sqlite://" + dbPath}
	for k, v := range env {
		full[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs = &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, envFunc(full), strings.NewReader(""), io.Discard, logs) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("server did not stop")
		}
	}
	t.Cleanup(func() { stop() })
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m := listeningRE.FindStringSubmatch(logs.String()); m != nil {
			return "http://" + m[1], logs, stop
		}
		select {
		case err := <-done:
			stopped = true
			return "", logs, func() error { return err }
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("server did not start:\n%s", logs.String())
	return "", nil, nil
}

// signingKeyRows returns kid → kek_id of the stored signing keys, or
// "plaintext" for a key stored as PKCS#8.
func signingKeyRows(t *testing.T, dbURL string) map[string]string {
	t.Helper()
	db, err := store.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(context.Background(), `SELECT kid, kek_id, private_key FROM oauth_signing_keys`)
	if err != nil {
		// A database from before keys were encrypted has no kek_id.
		rows, err = db.QueryContext(context.Background(), `SELECT kid, '', private_key FROM oauth_signing_keys`)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var kid, kek, priv string
		if err := rows.Scan(&kid, &kek, &priv); err != nil {
			t.Fatal(err)
		}
		if der, err := base64.StdEncoding.DecodeString(priv); err == nil {
			if _, err := x509.ParsePKCS8PrivateKey(der); err == nil {
				kek = "plaintext"
				out[kid] = kek
				continue
			}
		}
		out[kid] = kek
	}
	return out
}

// TestFirstStartCreatesKeyFile: with SQLite and no setting, the first
// start creates <database>.keys (0600) and says so; the key it holds
// encrypts the signing key; later starts use it; a start that finds it
// gone while the database holds keys it encrypted refuses, naming the
// setting, instead of making a new one; one readable by others is refused.
func TestFirstStartCreatesKeyFile(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "authd.db")
	keys := dbPath + ".keys"
	old := syscall.Umask(0o022) // as a shell would start it
	defer syscall.Umask(old)
	_, logs, stop := serveSQLite(t, dbPath, nil)
	// While it runs: SQLite removes the log and its index at a clean close.
	for _, p := range []string{keys, dbPath, dbPath + "-wal", dbPath + "-shm"} {
		if fi, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", filepath.Base(p), err)
		} else if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "created a key-encryption key file") || !strings.Contains(logs.String(), keys) {
		t.Errorf("first start did not say it created %s:\n%s", keys, logs.String())
	}
	content, _ := os.ReadFile(keys)
	kf, err := resolveKeyFile(keys, "sqlite://"+dbPath)
	if err != nil || kf.enc == nil {
		t.Fatalf("the created file does not read back: %v", err)
	}
	stored := signingKeyRows(t, "sqlite://"+dbPath)
	if len(stored) != 2 { // the first ES256 and RS256 keys
		t.Fatalf("%d signing keys", len(stored))
	}
	for _, kek := range stored {
		if kek != kf.enc.ID() {
			t.Errorf("signing key stored under %q, want %q", kek, kf.enc.ID())
		}
	}

	_, logs, stop = serveSQLite(t, dbPath, nil)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(keys); !bytes.Equal(again, content) || strings.Contains(logs.String(), "created a key-encryption key file") {
		t.Error("the second start made a new key file")
	}

	os.Rename(keys, keys+".bak")
	_, _, stop = serveSQLite(t, dbPath, nil)
	if err := stop(); err == nil || !strings.Contains(err.Error(), keyFileEnv) || !strings.Contains(err.Error(), "restore") {
		t.Errorf("start without the key file that encrypted the keys: %v", err)
	}
	if _, err := os.Stat(keys); err == nil {
		t.Error("a new key file was made for a database whose keys need the old one")
	}
	os.Rename(keys+".bak", keys)
	os.Chmod(keys, 0o644)
	_, _, stop = serveSQLite(t, dbPath, nil)
	if err := stop(); err == nil || !strings.Contains(err.Error(), keyFileEnv) {
		t.Errorf("start with a world-readable key file: %v", err)
	}
}

// legacyKey is a signing key as authd stored keys before encrypting them.
type legacyKey struct {
	kid  string
	priv *ecdsa.PrivateKey
}

// storeLegacyKey creates the database at dbURL with the schema of that
// time (the first three migrations) and stores a plaintext ES256 key in it,
// active since a minute ago.
func storeLegacyKey(t *testing.T, dbURL string) legacyKey {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dialect := goose.DialectSQLite3
	if db.Dialect == store.Postgres {
		dialect = goose.DialectPostgres
	}
	p, err := goose.NewProvider(dialect, db.DB, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 3); err != nil {
		t.Fatal(err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	pub, _ := priv.PublicKey.Bytes()
	x, y := base64.RawURLEncoding.EncodeToString(pub[1:33]), base64.RawURLEncoding.EncodeToString(pub[33:])
	tp := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`))
	k := legacyKey{kid: base64.RawURLEncoding.EncodeToString(tp[:]), priv: priv}
	if _, err := db.ExecContext(ctx, `INSERT INTO oauth_signing_keys (kid, alg, private_key, created_ms) VALUES ($1, 'ES256', $2, $3)`,
		k.kid, base64.StdEncoding.EncodeToString(der), time.Now().Add(-time.Minute).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	return k
}

// accessToken signs an RFC 9068 access token for issuer with k, as authd
// signed them.
func (k legacyKey) accessToken(t *testing.T, issuer, clientID string) string {
	t.Helper()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	fam := make([]byte, 16)
	rand.Read(fam)
	now := time.Now()
	input := enc(map[string]string{"alg": "ES256", "kid": k.kid, "typ": "at+jwt"}) + "." + enc(map[string]any{
		"iss": issuer, "sub": clientID, "aud": issuer, "client_id": clientID, "scope": "profile",
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "jti": base64.RawURLEncoding.EncodeToString(fam) + ".legacy"})
	h := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k.priv, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// introspectActive asks base's /introspect, as a new confidential client
// registered in db, whether tok is active.
func introspectActive(t *testing.T, base string, db *store.DB, tok string) bool {
	t.Helper()
	var out bytes.Buffer
	if err := runClient(context.Background(), db, []string{"create", "--name", "RS", "--grant", "client_credentials"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var c struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	json.Unmarshal(out.Bytes(), &c)
	resp, err := http.PostForm(base+"/introspect", url.Values{"token": {tok}, "client_id": {c.ID}, "client_secret": {c.Secret}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	if resp.StatusCode != 200 {
		t.Fatalf("introspect: %d %v", resp.StatusCode, m)
	}
	return m["active"] == true
}

// TestBinaryEncryptsPlaintextKey: the real binary, started on a SQLite
// database whose signing key is stored in plaintext (as authd stored keys
// before), encrypts it at start, and a token that key signed before keeps
// verifying.
func TestBinaryEncryptsPlaintextKey(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	dbURL := "sqlite://" + filepath.Join(dir, "authd.db")
	k := storeLegacyKey(t, dbURL)
	if got := signingKeyRows(t, dbURL); got[k.kid] != "plaintext" {
		t.Fatalf("before: %v", got)
	}
	addr := freeAddr(t)
	issuer := "http://" + addr
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "AUTHD_ADDR="+addr, "AUTHD_DATABASE_URL="+dbURL)
	var logs syncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitListening(t, issuer+"/healthz", &logs)

	got := signingKeyRows(t, dbURL)
	if len(got) != 2 || got[k.kid] == "plaintext" || got[k.kid] == "" { // and a new RS256 key
		t.Fatalf("after start: %v\n%s", got, logs.String())
	}
	for kid, kek := range got {
		if kek != got[k.kid] {
			t.Errorf("key %s stored under %q, not %q", kid, kek, got[k.kid])
		}
	}
	if !strings.Contains(logs.String(), "encrypted signing keys that were stored in plaintext") {
		t.Errorf("the start did not log the encryption:\n%s", logs.String())
	}
	db, err := store.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out bytes.Buffer
	if err := runClient(context.Background(), db, []string{"create", "--name", "Old", "--grant", "client_credentials"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var c struct {
		ID string `json:"client_id"`
	}
	json.Unmarshal(out.Bytes(), &c)
	if !introspectActive(t, issuer, db, k.accessToken(t, issuer, c.ID)) {
		t.Error("a token signed by the key before it was encrypted no longer verifies")
	}
}

// TestMigrateEncryptsPlaintextKey: authd migrate encrypts a PostgreSQL
// database's plaintext signing key, once; a server started on it verifies
// tokens the key signed before.
func TestMigrateEncryptsPlaintextKey(t *testing.T) {
	dbURL := testenv.PostgresURL(t)
	k := storeLegacyKey(t, dbURL)
	keys := writeKeyFile(t)
	ctx := context.Background()
	var out bytes.Buffer
	if err := run(ctx, []string{"migrate", "--database-url", dbURL}, envFunc(nil), nil, &out, io.Discard); err == nil || !strings.Contains(err.Error(), keyFileEnv) {
		t.Fatalf("migrate on PostgreSQL without the key file: %v", err)
	}
	if got := signingKeyRows(t, dbURL); got[k.kid] != "plaintext" {
		t.Fatalf("a failed migrate changed the key: %v", got)
	}
	env := envFunc(map[string]string{keyFileEnv: keys})
	if err := run(ctx, []string{"migrate", "--database-url", dbURL}, env, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "encrypted 1 signing key(s)") {
		t.Errorf("migrate printed %q", out.String())
	}
	kf, _ := resolveKeyFile(keys, dbURL)
	if got := signingKeyRows(t, dbURL); got[k.kid] != kf.enc.ID() {
		t.Fatalf("after migrate: %v, want %s", got, kf.enc.ID())
	}
	out.Reset()
	if err := run(ctx, []string{"migrate", "--database-url", dbURL}, env, nil, &out, io.Discard); err != nil || strings.Contains(out.String(), "encrypted") {
		t.Errorf("second migrate: %q %v", out.String(), err)
	}

	base, _ := runServer(t, map[string]string{"AUTHD_DATABASE_URL": dbURL, keyFileEnv: keys})
	db, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var c bytes.Buffer
	if err := runClient(ctx, db, []string{"create", "--name", "Old", "--grant", "client_credentials"}, &c, io.Discard); err != nil {
		t.Fatal(err)
	}
	var cl struct {
		ID string `json:"client_id"`
	}
	json.Unmarshal(c.Bytes(), &cl)
	if !introspectActive(t, base, db, k.accessToken(t, base, cl.ID)) {
		t.Error("a token signed by the key before it was encrypted no longer verifies")
	}
}

// TestKeysReencrypt: a new key-encryption key goes first in the file;
// authd keys reencrypt moves every signing key under it, after which the
// file needs only the new key.
func TestKeysReencrypt(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		oldLine, newLine := newKeyLine(), newKeyLine()
		keysRun := func(file string, args ...string) (string, error) {
			var out bytes.Buffer
			err := runKeys(ctx, db, args, envFunc(map[string]string{keyFileEnv: file}), &out, io.Discard)
			return out.String(), err
		}
		oldFile := writeKeyFile(t, oldLine)
		for range 2 {
			if _, err := keysRun(oldFile, "rotate", "--alg", "ES256", "--now"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(3 * time.Millisecond)
		}
		newOnly := writeKeyFile(t, newLine)
		if _, err := keysRun(newOnly, "reencrypt"); err == nil || !strings.Contains(err.Error(), keyFileEnv) {
			t.Fatalf("reencrypt without the old key: %v", err)
		}
		out, err := keysRun(writeKeyFile(t, "# new first", newLine, oldLine), "reencrypt")
		if err != nil {
			t.Fatal(err)
		}
		kf, _ := resolveKeyFile(newOnly, "postgres://x")
		var res struct {
			Reencrypted int    `json:"reencrypted"`
			KEK         string `json:"kek"`
		}
		if json.Unmarshal([]byte(out), &res) != nil || res.Reencrypted != 2 || res.KEK != kf.enc.ID() {
			t.Fatalf("reencrypt printed %s", out)
		}
		out, err = keysRun(newOnly, "list")
		if err != nil || strings.Count(out, `"kek": "`+kf.enc.ID()+`"`) != 2 {
			t.Errorf("list after reencrypt: %s %v", out, err)
		}
		if _, err := keysRun(newOnly, "rotate"); err != nil {
			t.Errorf("rotate with only the new key: %v", err)
		}
		if out, err := keysRun(newOnly, "reencrypt"); err != nil || !strings.Contains(out, `"reencrypted": 0`) {
			t.Errorf("second reencrypt: %s %v", out, err)
		}
	})
}

// TestBehindProxyWarning: a public issuer with no trusted proxy logs one
// warning naming AUTHD_TRUSTED_PROXIES; a loopback issuer or a configured
// proxy does not.
func TestBehindProxyWarning(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		warn bool
	}{
		{map[string]string{"AUTHD_ISSUER": "https://auth.example.com"}, true},
		{map[string]string{"AUTHD_ISSUER": "https://auth.example.com", "AUTHD_TRUSTED_PROXIES": "10.0.0.0/8"}, false},
		{map[string]string{"AUTHD_ISSUER": "http://localhost:8080"}, false},
		{nil, false},
	} {
		t.Run(tc.env["AUTHD_ISSUER"]+" "+tc.env["AUTHD_TRUSTED_PROXIES"], func(t *testing.T) {
			_, logs := runServer(t, tc.env)
			var warnings []string
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, "AUTHD_TRUSTED_PROXIES") {
					warnings = append(warnings, l)
				}
			}
			if tc.warn && (len(warnings) != 1 || !strings.Contains(warnings[0], "level=WARN")) {
				t.Errorf("want one warning naming AUTHD_TRUSTED_PROXIES, got %q", warnings)
			}
			if !tc.warn && len(warnings) != 0 {
				t.Errorf("unexpected warning: %q", warnings)
			}
		})
	}
}
