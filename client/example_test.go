package client_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/authd-dev/authd/authtoken"
	"github.com/authd-dev/authd/client"
	"github.com/authd-dev/authd/errors"
	"golang.org/x/oauth2"
)

// An authd error, as any call returns it: errors.As gives every field of
// the JSON body and the headers.
func ExampleParseError() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.Header().Set("Retry-After", "12")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"error":"rate_limit_exceeded","error_description":"Too many requests; retry after the indicated delay","error_uri":"https://auth.example.com/docs/errors#rate_limit_exceeded","retry_after":12,"request_id":"5f0c2a9e1b7d4c3a8e6f0b12"}`)
	}))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/token")
	if err != nil {
		panic(err)
	}
	err = client.ParseError(resp) // nil for a success
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code, e.Status, e.RetryAfter, e.Temporary())
		fmt.Println(e.URI)
		fmt.Println(e.RequestID)
	}
	// Output:
	// rate_limit_exceeded 429 12s true
	// https://auth.example.com/docs/errors#rate_limit_exceeded
	// 5f0c2a9e1b7d4c3a8e6f0b12
}

// The redirect an authorization ends with: the code, once state and iss
// are the expected ones, or the error.
func ExampleParseCallback() {
	const issuer = "https://auth.example.com"
	ok, _ := url.Parse("http://127.0.0.1:7777/cb?code=SplxlOBeZQQYbYS6WxSbIA&state=af0ifjsldkj&iss=https%3A%2F%2Fauth.example.com")
	code, err := client.ParseCallback(ok, "af0ifjsldkj", issuer)
	fmt.Println(code, err)

	denied, _ := url.Parse("http://127.0.0.1:7777/cb?error=access_denied&error_description=Google+authentication+was+unsuccessful&error_uri=https%3A%2F%2Fauth.example.com%2Fdocs%2Ferrors%23google_auth_failed&state=af0ifjsldkj&iss=https%3A%2F%2Fauth.example.com")
	_, err = client.ParseCallback(denied, "af0ifjsldkj", issuer)
	fmt.Println(client.CodeOf(err), "-", err.(*client.Error).Description)

	_, err = client.ParseCallback(ok, "another-state", issuer)
	fmt.Println(err == client.ErrStateMismatch)
	// Output:
	// SplxlOBeZQQYbYS6WxSbIA <nil>
	// access_denied - Google authentication was unsuccessful
	// true
}

func ExampleParseChallenges() {
	h := http.Header{}
	h.Add("WWW-Authenticate", `Bearer realm="authd", error="insufficient_scope", error_description="The access token does not carry the profile scope", scope="profile"`)
	for _, c := range client.ParseChallenges(h.Values("WWW-Authenticate")) {
		fmt.Println(c.Scheme, c.Params["error"], c.Params["scope"])
	}
	// Output:
	// Bearer insufficient_scope profile
}

// A wallet's HTTP client: every request, and every retry of it, is signed
// anew with the wallet's key. The server here checks the token as authd
// does.
func ExampleNewSignedClient() {
	// A test key; never use it for anything else.
	signer, err := authtoken.NewSigner("L4WVo4zZ8QC795KtwPyqgH92T7Q23FC4p4wGkFeZiaWeyewugte7")
	if err != nil {
		panic(err)
	}
	var issuer string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		res, err := authtoken.VerifyToken(r.Header.Get("X-Auth-Token"),
			authtoken.Request{Method: r.Method, Target: r.RequestURI, Issuer: issuer}, body, time.Now(), 0)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "%s %s signed by %s for this server only: %v", r.Method, r.RequestURI, res.Address, res.Bound)
	}))
	issuer = "http://" + srv.Listener.Addr().String()
	srv.Start()
	defer srv.Close()

	hc := client.NewSignedClient(issuer, signer)
	resp, err := hc.Post(issuer+"/things?x=1", "text/plain", strings.NewReader("hello"))
	if err != nil {
		panic(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(b))
	// Output:
	// POST /things?x=1 signed by 15CRxFdyRpGZLW9w8HnHvVduizdL5jKNbs for this server only: true
}

// A wallet keeps its encrypted backup on authd: create it once, then
// replace only the version it last saw.
func ExampleBackups() {
	issuer, stop := fakeBackupServer() // authd's /backup; see below
	defer stop()
	signer, _ := authtoken.NewSigner("L4WVo4zZ8QC795KtwPyqgH92T7Q23FC4p4wGkFeZiaWeyewugte7")
	backups := client.NewBackups(issuer, client.NewSignedClient(issuer, signer))
	ctx := context.Background()

	// The string bitcoin-backup's encryptBackup returned, made on the device.
	encrypted := []byte("U2FsdGVkX1+3q0bq1d3R8f1H1Jx2w9yq3eXk0mJ1YmFja3VwIGNpcGhlcnRleHQ=")
	stored, err := backups.Put(ctx, encrypted, client.CreateOnly())
	fmt.Println(stored.Created, stored.ETag, err)

	// Another device that has not seen it cannot overwrite it.
	_, err = backups.Put(ctx, []byte("b3RoZXIgZGV2aWNlJ3MgY2lwaGVydGV4dCBvZiBhIGJhY2t1cA=="), client.CreateOnly())
	fmt.Println(errors.Is(err, client.ErrConflict))

	got, _ := backups.Get(ctx)
	replaced, err := backups.Put(ctx, []byte("bmV3ZXIgY2lwaGVydGV4dCBvZiB0aGUgd2FsbGV0IGJhY2t1cA=="), client.IfMatch(got.ETag))
	fmt.Println(replaced.Created, replaced.ETag, err)
	// Output:
	// true "v1" <nil>
	// true
	// false "v2" <nil>
}

// fakeBackupServer serves /backup with authd's ETag rules, for
// ExampleBackups, and returns its URL.
func fakeBackupServer() (string, func()) {
	var data, etag string
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conflict := func() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusPreconditionFailed)
			io.WriteString(w, `{"error":"backup_conflict","error_description":"The backup was changed by another device"}`)
		}
		switch r.Method {
		case http.MethodGet:
			w.Header().Set("ETag", etag)
			io.WriteString(w, data)
		case http.MethodPut:
			if im := r.Header.Get("If-Match"); (im != "" && im != etag) || (r.Header.Get("If-None-Match") == "*" && etag != "") {
				conflict()
				return
			}
			b, _ := io.ReadAll(r.Body)
			created := etag == ""
			n++
			data, etag = string(b), fmt.Sprintf(`"v%d"`, n)
			w.Header().Set("ETag", etag)
			if created {
				w.WriteHeader(http.StatusCreated)
			}
			fmt.Fprintf(w, `{"etag":%q,"size":%d,"updated_at":"2027-01-15T08:00:00.000Z"}`, etag, len(b))
		}
	}))
	return srv.URL, srv.Close
}

// Discovery gives golang.org/x/oauth2 its configuration; ParseCallback
// then reads the redirect.
func ExampleDiscover() {
	var issuer string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer":%q,"authorization_endpoint":"%s/authorize","token_endpoint":"%s/token",
			"token_endpoint_auth_methods_supported":["client_secret_basic","client_secret_post","none"],
			"authorization_response_iss_parameter_supported":true}`, issuer, issuer, issuer)
	}))
	issuer = "http://" + srv.Listener.Addr().String()
	srv.Start()
	defer srv.Close()

	m, err := client.Discover(context.Background(), issuer, nil)
	if err != nil {
		panic(err)
	}
	conf := m.OAuth2Config("my-app", "", "http://127.0.0.1:7777/cb", "profile", "backup")
	verifier := oauth2.GenerateVerifier()
	authURL, _ := url.Parse(conf.AuthCodeURL("state-1", oauth2.S256ChallengeOption(verifier)))
	fmt.Println(strings.TrimPrefix(conf.Endpoint.TokenURL, issuer), authURL.Path, authURL.Query().Get("code_challenge_method"))
	// Output:
	// /token /authorize S256
}

// The transports compose: sign under retry, so that every attempt has a
// token of its own.
func ExampleRetryTransport() {
	signer, _ := authtoken.NewSigner("L4WVo4zZ8QC795KtwPyqgH92T7Q23FC4p4wGkFeZiaWeyewugte7")
	hc := &http.Client{
		Transport: &client.RetryTransport{
			MaxRetries: 5,
			MaxDelay:   10 * time.Second,
			Budget:     client.NewRetryBudget(20, 0.1), // share it between clients of one process
			Next: &client.SigningTransport{
				Signer: signer,
				Format: authtoken.FormatBitcoinAuth,
				Scheme: authtoken.SchemeBRC77,
				Origin: "https://auth.example.com",
			},
		},
		Timeout: time.Minute,
	}
	_ = client.NewBackups("https://auth.example.com", hc)
}
