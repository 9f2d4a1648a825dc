package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies: the SDK links into other people's programs without
// the server's dependencies. Its non-test imports hold no Redis, SQL,
// Prometheus or go-oauth2 package, and nothing of authd but the error
// model and the token signing leaf (itself free of them).
func TestDependencies(t *testing.T) {
	checkDeps(t, ".", []string{"errors", "authtoken", "client"},
		[]string{"golang.org/x/oauth2", "github.com/authd-dev/authd/authtoken", "github.com/btcsuite/btcd/btcec/v2"})
}

// checkDeps runs go list -deps on pkg and fails on a forbidden import, on
// an authd package other than own, or when a package the list must show
// (proof that it read the right package) is missing.
func checkDeps(t *testing.T, pkg string, own, mustSee []string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const module = "github.com/authd-dev/authd/"
	allowed := map[string]bool{}
	for _, p := range own {
		allowed[module+p] = true
	}
	forbidden := []string{
		"github.com/redis/", "github.com/go-redis/", "github.com/alicebob/miniredis",
		"database/sql", "github.com/jackc/", "modernc.org/", "github.com/pressly/goose",
		"github.com/prometheus/", "github.com/go-oauth2/",
	}
	seen := map[string]bool{}
	for _, d := range strings.Fields(string(out)) {
		seen[d] = true
		if strings.HasPrefix(d, module) && !allowed[d] {
			t.Errorf("imports %s", d)
		}
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, strings.TrimSuffix(f, "/")+"/") {
				t.Errorf("imports %s", d)
			}
		}
	}
	for _, want := range mustSee {
		if !seen[want] {
			t.Errorf("go list -deps does not list %s: is the test reading the right package?", want)
		}
	}
}
