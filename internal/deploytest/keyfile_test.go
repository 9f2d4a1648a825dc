package deploytest

import (
	"path"
	"strings"
	"testing"
)

// TestKeyEncryptionKeyFile checks where the deployments keep the key that
// encrypts the signing keys: named in the image and in compose, and in
// compose on a volume of its own, never on the database's, so a database
// backup does not carry it.
func TestKeyEncryptionKeyFile(t *testing.T) {
	const env = "AUTHD_KEY_ENCRYPTION_KEY_FILE"
	c := loadCompose(t)
	a := authdService(t, c)
	file := a.env[env]
	if !path.IsAbs(file) {
		t.Fatalf("compose: authd's %s is %q, want an absolute path", env, file)
	}
	volume := ""
	for src, target := range mounts(t, a) {
		if strings.HasPrefix(file, strings.TrimSuffix(target, "/")+"/") {
			volume = src
		}
	}
	if _, declared := c.Volumes[volume]; !declared {
		t.Fatalf("compose: %s %s is on no named volume of authd's (the key would be lost with the container)", env, file)
	}
	for _, s := range c.Services {
		if s == a {
			continue
		}
		if _, ok := mounts(t, s)[volume]; ok {
			t.Errorf("compose: the key-encryption key's volume %s is also mounted by %s", volume, s.name)
		}
	}

	set := false
	for _, in := range loadDockerfile(t) {
		if in.cmd == "ENV" && strings.Contains(in.args, env+"=/") {
			set = true
		}
	}
	if !set {
		t.Errorf("Dockerfile: no ENV %s=<absolute path>", env)
	}
}
