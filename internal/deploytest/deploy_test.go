package deploytest

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// root returns the module root: the directory above this one holding go.mod.
func root(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// composeFile is the part of the Compose specification the tests read.
// Fields with several allowed shapes stay yaml.Nodes.
type composeFile struct {
	Name     string              `yaml:"name"`
	Services map[string]*service `yaml:"services"`
	Volumes  map[string]any      `yaml:"volumes"`
}

type service struct {
	Build       yaml.Node    `yaml:"build"`
	Image       string       `yaml:"image"`
	Command     yaml.Node    `yaml:"command"`
	Environment yaml.Node    `yaml:"environment"`
	DependsOn   yaml.Node    `yaml:"depends_on"`
	Healthcheck *healthcheck `yaml:"healthcheck"`
	Volumes     []yaml.Node  `yaml:"volumes"`
	Ports       []yaml.Node  `yaml:"ports"`

	name string
	env  map[string]string // Environment, interpolated
	deps map[string]string // DependsOn: service → condition
}

type healthcheck struct {
	Test    yaml.Node `yaml:"test"`
	Disable bool      `yaml:"disable"`
}

// loadCompose parses docker-compose.yml and normalizes the fields with
// several shapes.
func loadCompose(t *testing.T) *composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(c.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	for name, s := range c.Services {
		if s == nil {
			t.Fatalf("service %s is empty", name)
		}
		s.name = name
		s.env = environment(t, s)
		s.deps = dependsOn(t, s)
	}
	return &c
}

// environment returns a service's environment, in either the map or the
// list form, with variables interpolated as a bare `docker compose up` would.
func environment(t *testing.T, s *service) map[string]string {
	t.Helper()
	env := map[string]string{}
	n := &s.Environment
	switch n.Kind {
	case 0:
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			env[n.Content[i].Value] = interpolate(t, n.Content[i+1].Value)
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			k, v, _ := strings.Cut(item.Value, "=")
			env[k] = interpolate(t, v)
		}
	default:
		t.Fatalf("service %s: environment is neither a map nor a list", s.name)
	}
	return env
}

// dependsOn returns a service's dependencies and their conditions, in
// either the list form (condition service_started) or the map form.
func dependsOn(t *testing.T, s *service) map[string]string {
	t.Helper()
	deps := map[string]string{}
	n := &s.DependsOn
	switch n.Kind {
	case 0:
	case yaml.SequenceNode:
		for _, item := range n.Content {
			deps[item.Value] = "service_started"
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			var d struct {
				Condition string `yaml:"condition"`
			}
			if err := n.Content[i+1].Decode(&d); err != nil {
				t.Fatalf("service %s: depends_on %s: %v", s.name, n.Content[i].Value, err)
			}
			if d.Condition == "" {
				d.Condition = "service_started"
			}
			deps[n.Content[i].Value] = d.Condition
		}
	default:
		t.Fatalf("service %s: depends_on is neither a list nor a map", s.name)
	}
	return deps
}

var interpolation = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// interpolate expands Compose variables as they expand when none is set in
// the environment: ${V:-d} and ${V-d} give d, ${V} and $V give "", and
// ${V:?msg} or ${V?msg} would stop Compose, so they fail the test.
func interpolate(t *testing.T, s string) string {
	t.Helper()
	return interpolation.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := interpolation.FindStringSubmatch(m)
		switch op := sub[2]; op {
		case ":-", "-":
			return sub[3]
		case ":?", "?":
			t.Errorf("%s makes docker compose up fail when %s is unset; give it a default", m, sub[1])
		}
		return ""
	})
}

// strs decodes a node that is either a string or a list of strings.
func strs(n *yaml.Node) []string {
	switch n.Kind {
	case yaml.ScalarNode:
		return []string{n.Value}
	case yaml.SequenceNode:
		var out []string
		for _, c := range n.Content {
			out = append(out, c.Value)
		}
		return out
	}
	return nil
}

// mounts returns a service's volume mounts as source → container path, in
// the short ("src:/path[:ro]") or the long form.
func mounts(t *testing.T, s *service) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, v := range s.Volumes {
		switch v.Kind {
		case yaml.ScalarNode:
			parts := strings.Split(v.Value, ":")
			if len(parts) < 2 {
				out[""] = parts[0] // anonymous volume
				continue
			}
			out[parts[0]] = parts[1]
		case yaml.MappingNode:
			var m struct {
				Source string `yaml:"source"`
				Target string `yaml:"target"`
			}
			if err := v.Decode(&m); err != nil {
				t.Fatalf("service %s: volume: %v", s.name, err)
			}
			out[m.Source] = m.Target
		}
	}
	return out
}

// publishedPorts returns a service's ports as container port → host port.
func publishedPorts(s *service) map[string]string {
	out := map[string]string{}
	for _, p := range s.Ports {
		if p.Kind != yaml.ScalarNode {
			var m struct {
				Target    any `yaml:"target"`
				Published any `yaml:"published"`
			}
			if p.Decode(&m) == nil {
				out[fmt.Sprint(m.Target)] = fmt.Sprint(m.Published)
			}
			continue
		}
		v, _, _ := strings.Cut(p.Value, "/") // drop /tcp
		parts := strings.Split(v, ":")
		container := parts[len(parts)-1]
		host := container
		if len(parts) >= 2 {
			host = parts[len(parts)-2]
		}
		out[container] = host
	}
	return out
}

// authdService returns the service built from the repository's Dockerfile.
func authdService(t *testing.T, c *composeFile) *service {
	t.Helper()
	var found []*service
	for _, s := range c.Services {
		if s.Build.Kind != 0 {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one service built from the Dockerfile, found %d", len(found))
	}
	return found[0]
}

var envName = regexp.MustCompile(`^AUTHD_[A-Z0-9_]+$`)

// envNamesRead returns the AUTHD_* names cmd/authd reads: every string
// literal in its non-test sources that is exactly such a name. cmd/authd
// is the only package that reads the environment, and it names
// each variable as a literal, so this list cannot drift from the code.
func envNamesRead(t *testing.T) map[string]bool {
	t.Helper()
	dir := filepath.Join(root(t), "cmd", "authd")
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	names := map[string]bool{}
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && envName.MatchString(s) {
					names[s] = true
				}
			}
			return true
		})
	}
	if len(names) == 0 {
		t.Fatalf("found no string literal matching %s in %s/*.go (%d Go files): the environment names authd reads "+
			"are taken from cmd/authd's sources, so cmd/authd must exist and name every variable it reads as a string literal",
			envName, dir, len(files))
	}
	return names
}

// TestComposeServices checks that every service named anywhere exists, that
// every service has a healthcheck, and that authd waits for healthy
// dependencies.
func TestComposeServices(t *testing.T) {
	c := loadCompose(t)
	names := slices.Sorted(maps.Keys(c.Services))
	for _, name := range names {
		s := c.Services[name]
		for dep, cond := range s.deps {
			d, ok := c.Services[dep]
			if !ok {
				t.Errorf("service %s depends on %s, which is not a service (have %v)", name, dep, names)
				continue
			}
			switch cond {
			case "service_started", "service_completed_successfully":
			case "service_healthy":
				if d.Healthcheck == nil {
					t.Errorf("service %s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
				}
			default:
				t.Errorf("service %s: depends_on %s has unknown condition %q", name, dep, cond)
			}
		}
		if s.Healthcheck == nil || s.Healthcheck.Disable || len(strs(&s.Healthcheck.Test)) == 0 {
			t.Errorf("service %s has no healthcheck", name)
		} else if test := strs(&s.Healthcheck.Test); test[0] != "CMD" && test[0] != "CMD-SHELL" && len(test) > 1 {
			t.Errorf("service %s: healthcheck test starts with %q, want CMD or CMD-SHELL", name, test[0])
		}
		if s.Image == "" && s.Build.Kind == 0 {
			t.Errorf("service %s has neither image nor build", name)
		}
		for src := range mounts(t, s) {
			if src == "" || strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") || strings.HasPrefix(src, "~") {
				continue // anonymous volume or bind mount
			}
			if _, ok := c.Volumes[src]; !ok {
				t.Errorf("service %s mounts volume %s, which the top-level volumes do not declare", name, src)
			}
		}
	}

	a := authdService(t, c)
	if len(a.deps) == 0 {
		t.Errorf("authd depends on nothing; it needs Redis and PostgreSQL up first")
	}
	for dep, cond := range a.deps {
		if cond != "service_healthy" {
			t.Errorf("authd depends on %s with condition %s, want service_healthy", dep, cond)
		}
	}
	hc := strings.Join(strs(&a.Healthcheck.Test), " ")
	if !strings.Contains(hc, "/healthz") {
		t.Errorf("authd's healthcheck %q does not ask /healthz", hc)
	}
	var build struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	}
	if a.Build.Kind == yaml.ScalarNode {
		build.Context = a.Build.Value
	} else if err := a.Build.Decode(&build); err != nil {
		t.Fatalf("authd build: %v", err)
	}
	if build.Dockerfile == "" {
		build.Dockerfile = "Dockerfile"
	}
	if _, err := os.Stat(filepath.Join(root(t), build.Context, build.Dockerfile)); err != nil {
		t.Errorf("authd is built from %s in %q: %v", build.Dockerfile, build.Context, err)
	}
}

// TestComposeEnv checks that every AUTHD_* variable the compose file sets is
// one cmd/authd reads, and that the URLs point at services of the file.
func TestComposeEnv(t *testing.T) {
	c := loadCompose(t)
	read := envNamesRead(t)
	for _, s := range c.Services {
		for k := range s.env {
			if strings.HasPrefix(k, "AUTHD_") && !read[k] {
				known := slices.Sorted(maps.Keys(read))
				t.Errorf("service %s sets %s, which authd does not read (cmd/authd reads %s)", s.name, k, strings.Join(known, ", "))
			}
		}
	}

	a := authdService(t, c)
	for _, k := range []string{"AUTHD_ADDR", "AUTHD_ISSUER", "AUTHD_DATABASE_URL", "AUTHD_REDIS_URL"} {
		if a.env[k] == "" {
			t.Errorf("authd's environment lacks %s", k)
		}
	}
	checkAddr(t, c, a)
	checkDatabaseURL(t, c, a.env["AUTHD_DATABASE_URL"])
	checkRedisURL(t, c, a.env["AUTHD_REDIS_URL"])
}

// checkAddr checks that authd listens on every interface of the container,
// on the port the file publishes, the healthcheck asks and the issuer names.
func checkAddr(t *testing.T, c *composeFile, a *service) {
	t.Helper()
	host, port, err := net.SplitHostPort(a.env["AUTHD_ADDR"])
	if err != nil {
		t.Errorf("AUTHD_ADDR %q: %v", a.env["AUTHD_ADDR"], err)
		return
	}
	if host != "0.0.0.0" && host != "" && host != "::" {
		t.Errorf("AUTHD_ADDR %q listens on %q only: nothing outside the container reaches it", a.env["AUTHD_ADDR"], host)
	}
	published := publishedPorts(a)
	hostPort, ok := published[port]
	if !ok {
		t.Errorf("authd listens on port %s, but the file publishes %v", port, published)
	}
	if hc := strings.Join(strs(&a.Healthcheck.Test), " "); !strings.Contains(hc, ":"+port+"/healthz") {
		t.Errorf("authd's healthcheck %q does not ask port %s", hc, port)
	}
	iss, err := url.Parse(a.env["AUTHD_ISSUER"])
	if err != nil {
		t.Errorf("AUTHD_ISSUER: %v", err)
		return
	}
	if strings.HasSuffix(iss.Path, "/") || iss.RawQuery != "" || iss.Fragment != "" {
		t.Errorf("AUTHD_ISSUER %q has a trailing slash, query or fragment", iss)
	}
	loopback := iss.Hostname() == "localhost" || net.ParseIP(iss.Hostname()).IsLoopback()
	if iss.Scheme != "https" && !(iss.Scheme == "http" && loopback) {
		t.Errorf("AUTHD_ISSUER %q: https is required unless the host is loopback", iss)
	}
	if loopback && ok && iss.Port() != hostPort {
		t.Errorf("AUTHD_ISSUER %q names port %q, but authd is published on host port %s", iss, iss.Port(), hostPort)
	}
}

func checkDatabaseURL(t *testing.T, c *composeFile, raw string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Errorf("AUTHD_DATABASE_URL: %v", err)
		return
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		t.Errorf("AUTHD_DATABASE_URL scheme %q, want postgres", u.Scheme)
	}
	pg, ok := c.Services[u.Hostname()]
	if !ok {
		t.Errorf("AUTHD_DATABASE_URL host %q is not a service of the file", u.Hostname())
		return
	}
	if !strings.HasPrefix(pg.Image, "postgres:15") {
		t.Errorf("service %s runs %q, want postgres:15", pg.name, pg.Image)
	}
	if p := u.Port(); p != "" && p != "5432" {
		t.Errorf("AUTHD_DATABASE_URL port %s, PostgreSQL listens on 5432", p)
	}
	pass, _ := u.User.Password()
	for k, got := range map[string]string{
		"POSTGRES_USER":     u.User.Username(),
		"POSTGRES_PASSWORD": pass,
		"POSTGRES_DB":       strings.TrimPrefix(u.Path, "/"),
	} {
		if want := pg.env[k]; want != "" && got != want {
			t.Errorf("AUTHD_DATABASE_URL has %s %q, service %s is set up with %q", k, got, pg.name, want)
		}
	}
	if !slices.Contains(slices.Collect(maps.Values(mounts(t, pg))), "/var/lib/postgresql/data") {
		t.Errorf("service %s keeps its data in no volume (want one at /var/lib/postgresql/data)", pg.name)
	}
}

func checkRedisURL(t *testing.T, c *composeFile, raw string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Errorf("AUTHD_REDIS_URL: %v", err)
		return
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		t.Errorf("AUTHD_REDIS_URL scheme %q, want redis or rediss", u.Scheme)
	}
	rs, ok := c.Services[u.Hostname()]
	if !ok {
		t.Errorf("AUTHD_REDIS_URL host %q is not a service of the file", u.Hostname())
		return
	}
	if !strings.HasPrefix(rs.Image, "redis:") {
		t.Errorf("service %s runs %q, want a redis image", rs.name, rs.Image)
	}
	if p := u.Port(); p != "" && p != "6379" {
		t.Errorf("AUTHD_REDIS_URL port %s, Redis listens on 6379", p)
	}
	cmd := strings.Join(strs(&rs.Command), " ")
	if !strings.Contains(cmd, "--appendonly yes") {
		t.Errorf("service %s runs %q: AOF persistence needs --appendonly yes", rs.name, cmd)
	}
	if !slices.Contains(slices.Collect(maps.Values(mounts(t, rs))), "/data") {
		t.Errorf("service %s keeps its AOF file in no volume (want one at /data)", rs.name)
	}
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case
	args string
}

func loadDockerfile(t *testing.T) []instruction {
	t.Helper()
	f, err := os.Open(filepath.Join(root(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	start, n := 0, 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || line == "" && cur.Len() == 0 {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{start, strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("Dockerfile is empty")
	}
	return out
}

// goLine returns go.mod's go version as major.minor.
func goLine(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)(\.\d+)?\s*$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	return string(m[1])
}

// TestDockerfile checks the image: a Go build stage on go.mod's Go version,
// a static binary with the version stamped in, a runtime stage that runs as
// a non-root user, exposes authd's port and can run the healthcheck.
func TestDockerfile(t *testing.T) {
	ins := loadDockerfile(t)
	type stage struct {
		image, name string
		body        []instruction
	}
	var stages []stage
	for _, in := range ins {
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			var s stage
			for _, w := range f {
				if strings.HasPrefix(w, "--") {
					continue
				}
				if s.image == "" {
					s.image = w
				}
			}
			if len(f) >= 3 && strings.EqualFold(f[len(f)-2], "AS") {
				s.name = f[len(f)-1]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("Dockerfile:%d: %s before the first FROM", in.line, in.cmd)
			}
			continue
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stage(s), want a build stage and a runtime stage", len(stages))
	}

	build := stages[0]
	want := goLine(t)
	img, tag, _ := strings.Cut(build.image, ":")
	if img != "golang" && img != "docker.io/library/golang" {
		t.Errorf("build stage is FROM %s, want golang", build.image)
	}
	if tag != want && !strings.HasPrefix(tag, want+".") && !strings.HasPrefix(tag, want+"-") {
		t.Errorf("build stage is FROM %s, but go.mod says go %s", build.image, want)
	}
	var runs []string
	for _, in := range build.body {
		if in.cmd == "RUN" {
			runs = append(runs, in.args)
		}
	}
	buildCmd := ""
	for _, r := range runs {
		if strings.Contains(r, "go build") {
			buildCmd = r
		}
	}
	switch {
	case buildCmd == "":
		t.Error("build stage has no RUN go build")
	default:
		for _, s := range []string{"CGO_ENABLED=0", "-X main.version=", "./cmd/authd"} {
			if !strings.Contains(buildCmd, s) {
				t.Errorf("go build %q lacks %s", buildCmd, s)
			}
		}
	}

	run := stages[len(stages)-1]
	if strings.Contains(run.image, "golang") {
		t.Errorf("runtime stage is FROM %s: the image would carry the toolchain", run.image)
	}
	var user, expose, copyFrom string
	for _, in := range run.body {
		switch in.cmd {
		case "USER":
			user = in.args
		case "EXPOSE":
			expose = in.args
		case "COPY":
			if strings.Contains(in.args, "--from="+build.name) || strings.Contains(in.args, "--from=0") {
				copyFrom = in.args
			}
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("runtime stage runs as %q, want a non-root USER", user)
	}
	if copyFrom == "" {
		t.Errorf("runtime stage copies nothing from the build stage %q", build.name)
	}

	c := loadCompose(t)
	a := authdService(t, c)
	_, port, _ := net.SplitHostPort(a.env["AUTHD_ADDR"])
	if !slices.Contains(strings.Fields(expose), port) && !slices.Contains(strings.Fields(expose), port+"/tcp") {
		t.Errorf("Dockerfile EXPOSE %q, but compose's AUTHD_ADDR listens on %s", expose, port)
	}
	hc := strs(&a.Healthcheck.Test)
	if len(hc) > 1 && (hc[1] == "wget" || hc[1] == "curl") {
		base := run.image
		if strings.Contains(base, "distroless") || base == "scratch" {
			t.Errorf("authd's healthcheck runs %s, which the runtime image %s does not have", hc[1], base)
		}
		if hc[1] == "curl" && strings.HasPrefix(base, "alpine") {
			t.Errorf("authd's healthcheck runs curl, which alpine lacks (busybox has wget)")
		}
	}
}

// TestVersionVariable checks that cmd/authd has the package-level string
// variable the Dockerfile's -X main.version sets; -X silently does nothing
// when the variable is missing or a constant.
func TestVersionVariable(t *testing.T) {
	dir := filepath.Join(root(t), "cmd", "authd")
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		if f.Name.Name != "main" {
			continue
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if n.Name != "version" {
						continue
					}
					typed := false
					if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "string" {
						typed = true
					}
					if i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							typed = true
						}
					}
					if !typed {
						t.Errorf("%s: var version is not a string set by a literal; -X main.version needs one", fset.Position(n.Pos()))
					}
					return
				}
			}
		}
	}
	t.Fatalf("no package-level var version in package main under %s (%d Go files); the Dockerfile and the Makefile set it with -X main.version", dir, len(files))
}

// TestInterpolate checks the Compose interpolation the other tests rely on.
func TestInterpolate(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                      "plain",
		"${A:-x}":                    "x",
		"${A-x}":                     "x",
		"${A}":                       "",
		"$A/b":                       "/b",
		"$$A":                        "$A",
		"pg://u:${P:-pw}@h:5432/d":   "pg://u:pw@h:5432/d",
		"${A:-a}-${B:-b}":            "a-b",
		"${POSTGRES_PASSWORD:-a:b@}": "a:b@",
	} {
		if got := interpolate(t, in); got != want {
			t.Errorf("interpolate(%q) = %q, want %q", in, got, want)
		}
	}
}
