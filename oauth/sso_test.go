// Tests of single sign-on on the wire: sessions, remembered consent, the
// consent page and RP-initiated logout.
package oauth_test

import (
	"context"
	"testing"

	. "github.com/authd-dev/authd/oauth"
)

// grantConsent records that each subject allowed c all its scopes.
func grantConsent(t testing.TB, h *harness, c *Client, subjects ...string) {
	t.Helper()
	for _, sub := range subjects {
		if err := h.s.GrantConsent(context.Background(), sub, c); err != nil {
			t.Fatalf("GrantConsent: %v", err)
		}
	}
}
