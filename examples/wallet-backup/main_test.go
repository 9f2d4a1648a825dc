package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/authd-dev/authd/authtoken"
	"github.com/authd-dev/authd/internal/authdtest"
)

// TestWalletBackup drives the command against the real authd: a new key,
// a backup stored, fetched, protected from a blind overwrite, replaced by
// version, refused when stale, deleted.
func TestWalletBackup(t *testing.T) {
	s := authdtest.Start(t)
	dir := t.TempDir()
	ctx := context.Background()
	env := map[string]string{"AUTHD_ISSUER": s.Issuer}
	cli := func(args ...string) (code int, stdout, stderr string) {
		var o, e bytes.Buffer
		code = run(ctx, args, func(k string) string { return env[k] }, &o, &e)
		return code, o.String(), e.String()
	}
	etagRE := regexp.MustCompile(`etag ("[^"]+")`)
	etagOf := func(stderr string) string {
		t.Helper()
		m := etagRE.FindStringSubmatch(stderr)
		if m == nil {
			t.Fatalf("no etag in %q", stderr)
		}
		return m[1]
	}
	file := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	encrypted := func() []byte {
		b := make([]byte, 96)
		rand.Read(b)
		return []byte(base64.StdEncoding.EncodeToString(b))
	}

	code, wif, stderr := cli("keygen")
	if code != 0 || !strings.Contains(stderr, "address 1") {
		t.Fatalf("keygen: %d %q", code, stderr)
	}
	if _, err := authtoken.NewSigner(strings.TrimSpace(wif)); err != nil {
		t.Fatalf("keygen printed %q: %v", wif, err)
	}
	keyFile := file("key.wif", []byte(wif))
	k := []string{"-wif-file", keyFile}

	if code, _, stderr := cli(append(k, "get")...); code != 1 || !strings.Contains(stderr, "backup_not_found") || !strings.Contains(stderr, "No backup is stored") {
		t.Fatalf("get before put: %d %q", code, stderr)
	}
	first := encrypted()
	code, _, stderr = cli(append(k, "put", file("b1.txt", append(first, '\n')))...)
	if code != 0 || !strings.HasPrefix(stderr, "stored ") {
		t.Fatalf("put: %d %q", code, stderr)
	}
	etag1 := etagOf(stderr)

	out := filepath.Join(dir, "out.txt")
	code, _, stderr = cli(append(k, "get", "-o", out)...)
	if got, _ := os.ReadFile(out); code != 0 || !bytes.Equal(got, first) || etagOf(stderr) != etag1 {
		t.Fatalf("get: %d %q %q", code, got, stderr)
	}

	// Another device's blind put does not overwrite it.
	second := file("b2.txt", encrypted())
	if code, _, stderr := cli(append(k, "put", second)...); code != 1 || !strings.Contains(stderr, "backup_conflict") || !strings.Contains(stderr, "run get, merge") {
		t.Fatalf("blind put: %d %q", code, stderr)
	}
	code, _, stderr = cli(append(k, "put", "-if-match", etag1, second)...)
	if code != 0 || !strings.HasPrefix(stderr, "replaced ") {
		t.Fatalf("put -if-match: %d %q", code, stderr)
	}
	etag2 := etagOf(stderr)
	if code, _, stderr := cli(append(k, "put", "-if-match", etag1, file("b3.txt", encrypted()))...); code != 1 || !strings.Contains(stderr, "backup_conflict") {
		t.Fatalf("stale put: %d %q", code, stderr)
	}
	if code, _, stderr := cli(append(k, "put", "-force", file("plain.txt", []byte("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about")))...); code != 1 || !strings.Contains(stderr, "encryption_required") || !strings.Contains(stderr, "/docs/errors#encryption_required") {
		t.Fatalf("plaintext: %d %q", code, stderr)
	}
	if code, _, stderr := cli(append(k, "delete", "-if-match", etag1)...); code != 1 || !strings.Contains(stderr, "backup_conflict") {
		t.Fatalf("stale delete: %d %q", code, stderr)
	}
	if code, stdout, _ := cli(append(k, "get")...); code != 0 || strings.TrimSpace(stdout) != string(must(os.ReadFile(second))) {
		t.Fatalf("get to stdout: %d %q", code, stdout)
	}
	if code, _, stderr := cli(append(k, "delete", "-if-match", etag2)...); code != 0 || stderr != "deleted\n" {
		t.Fatalf("delete: %d %q", code, stderr)
	}
	if code, _, _ := cli(append(k, "get")...); code != 1 {
		t.Fatalf("get after delete: %d", code)
	}

	// The key from the environment works as well as from a file.
	env["AUTHD_WIF"] = strings.TrimSpace(wif)
	if code, _, stderr := cli("put", second); code != 0 {
		t.Fatalf("put with AUTHD_WIF: %d %q", code, stderr)
	}
}

func TestWalletBackupUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}, {"put"}, {"put", "-force", "-if-match", `"x"`, "f"}, {"get", "extra"}} {
		var o, e bytes.Buffer
		env := map[string]string{"AUTHD_ISSUER": "http://127.0.0.1:1", "AUTHD_WIF": "L4WVo4zZ8QC795KtwPyqgH92T7Q23FC4p4wGkFeZiaWeyewugte7"}
		if code := run(context.Background(), args, func(k string) string { return env[k] }, &o, &e); code != 2 || !strings.Contains(e.String(), "usage:") {
			t.Errorf("%q: %d %q", args, code, e.String())
		}
	}
	var o, e bytes.Buffer
	if code := run(context.Background(), []string{"get"}, func(string) string { return "" }, &o, &e); code != 2 || !strings.Contains(e.String(), "AUTHD_ISSUER") {
		t.Errorf("no issuer: %d %q", code, e.String())
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
