package resource

import (
	"fmt"
	"net/http"
	"slices"
	"time"
)

// ParseJWKS returns the kids parseJWKS keeps, sorted, with their algorithms.
func ParseJWKS(doc []byte) ([]string, error) {
	keys, err := parseJWKS(doc)
	var out []string
	for kid, k := range keys {
		out = append(out, kid+":"+k.alg)
	}
	slices.Sort(out)
	return out, err
}

// CacheTTL is v.cacheTTL.
func (v *Verifier) CacheTTL(h http.Header) time.Duration { return v.cacheTTL(h) }

// ParsePayload runs parsePayload and renders what it read, as
// RenderClaims does.
func ParsePayload(b []byte) (string, error) {
	var p payload
	if err := parsePayload(string(b), &p); err != nil {
		return "", err
	}
	date := func(d numericDate) any {
		if !d.set {
			return nil
		}
		return d.sec
	}
	return RenderClaims(p.Iss, p.Sub, p.ClientID, p.Scope, p.Jti, p.Aud, date(p.Exp), date(p.Nbf), date(p.Iat)), nil
}

// RenderClaims renders claims for comparison; a nil date is absent.
func RenderClaims(iss, sub, clientID, scope, jti string, aud []string, exp, nbf, iat any) string {
	return fmt.Sprintf("iss=%q sub=%q client_id=%q scope=%q jti=%q aud=%q exp=%v nbf=%v iat=%v", iss, sub, clientID, scope, jti, aud, exp, nbf, iat)
}

// ASN1Signature is asn1Signature.
func ASN1Signature(r, s []byte) []byte {
	var buf [72]byte
	return append([]byte(nil), asn1Signature(&buf, r, s)...)
}
