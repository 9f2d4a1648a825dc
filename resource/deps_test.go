package resource_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies: an API links the resource SDK without the server's
// dependencies: its non-test imports are the standard library, authd's
// error model and the charset of its error responses, with no Redis, SQL,
// Prometheus, OAuth or JOSE library.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	seen := map[string]bool{}
	for _, d := range deps {
		seen[d] = true
		first, _, _ := strings.Cut(d, "/")
		switch {
		case d == "database/sql" || strings.HasPrefix(d, "database/sql/"):
			t.Errorf("imports %s", d)
		case d == "github.com/authd-dev/authd/errors" || d == "github.com/authd-dev/authd/resource" ||
			d == "github.com/authd-dev/authd/internal/charset":
		case strings.Contains(first, "."):
			// Outside the standard library: Redis, SQL drivers,
			// Prometheus, go-oauth2, x/oauth2, JOSE libraries...
			t.Errorf("imports %s", d)
		}
	}
	for _, want := range []string{"github.com/authd-dev/authd/errors", "crypto/ecdsa", "net/http"} {
		if !seen[want] {
			t.Errorf("go list -deps does not list %s: is the test reading the right package?", want)
		}
	}
}
