package loadtest

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"

	"github.com/go-oauth2/oauth2/v4/manage"
	"github.com/go-oauth2/oauth2/v4/models"
	libserver "github.com/go-oauth2/oauth2/v4/server"
	libstore "github.com/go-oauth2/oauth2/v4/store"
)

// The client the baseline server knows, allowed client_credentials.
const (
	BaselineClientID     = "bench"
	BaselineClientSecret = "bench-secret"
)

// BaselineHandler is go-oauth2 v4 out of the box: its default manager and
// server, its memory client and token stores, none of authd's checks. It
// answers
//
//   - POST /token: the library's token endpoint (HTTP Basic clients; its
//     access tokens are random strings kept in the memory store);
//   - POST /introspect: the least an introspection endpoint (RFC 7662)
//     does with the library: authenticate the caller against the client
//     store, look the token up in the token store (which checks its
//     expiry) and answer active or not;
//   - GET /healthz: 200, for a caller waiting for the server to start.
//
// It is the same-run baseline of authd's load benchmarks, which run it as
// a process of its own (see the bareoauth2 command).
func BaselineHandler() http.Handler {
	m := manage.NewDefaultManager()
	m.MustTokenStorage(libstore.NewMemoryTokenStore())
	cs := libstore.NewClientStore()
	cs.Set(BaselineClientID, &models.Client{ID: BaselineClientID, Secret: BaselineClientSecret, Domain: "https://app.example.com"})
	m.MapClientStorage(cs)
	srv := libserver.NewDefaultServer(m)
	srv.SetClientInfoHandler(libserver.ClientBasicHandler)

	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		srv.HandleTokenRequest(w, r)
	})
	mux.HandleFunc("POST /introspect", func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		ci, err := m.GetClient(r.Context(), id)
		if err != nil || subtle.ConstantTimeCompare([]byte(ci.GetSecret()), []byte(secret)) != 1 {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		out := map[string]any{"active": false}
		if ti, err := m.LoadAccessToken(r.Context(), r.PostFormValue("token")); err == nil {
			out = map[string]any{"active": true, "client_id": ti.GetClientID(), "scope": ti.GetScope(),
				"exp": ti.GetAccessCreateAt().Add(ti.GetAccessExpiresIn()).Unix(), "token_type": "Bearer"}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {})
	return mux
}
