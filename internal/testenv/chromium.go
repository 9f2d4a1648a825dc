package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Chromium returns the path of a Chromium or Chrome binary for tests that
// drive a real browser: AUTHD_TEST_CHROMIUM when set, else the first of
// chromium, chromium-browser, google-chrome on PATH (scripts/testenv.sh
// installs Debian's chromium). The test is skipped when there is none,
// except under CI=true, where it fails. A test whose browser then fails
// to start calls Unavailable.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("AUTHD_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Unavailable(t, "no chromium on PATH (scripts/testenv.sh installs it, or apt-get install chromium)")
	return ""
}

// Unavailable ends a test that needs something this machine cannot
// provide (a browser that will not start, say): it is skipped, except
// under CI=true, where it fails, since CI must run every test.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; under CI=true this test must run (use make test)")
	}
	t.Skip(msg)
}
