package oauth_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd-dev/authd/internal/testenv"
	. "github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestBrowserSingleSignOn drives a real, headless Chromium through single
// sign-on: signing in on the login page (the test signs the message the
// page shows with a test key and pastes the address and signature, as a
// person does with a wallet's "Sign message"), a second application's
// consent page (Allow, with the keyboard), a silent sign-in (prompt=none:
// no page at all), and signing out (the confirmation form, the signed-out
// page). The browser runs with JavaScript turned off and the test never
// touches a cookie: every page must work with the person's clicks and the
// pasted signature alone.
func TestBrowserSingleSignOn(t *testing.T) {
	chromium := testenv.Chromium(t)
	h := newHarness(t, testenv.DB(t, store.SQLite), nil)

	// The applications: one server standing for the redirect URIs of two
	// clients, showing the query it was sent.
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html;charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>app</title><p id="query">%s</p>`, html.EscapeString(r.URL.RawQuery))
	}))
	defer app.Close()
	mail, mailSecret := h.client(ClientRegistration{Name: "Mail", RedirectURIs: []string{app.URL + "/mail"}, Scopes: []string{"openid", "profile"}})
	board, _ := h.client(ClientRegistration{Name: "Board", RedirectURIs: []string{app.URL + "/board"}, Scopes: []string{"openid", "profile"}})
	addr := h.wallet.user()
	request := func(c *Client, ru string, extra ...string) string {
		v := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {ru}, "scope": {"openid profile"}, "state": {"st"}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return h.issuer + authorizeURL(v)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.NoSandbox, chromedp.ExecPath(chromium))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	// No JavaScript: authd's pages must not need any.
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	})); err != nil {
		testenv.Unavailable(t, "chromium (%s) cannot run here: %v", chromium, err)
	}
	// 200 % zoom: a 1280-pixel-wide window shows 640 CSS pixels.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(640, 900, chromedp.EmulateScale(2))); err != nil {
		t.Fatal(err)
	}
	// Every HTML document the browser loads, in order.
	var (
		mu   sync.Mutex
		docs []string
	)
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventResponseReceived); ok && e.Type == network.ResourceTypeDocument {
			mu.Lock()
			docs = append(docs, fmt.Sprintf("%d %s", e.Response.Status, e.Response.URL))
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	loaded := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := docs
		docs = nil
		return out
	}
	step := func(name string, a chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, a); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// page describes where the browser is, for failures.
	page := func() string {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		loc, _ := chromedp.Run(pctx, chromedp.Location())
		body, _ := chromedp.Run(pctx, chromedp.OuterHTML(chromedp.CSS("body")))
		return "at " + loc + ":\n" + body
	}
	text := func(sel string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		s, err := chromedp.Run(sctx, chromedp.TextContent(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v\n%s", sel, err, page())
		}
		return s
	}
	// readable checks that the page the browser shows (one of authd's)
	// reflows at 200 % zoom: nothing makes it scroll sideways.
	readable := func(name string) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		w, err := chromedp.Run(sctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, document.documentElement.clientWidth]`))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(w) != 2 || w[1] != 640 || w[0] > w[1] {
			t.Errorf("%s at 200%% zoom: %v CSS pixels wide in a 640-pixel viewport; it must not scroll sideways\n%s", name, w, page())
		}
	}
	// at checks that the browser is at the application path with a code
	// (or the error), and returns the query it received.
	at := func(path, wantErr string) url.Values {
		t.Helper()
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(loc)
		q, _ := url.ParseQuery(html.UnescapeString(text("#query")))
		if u.Path != path || q.Get("state") != "st" || q.Get("iss") != h.issuer || q.Get("error") != wantErr || (wantErr == "") != q.Has("code") {
			t.Fatalf("at %s (query %v), want %s with error %q", loc, q, path, wantErr)
		}
		return q
	}

	// 1. Sign in to Mail on the login page.
	step("open Mail's sign-in", chromedp.Navigate(request(mail, app.URL+"/mail")))
	if got := text("h1"); got != "Sign in to Mail" {
		t.Fatalf("login page heading %q", got)
	}
	msg, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("message")))
	if err != nil || !strings.Contains(msg, "Application: Mail") {
		t.Fatalf("message %q: %v", msg, err)
	}
	readable("the login page")
	step("paste the address", chromedp.SendKeys(chromedp.ID("address"), addr))
	step("paste the signature", chromedp.SendKeys(chromedp.ID("signature"), h.wallet.sign(addr, msg)))
	loaded()
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`button[type="submit"]`))); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	q := at("/mail", "")
	first := h.token(url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {app.URL + "/mail"}}, mail.ID, mailSecret)
	first.wantOK(t)
	_, claims := h.idToken(first.IDToken)
	if claims["sid"] == nil {
		t.Fatal("no sid: the sign-in started no session")
	}

	// 2. Board: no new signature, its consent page; Allow with the
	// keyboard.
	step("open Board", chromedp.Navigate(request(board, app.URL+"/board")))
	if got := text("main > p"); !strings.Contains(got, "Board at "+strings.TrimPrefix(app.URL, "http://")+" wants to:") {
		t.Fatalf("consent page says %q", got)
	}
	readable("the consent page")
	if _, err := chromedp.RunResponse(ctx, chromedp.SendKeys(chromedp.CSS(`button[value="allow"]`), kb.Enter)); err != nil {
		t.Fatalf("allow: %v", err)
	}
	at("/board", "")

	// 3. Mail again, silently: the browser goes straight back to Mail,
	// and no page of authd's is ever shown.
	loaded()
	step("silent sign-in", chromedp.Navigate(request(mail, app.URL+"/mail", "prompt", "none")))
	q = at("/mail", "")
	if docs := loaded(); len(docs) != 1 || !strings.HasPrefix(docs[0], "200 "+app.URL+"/mail?") {
		t.Errorf("documents loaded for prompt=none: %v; want the application's alone", docs)
	}
	silent := h.token(url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {app.URL + "/mail"}}, mail.ID, mailSecret)
	silent.wantOK(t)
	if _, c := h.idToken(silent.IDToken); c["sid"] != claims["sid"] || c["auth_time"] != claims["auth_time"] {
		t.Errorf("silent sign-in: sid %v auth_time %v, want the session's %v %v", c["sid"], c["auth_time"], claims["sid"], claims["auth_time"])
	}

	// 4. Sign out: the confirmation, then the signed-out page.
	step("open sign-out", chromedp.Navigate(h.issuer+"/logout"))
	if got := text("h1"); !strings.HasPrefix(got, "Sign out of") {
		t.Fatalf("sign-out page heading %q", got)
	}
	readable("the sign-out page")
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`button[type="submit"]`))); err != nil {
		t.Fatalf("sign out: %v", err)
	}
	if got := text("h1"); got != "You are signed out" {
		t.Fatalf("after signing out: %q", got)
	}
	readable("the signed-out page")
	step("silent sign-in after signing out", chromedp.Navigate(request(mail, app.URL+"/mail", "prompt", "none")))
	at("/mail", "login_required")
}
