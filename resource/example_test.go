package resource_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/resource"
)

// A protected endpoint in three lines: a Verifier for this API, its
// metadata, and the middleware naming the scope the endpoint needs.
func ExampleMiddleware() {
	auth := exampleAuthd() // authd's metadata and keys; see fake_test.go
	defer auth.close()

	mux := http.NewServeMux()
	v, _ := resource.NewVerifier(resource.Config{Issuer: auth.iss, Resource: "https://api.example.com"})
	mux.Handle(v.MetadataPath(), resource.MetadataHandler(v))
	mux.Handle("GET /notes", resource.Middleware(v, "notes")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := resource.FromContext(r.Context())
		fmt.Fprintf(w, "notes of %s", claims.Subject)
	})))

	for _, token := range []string{"", auth.token("notes"), auth.token("profile")} {
		req := httptest.NewRequest("GET", "/notes", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		// (This stand-in for authd listens on a random port.)
		fmt.Println(rec.Code)
		if ch := rec.Header().Get("WWW-Authenticate"); ch != "" {
			fmt.Println(strings.ReplaceAll(ch, auth.iss, "https://auth.example.com"))
		}
		if rec.Code == http.StatusOK {
			fmt.Println(rec.Body.String())
		}
	}
	// Output:
	// 401
	// Bearer realm="https://api.example.com", resource_metadata="https://api.example.com/.well-known/oauth-protected-resource"
	// 200
	// notes of 1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH
	// 403
	// Bearer realm="https://api.example.com", error="insufficient_scope", error_description="The access token does not carry the notes scope", error_uri="https://auth.example.com/docs/errors#insufficient_scope", scope="notes", resource_metadata="https://api.example.com/.well-known/oauth-protected-resource"
}

// Verify alone, for tokens that arrive some other way than an HTTP
// request (a message queue, a WebSocket's first frame).
func ExampleVerifier_Verify() {
	auth := exampleAuthd()
	defer auth.close()
	v, err := resource.NewVerifier(resource.Config{Issuer: auth.iss, Resource: "https://api.example.com"})
	if err != nil {
		panic(err)
	}
	// Fetch the keys at start: a wrong Issuer fails here, not later.
	if err := v.Refresh(context.Background()); err != nil {
		panic(err)
	}
	claims, err := v.Verify(context.Background(), auth.token("notes profile"))
	fmt.Println(claims.Subject, claims.ClientID, claims.Scopes, err)

	// An unsigned token ("alg": "none"), and what a handler answers.
	_, err = v.Verify(context.Background(), "eyJhbGciOiJub25lIn0.e30.")
	var e *errors.Error
	errors.As(err, &e)
	fmt.Println(e.Code, e.Code.Status(), e.Description)
	// Output:
	// 1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH c_123 [notes profile] <nil>
	// invalid_token 401 The access token is invalid or expired
}

// The metadata clients read to find the authorization server (RFC 9728).
func ExampleMetadataHandler() {
	v, _ := resource.NewVerifier(resource.Config{
		Issuer:          "https://auth.example.com",
		Resource:        "https://api.example.com/notes",
		ScopesSupported: []string{"notes"},
		ResourceName:    "Notes",
	})
	rec := httptest.NewRecorder()
	resource.MetadataHandler(v).ServeHTTP(rec, httptest.NewRequest("GET", v.MetadataPath(), nil))
	fmt.Println(v.MetadataURL())
	io.Copy(os.Stdout, rec.Body)
	// Output:
	// https://api.example.com/.well-known/oauth-protected-resource/notes
	// {
	//   "resource": "https://api.example.com/notes",
	//   "authorization_servers": [
	//     "https://auth.example.com"
	//   ],
	//   "scopes_supported": [
	//     "notes"
	//   ],
	//   "bearer_methods_supported": [
	//     "header"
	//   ],
	//   "resource_name": "Notes"
	// }
}

// exampleAS is a stand-in for authd in the examples: its metadata and
// keys, and tokens it would issue for https://api.example.com.
type exampleAS struct {
	*fakeAS
	key *signingKey
}

func exampleAuthd() exampleAS {
	t := exampleT{}
	k := newECKey(t, "k1")
	as := newFakeAS(t, k)
	return exampleAS{as, k}
}

func (a exampleAS) close() { a.srv.Close() }

func (a exampleAS) token(scope string) string {
	c := claimsAt(a.iss, "https://api.example.com", time.Now())
	c["scope"] = scope
	return a.key.sign(exampleT{}, c, nil)
}
