package authtoken

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies: the package stays a leaf that clients can import
// without the server's dependencies. It may use the error model and
// crypto libraries only: no HTTP server code (net/http holds it), no
// Redis, no SQL, no Prometheus, no go-oauth2, and nothing else of authd.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps printed %q", out)
	}
	const module = "github.com/authd-dev/authd/"
	allowedOwn := map[string]bool{module + "authtoken": true, module + "errors": true}
	forbidden := []string{
		"net/http", "net/url", "database/sql", "github.com/redis/", "github.com/alicebob/miniredis",
		"github.com/prometheus/", "github.com/go-oauth2/", "github.com/jackc/", "modernc.org/sqlite",
	}
	seen := map[string]bool{}
	for _, d := range deps {
		seen[d] = true
		if strings.HasPrefix(d, module) && !allowedOwn[d] {
			t.Errorf("imports %s: only the error model may be imported from authd", d)
		}
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(d, f)) {
				t.Errorf("imports %s", d)
			}
		}
	}
	// The check itself must be able to fail: it sees what it looks for.
	for _, want := range []string{module + "errors", "github.com/btcsuite/btcd/btcec/v2", "crypto/sha256"} {
		if !seen[want] {
			t.Errorf("go list -deps does not list %s: is the test reading the right package?", want)
		}
	}
}
