package golden

import (
	"os"
	"path/filepath"
	"testing"
)

// recorder is a testing.TB that records failures instead of stopping.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }

func TestCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "out.golden")
	r := &recorder{TB: t}
	Check(r, path, []byte("x"))
	if !r.failed {
		t.Fatal("a missing golden file passed")
	}
	*update = true
	Check(t, path, []byte("hello\n"))
	*update = false
	if b, err := os.ReadFile(path); err != nil || string(b) != "hello\n" {
		t.Fatalf("-update wrote %q, %v", b, err)
	}
	r = &recorder{TB: t}
	Check(r, path, []byte("hello\n"))
	if r.failed {
		t.Fatal("equal output failed")
	}
	Check(r, path, []byte("hello"))
	if !r.failed {
		t.Fatal("different output passed")
	}
}
