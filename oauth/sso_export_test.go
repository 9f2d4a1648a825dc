package oauth

import (
	"context"
	"strings"
)

// The single sign-on internals the external tests reach.

// GrantConsent records that subject allowed client the scopes of c, as a
// signed sign-in or the consent page does: for tests of other features
// whose flows would otherwise stop at the consent page.
func (s *Server) GrantConsent(ctx context.Context, subject string, c *Client) error {
	return s.recordConsent(ctx, subject, c.ID, strings.Join(c.Scopes, " "))
}

// HasConsent reports whether subject allowed clientID every scope of
// scope.
func (s *Server) HasConsent(ctx context.Context, subject, clientID, scope string) (bool, error) {
	return s.hasConsent(ctx, subject, clientID, scope)
}
