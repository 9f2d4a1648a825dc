package errors_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies: the error model is data and constructors. Every
// package that builds an error (the stores, the SDK) imports it, so it must
// not pull in HTTP serving, HTML templates or metrics: those live in
// httperr, which renders what this package describes.
func TestDependencies(t *testing.T) {
	for _, pkg := range []string{".", "../store"} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		seen := map[string]bool{}
		for _, d := range strings.Fields(string(out)) {
			seen[d] = true
			switch {
			case d == "net/http", strings.HasPrefix(d, "net/http/"),
				d == "html/template",
				strings.HasPrefix(d, "github.com/prometheus/"),
				d == "github.com/authd-dev/authd/httperr":
				t.Errorf("%s imports %s", pkg, d)
			}
		}
		// Proof that the list is the package's: it names the model itself.
		if !seen["github.com/authd-dev/authd/errors"] {
			t.Errorf("go list -deps %s does not list the errors package: is the test reading the right package?", pkg)
		}
	}
}
