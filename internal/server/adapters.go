package server

import (
	"context"
	"net/http"
	"net/url"

	"github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/provider"
	"github.com/authd-dev/authd/sigauth"
)

// The services meet through the small interfaces each declares for what
// it needs; these adapters connect them.

// oauthWallet lets the authorization server sign wallets in with sigauth.
type oauthWallet struct{ v *sigauth.Verifier }

// Authenticate accepts each signed authorization request once: it issues
// a code, so a replay must not sign the user in again.
func (w oauthWallet) Authenticate(r *http.Request) (oauth.WalletUser, error) {
	id, err := w.v.AuthenticateOnce(r)
	return oauth.WalletUser{Address: id.Address, PubKey: id.PubKey}, err
}

// VerifyLogin verifies the login form's signature, with sigauth's lockout.
func (w oauthWallet) VerifyLogin(r *http.Request, address, message, signature string) (oauth.WalletUser, error) {
	id, err := w.v.VerifyLogin(r, address, message, signature)
	return oauth.WalletUser{Address: id.Address, PubKey: id.PubKey}, err
}

// backupWallet lets the backup service authenticate X-Auth-Token requests
// with sigauth: the identity is the signer's address.
type backupWallet struct{ v *sigauth.Verifier }

func (w backupWallet) AuthenticateWallet(r *http.Request) (string, error) {
	id, err := w.v.Authenticate(r)
	return id.Address, err
}

// Provider adapts a sign-in provider (Google, GitHub) to the
// authorization server, for Config.Upstreams.
func Provider(p *provider.Provider) oauth.Upstream { return upstream{p} }

// upstream adapts a provider.Provider to oauth.Upstream.
type upstream struct{ *provider.Provider }

func (u upstream) Exchange(ctx context.Context, code, verifier string, email bool) (oauth.UpstreamUser, error) {
	p, err := u.Provider.Exchange(ctx, code, verifier, email)
	if err != nil {
		return oauth.UpstreamUser{}, err
	}
	return oauth.UpstreamUser{Subject: p.Subject(), Email: p.Email, EmailVerified: p.EmailVerified,
		Login: p.Login, Name: p.Name, Picture: p.Picture}, nil
}

func (u upstream) CallbackError(q url.Values) error { return u.Provider.CallbackError(q) }
