package errors_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/charset"
)

const modulePath = "github.com/authd-dev/authd"
const errorsImport = modulePath + "/errors"

// codeConstants parses the errors package and returns every constant
// declared with type Code, by name.
func codeConstants(t *testing.T) map[string]errors.Code {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]errors.Code{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
					if vs.Type == nil && len(vs.Values) == 0 {
						t.Errorf("%s: constant %s repeats the previous spec implicitly; give Code constants an explicit type and value", fset.Position(vs.Pos()), vs.Names[0].Name)
					}
					continue
				}
				for i, n := range vs.Names {
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Errorf("%s: Code constant %s is not a string literal", fset.Position(n.Pos()), n.Name)
						continue
					}
					v, _ := strconv.Unquote(lit.Value)
					out[n.Name] = errors.Code(v)
				}
			}
		}
	}
	if len(out) < 29 {
		t.Fatalf("found only %d Code constants in the errors package; the parser missed some", len(out))
	}
	return out
}

// publishedStatus is the published status of each code; clients depend on
// it. Codes are wire values: a status never changes once published, and a
// new code is added here with its status before it goes into the catalog.
var publishedStatus = map[errors.Code]int{
	"invalid_request": 400, "unauthorized_client": 400, "access_denied": 403,
	"unsupported_response_type": 400, "invalid_scope": 400, "server_error": 500,
	"temporarily_unavailable": 503, "invalid_client": 401, "invalid_grant": 400,
	"unsupported_grant_type": 400, "unsupported_token_type": 400, "invalid_token": 401,
	"insufficient_scope": 403, "missing_auth_token": 401, "malformed_auth_token": 400,
	"invalid_public_key": 400, "invalid_signature": 401, "invalid_timestamp": 401,
	"backup_not_found": 404, "backup_too_large": 413, "invalid_backup_format": 400,
	"encryption_required": 400, "backup_conflict": 412, "rate_limit_exceeded": 429,
	"google_auth_failed": 401, "github_auth_failed": 401, "not_found": 404,
	"method_not_allowed": 405, "request_too_large": 413,
	// OpenID Connect Core 1.0 §3.1.2.6: redirected, 400 when answered directly.
	"login_required": 400, "consent_required": 400, "interaction_required": 400,
	"account_selection_required": 400, "request_not_supported": 400,
	"request_uri_not_supported": 400, "registration_not_supported": 400,
	// RFC 8707 §2 and RFC 7591 §3.2.2.
	"invalid_target": 400, "invalid_redirect_uri": 400, "invalid_client_metadata": 400,
	"invalid_software_statement": 400,
}

// publishedText is the published description of some codes, which
// clients match: the catalog's description must start with it.
var publishedText = map[errors.Code]string{
	"missing_auth_token":   "X-Auth-Token header is required for Bitcoin authentication",
	"malformed_auth_token": "Auth token format is invalid",
	"invalid_public_key":   "Public key is not a valid secp256k1 point",
	"invalid_signature":    "Bitcoin signature verification failed",
	"backup_not_found":     "No backup found for this user",
	"google_auth_failed":   "Google authentication was unsuccessful",
}

// redirectable are the authorization errors of RFC 6749 §4.1.2.1 that may
// go back to a client, minus temporarily_unavailable (a 503 is never a
// redirect: it asks the same request to be sent again, to authd).
var redirectable = []errors.Code{"invalid_request", "unauthorized_client", "access_denied", "unsupported_response_type", "invalid_scope", "server_error",
	// OpenID Connect Core 1.0 §3.1.2.6.
	"login_required", "consent_required", "interaction_required", "account_selection_required",
	"request_not_supported", "request_uri_not_supported", "registration_not_supported",
	// RFC 8707 §2: about the authorization request itself.
	"invalid_target"}

// TestCatalog checks that every Code constant has a catalog entry, every
// entry a constant, and that the entries are complete and keep their
// published statuses and descriptions.
func TestCatalog(t *testing.T) {
	consts := codeConstants(t)
	declared := map[errors.Code]string{}
	for name, c := range consts {
		if other, dup := declared[c]; dup {
			t.Errorf("constants %s and %s are both %q", name, other, c)
		}
		declared[c] = name
		if _, ok := errors.Lookup(c); !ok {
			t.Errorf("constant %s = %q has no catalog entry", name, c)
		}
	}
	seen := map[errors.Code]bool{}
	for _, e := range errors.Catalog() {
		if seen[e.Code] {
			t.Errorf("%s: two catalog entries", e.Code)
		}
		seen[e.Code] = true
		if _, ok := declared[e.Code]; !ok {
			t.Errorf("%s: catalog entry without a Code constant", e.Code)
		}
		if !regexp.MustCompile(`^[a-z][a-z_]*[a-z]$`).MatchString(string(e.Code)) {
			t.Errorf("%s: codes are lower_snake_case", e.Code)
		}
		if want, ok := publishedStatus[e.Code]; !ok {
			t.Errorf("%s: no published status; add it to publishedStatus first", e.Code)
		} else if e.Status != want || e.Code.Status() != want {
			t.Errorf("%s: status %d (Status() %d), published as %d", e.Code, e.Status, e.Code.Status(), want)
		}
		if want, ok := publishedText[e.Code]; ok && !strings.HasPrefix(e.Description, want) {
			t.Errorf("%s: description %q, published as %q", e.Code, e.Description, want)
		}
		if e.Redirectable != slices.Contains(redirectable, e.Code) {
			t.Errorf("%s: Redirectable = %v", e.Code, e.Redirectable)
		}
		if e.Title == "" || e.Description == "" || len(e.UsedBy) == 0 || e.Retry == "" || len(e.Causes) == 0 || e.Fix == "" {
			t.Errorf("%s: incomplete entry %+v", e.Code, e)
		}
		if !charset.NQSChars(e.Description) {
			t.Errorf("%s: description %q is outside the RFC 6749 charset it is sent in", e.Code, e.Description)
		}
		if e.Retryable != (e.Status == 429 || e.Status >= 500) {
			t.Errorf("%s: Retryable = %v for status %d", e.Code, e.Retryable, e.Status)
		}
		if (e.Status == 429 || e.Status == 503) != slices.Contains(e.Headers, "Retry-After") {
			t.Errorf("%s: Retry-After in Headers must match status 429/503", e.Code)
		}
	}
	for c := range publishedStatus {
		if !seen[c] {
			t.Errorf("%s: published but not in the catalog", c)
		}
	}

	// The catalog cannot be edited through what Catalog and Lookup return.
	cat := errors.Catalog()
	cat[0].Causes[0] = "edited"
	cat[0].Status = 200
	if e, _ := errors.Lookup(cat[0].Code); e.Causes[0] == "edited" || e.Status == 200 {
		t.Error("editing Catalog()'s result changed the catalog")
	}
	if _, ok := errors.Lookup("no_such_code"); ok {
		t.Error("Lookup found a code that does not exist")
	}
}

// codeUse is one place a source file names a code.
type codeUse struct {
	pos  token.Position
	code string // "" when the code is not a constant string
	what string
}

// codeUses returns every place in f that names an errors.Code: Code("…")
// conversions, errors.<Const> references, and string literals where a Code
// is expected (E's first argument, Wrap's third, Error{Code: …}, and
// comparisons with CodeOf). local is the name f gives the errors package;
// inErrors says f is in the errors package itself.
func codeUses(fset *token.FileSet, f *ast.File, consts map[string]errors.Code, inErrors bool) []codeUse {
	local := ""
	if inErrors {
		local = "."
	}
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == errorsImport {
			local = "errors"
			if imp.Name != nil {
				local = imp.Name.Name
			}
		}
	}
	if local == "" || local == "_" {
		return nil
	}
	// is reports whether e names the errors package's identifier name.
	is := func(e ast.Expr, name string) bool {
		switch x := e.(type) {
		case *ast.SelectorExpr:
			id, ok := x.X.(*ast.Ident)
			return ok && id.Name == local && x.Sel.Name == name
		case *ast.Ident:
			return (inErrors || local == ".") && x.Name == name
		}
		return false
	}
	var uses []codeUse
	lit := func(e ast.Expr, what string) {
		switch x := ast.Unparen(e).(type) {
		case *ast.BasicLit:
			if x.Kind == token.STRING {
				v, _ := strconv.Unquote(x.Value)
				uses = append(uses, codeUse{fset.Position(x.Pos()), v, what})
			}
		case *ast.BinaryExpr:
			if x.Op == token.ADD {
				uses = append(uses, codeUse{fset.Position(x.Pos()), "", what + " built by concatenation"})
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.CallExpr:
			switch {
			case is(x.Fun, "Code") && len(x.Args) == 1:
				arg := ast.Unparen(x.Args[0])
				if bl, ok := arg.(*ast.BasicLit); ok && bl.Kind == token.STRING {
					lit(bl, "Code conversion")
				} else {
					uses = append(uses, codeUse{fset.Position(x.Pos()), "", "Code conversion of something other than a string literal"})
				}
			case is(x.Fun, "E") && len(x.Args) >= 1:
				lit(x.Args[0], "E's code argument")
			case is(x.Fun, "Wrap") && len(x.Args) >= 3:
				lit(x.Args[2], "Wrap's code argument")
			}
		case *ast.CompositeLit:
			if is(x.Type, "Error") || is(x.Type, "Entry") {
				for _, el := range x.Elts {
					if kv, ok := el.(*ast.KeyValueExpr); ok {
						if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Code" {
							lit(kv.Value, "Code field")
						}
					}
				}
			}
		case *ast.BinaryExpr:
			if x.Op == token.EQL || x.Op == token.NEQ {
				for _, pair := range [][2]ast.Expr{{x.X, x.Y}, {x.Y, x.X}} {
					if call, ok := ast.Unparen(pair[0]).(*ast.CallExpr); ok && is(call.Fun, "CodeOf") {
						lit(pair[1], "comparison with CodeOf")
					}
				}
			}
		case *ast.Ident:
			if inErrors || local == "." {
				if c, ok := consts[x.Name]; ok {
					uses = append(uses, codeUse{fset.Position(x.Pos()), string(c), "reference to " + x.Name})
				}
			}
		case *ast.SelectorExpr:
			if id, ok := x.X.(*ast.Ident); ok && id.Name == local {
				if c, ok := consts[x.Sel.Name]; ok {
					uses = append(uses, codeUse{fset.Position(x.Pos()), string(c), "reference to " + local + "." + x.Sel.Name})
				}
			}
		}
		return true
	})
	return uses
}

// moduleRoot returns the directory holding go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			if !strings.Contains(string(b), "module "+modulePath+"\n") {
				t.Fatalf("%s/go.mod is not module %s", dir, modulePath)
			}
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// TestModuleCodes walks every non-test .go file of the module and checks
// that each code it names is in the catalog: no package can invent a code.
func TestModuleCodes(t *testing.T) {
	consts := codeConstants(t)
	root := moduleRoot(t)
	errorsDir, _ := filepath.Abs(".")
	fset := token.NewFileSet()
	var files, refs int
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (name == "testdata" || name == "vendor" || name == "node_modules" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			if path != root {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir // another module
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		inErrors := filepath.Dir(path) == errorsDir
		// The Go SDK's client reads codes out of authd's responses (a
		// newer server may send one this catalog lacks): converting what
		// it parsed is reading a code, not inventing one. Its literals
		// and constants are checked like everyone's.
		reads := filepath.Dir(path) == filepath.Join(root, "client")
		for _, u := range codeUses(fset, f, consts, inErrors) {
			refs++
			switch {
			case reads && u.what == "Code conversion of something other than a string literal":
			case u.code == "":
				t.Errorf("%s: %s: a code must be one of the errors package's constants", u.pos, u.what)
			default:
				if _, ok := errors.Lookup(errors.Code(u.code)); !ok {
					t.Errorf("%s: %s names %q, which is not in the catalog (add it to errors/catalog.go first)", u.pos, u.what, u.code)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The catalog itself names every code: a walk that found fewer
	// references than codes did not look.
	if files < 5 || refs < len(consts) {
		t.Fatalf("walked %d files and found %d code references; the walk is broken", files, refs)
	}
	t.Logf("%d files, %d code references", files, refs)
}

// TestCodeUses checks the detector TestModuleCodes relies on, on a file
// that invents codes in every way it knows.
func TestCodeUses(t *testing.T) {
	src := `package p

import autherr "github.com/authd-dev/authd/errors"

const mine = "made_up_const"

func f(err error, s string) error {
	_ = autherr.Code("invented_by_conversion")
	_ = autherr.Code(s)
	_ = autherr.Code(mine)
	_ = autherr.E("invented_in_E", "d")
	_ = autherr.Wrap(err, "op", "invented_in_Wrap", "d")
	_ = &autherr.Error{Code: "invented_in_literal"}
	_ = autherr.Error{Description: "d", Code: ("invented_in_parens")}
	_ = autherr.E("in"+"vented", "d")
	if autherr.CodeOf(err) == "invented_in_comparison" {
	}
	if "invented_on_the_left" != autherr.CodeOf(err) {
	}
	_ = autherr.E(autherr.InvalidRequest, "fine")
	_ = autherr.E(autherr.Code("invalid_request"), "fine")
	return nil
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	for _, u := range codeUses(fset, f, codeConstants(t), false) {
		if u.code == "" {
			bad = append(bad, u.what)
			continue
		}
		if _, ok := errors.Lookup(errors.Code(u.code)); !ok {
			bad = append(bad, u.code)
		}
	}
	want := []string{
		"invented_by_conversion", "Code conversion of something other than a string literal", "Code conversion of something other than a string literal",
		"invented_in_E", "invented_in_Wrap", "invented_in_literal", "invented_in_parens",
		"E's code argument built by concatenation", "invented_in_comparison", "invented_on_the_left",
	}
	slices.Sort(bad)
	slices.Sort(want)
	if !slices.Equal(bad, want) {
		t.Errorf("flagged %q\nwant    %q", bad, want)
	}

	// A file in package errors names codes without a qualifier.
	src = `package errors

var x = E("invented_inside", "d")
var y = Code("server_error")
var z = &Error{Code: "also_invented"}
`
	f, err = parser.ParseFile(fset, "e.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	bad = nil
	for _, u := range codeUses(fset, f, codeConstants(t), true) {
		if _, ok := errors.Lookup(errors.Code(u.code)); !ok {
			bad = append(bad, u.code)
		}
	}
	if !slices.Equal(bad, []string{"invented_inside", "also_invented"}) {
		t.Errorf("inside errors flagged %q", bad)
	}
}
