package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
)

const clientUsage = `usage:
  authd client create --name NAME --redirect-uri URI [--redirect-uri URI2 ...]
                      [--public] [--scope "S1 S2"] [--grant G1,G2]
                      [--id-token-alg RS256|ES256] [--resource URI ...]
                      [--post-logout-redirect-uri URI ...]
  authd client list
  authd client delete CLIENT_ID

create prints the new client as JSON; a confidential client's client_secret
is shown this once and cannot be recovered. Defaults: --scope profile,
--grant authorization_code,refresh_token (client_credentials only when asked
for, and never for --public clients). Redirect URIs must be absolute, without
a fragment, and https, except http on 127.0.0.1, [::1] or localhost and
private-use schemes such as com.example.app:/callback. ID Tokens (scope
openid) are signed RS256 unless --id-token-alg ES256 is given. --resource
names an API (an RFC 8707 resource indicator: an absolute URI without a
fragment) the client may ask tokens for, besides the server-wide
AUTHD_RESOURCES. --post-logout-redirect-uri (repeatable, the rules of
redirect URIs) lists where /logout may send the client's users after
signing out, matched exactly.

list prints every client, with "registration" saying how it came: operator
(client create), dynamic (it registered itself at /register) or
metadata_document (its client_id is the URL of its metadata document; such
a client is listed once it has been granted something). delete removes any
of them with its refresh tokens; its access tokens stop working within a
second. A deleted metadata_document client comes back, as a new client, when
its client_id is used again while AUTHD_CLIENT_METADATA_DOCUMENTS is on.
`

// runClient is `authd client …`: it registers, lists and deletes OAuth
// clients in db (already opened and migrated). Results go to stdout as
// JSON, usage and diagnostics to stderr.
func runClient(ctx context.Context, db *store.DB, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, clientUsage)
		return errors.New("client: missing subcommand (create, list or delete)")
	}
	switch args[0] {
	case "create":
		return clientCreate(ctx, db, args[1:], stdout, stderr)
	case "list":
		if len(args) != 1 {
			fmt.Fprint(stderr, clientUsage)
			return errors.New("client list: takes no arguments")
		}
		clients, err := oauth.ListClients(ctx, db.DB)
		if err != nil {
			return cliError("client list", err)
		}
		return printJSON(stdout, clients)
	case "delete":
		if len(args) != 2 || args[1] == "" {
			fmt.Fprint(stderr, clientUsage)
			return errors.New("client delete: want exactly one CLIENT_ID")
		}
		if err := oauth.DeleteClient(ctx, db.DB, args[1]); err != nil {
			if errors.Is(err, oauth.ErrNoClient) {
				return errors.Errorf("client delete: no client with id %q", args[1])
			}
			return cliError("client delete", err)
		}
		return printJSON(stdout, map[string]any{"client_id": args[1], "deleted": true})
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, clientUsage)
		return nil
	default:
		fmt.Fprint(stderr, clientUsage)
		return errors.Errorf("client: unknown subcommand %q (want create, list or delete)", args[0])
	}
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func clientCreate(ctx context.Context, db *store.DB, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("client create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, clientUsage) }
	var (
		name      = fs.String("name", "", "client name shown to users on the login page")
		public    = fs.Bool("public", false, "public client (no secret; PKCE required): native and browser apps")
		scope     = fs.String("scope", "", `space-separated scopes the client may ask for (default "profile")`)
		idAlg     = fs.String("id-token-alg", "", "algorithm of the client's ID Tokens: RS256 (default) or ES256")
		uris      listFlag
		grants    listFlag
		resources listFlag
		logout    listFlag
	)
	fs.Var(&uris, "redirect-uri", "redirect URI (repeat for several)")
	fs.Var(&logout, "post-logout-redirect-uri", "where /logout may send users after signing out (repeat for several)")
	fs.Var(&resources, "resource", "resource URI (RFC 8707) the client may ask tokens for (repeat for several)")
	fs.Var(&grants, "grant", "comma-separated grant types (default authorization_code,refresh_token)")
	if err := fs.Parse(args); err != nil {
		return errors.Errorf("client create: %w", err)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errors.Errorf("client create: unexpected argument %q", fs.Arg(0))
	}
	if strings.TrimSpace(*name) == "" {
		fs.Usage()
		return errors.New("client create: --name is required")
	}
	reg := oauth.ClientRegistration{Name: *name, RedirectURIs: uris, Public: *public, IDTokenAlg: *idAlg, Resources: resources, PostLogoutRedirectURIs: logout}
	if *scope != "" {
		reg.Scopes = strings.Fields(*scope)
	}
	for _, g := range grants {
		for _, one := range strings.Split(g, ",") {
			if one = strings.TrimSpace(one); one != "" {
				reg.Grants = append(reg.Grants, one)
			}
		}
	}
	c, secret, err := oauth.CreateClient(ctx, db.DB, reg, time.Now())
	if err != nil {
		return cliError("client create", err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if secret == "" {
		return printJSON(stdout, json.RawMessage(b))
	}
	// client_secret right after client_id, so it is hard to miss.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	ordered := orderedJSON{
		{"client_id", fields["client_id"]},
		{"client_secret", mustJSON(secret)},
		{"client_secret_expires_at", mustJSON(0)},
	}
	for _, k := range []string{"client_name", "redirect_uris", "grant_types", "scope", "token_endpoint_auth_method", "id_token_signed_response_alg", "post_logout_redirect_uris", "resources", "registration", "client_id_issued_at"} {
		if k == "post_logout_redirect_uris" && fields[k] == nil {
			continue // only for a client that registered some
		}
		ordered = append(ordered, kv{k, fields[k]})
	}
	return printJSON(stdout, ordered)
}

// cliError turns a package error into one line for a person: the
// description of a client error, the cause of anything else.
func cliError(cmd string, err error) error {
	var e *errors.Error
	if errors.As(err, &e) && e.Code != errors.TemporarilyUnavailable && e.Code != errors.ServerError && e.Description != "" {
		return errors.Errorf("%s: %s", cmd, e.Description)
	}
	return errors.Errorf("%s: %w", cmd, err)
}

type kv struct {
	k string
	v json.RawMessage
}

// orderedJSON is a JSON object whose members keep their order.
type orderedJSON []kv

func (o orderedJSON) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.k)
		b.Write(k)
		b.WriteByte(':')
		b.Write(m.v)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
