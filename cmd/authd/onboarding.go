package main

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/authd-dev/authd/oauth"
)

// onboardingConfig is how clients that have never met authd get to it:
// resource indicators (RFC 8707), Client ID Metadata Documents and dynamic
// client registration (RFC 7591).
type onboardingConfig struct {
	Resources                   []string
	Registration                oauth.RegistrationMode
	RegistrationToken           string
	ClientMetadataDocuments     bool
	ClientMetadataAllowLoopback bool
}

// onboardingSettings are the serve settings of onboardingConfig.
func onboardingSettings() []*setting {
	return []*setting{
		{flag: "resources", env: "AUTHD_RESOURCES", help: "comma-separated resource URIs (RFC 8707) every client may ask tokens for, e.g. https://mcp.example.com/mcp"},
		{flag: "registration", env: "AUTHD_REGISTRATION", def: "off", help: "dynamic client registration at /register: off, token (with AUTHD_REGISTRATION_TOKEN) or open"},
		{flag: "registration-token", env: "AUTHD_REGISTRATION_TOKEN", help: "initial access token a registration must present as a Bearer token (AUTHD_REGISTRATION=token), at least 32 characters"},
		{flag: "client-metadata-documents", env: "AUTHD_CLIENT_METADATA_DOCUMENTS", def: "false", help: "accept https URLs as client_ids and fetch the client's metadata document there (true or false)"},
		{flag: "client-metadata-allow-loopback", env: "AUTHD_CLIENT_METADATA_ALLOW_LOOPBACK", def: "false", help: "also fetch client_ids of the form http://127.0.0.1:PORT/path: tests and development only, needs a loopback issuer"},
	}
}

// validateOnboarding reads the onboarding settings into c.
func validateOnboarding(c *config, get func(string) *setting) error {
	fail := func(env, reason string) error { return &settingError{s: get(env), reason: reason} }
	o := &c.Onboarding
	for _, r := range strings.Split(get("AUTHD_RESOURCES").value, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		if err := oauth.CheckResource(r); err != nil {
			return fail("AUTHD_RESOURCES", strconv.Quote(r)+" "+err.Error()+"; want comma-separated absolute URIs such as https://api.example.com")
		}
		o.Resources = append(o.Resources, r)
	}

	var err error
	for _, b := range []struct {
		env string
		dst *bool
	}{
		{"AUTHD_CLIENT_METADATA_DOCUMENTS", &o.ClientMetadataDocuments},
		{"AUTHD_CLIENT_METADATA_ALLOW_LOOPBACK", &o.ClientMetadataAllowLoopback},
	} {
		if *b.dst, err = strconv.ParseBool(get(b.env).value); err != nil {
			return fail(b.env, "want true or false")
		}
	}
	if o.ClientMetadataAllowLoopback {
		if !o.ClientMetadataDocuments {
			return fail("AUTHD_CLIENT_METADATA_ALLOW_LOOPBACK", "needs AUTHD_CLIENT_METADATA_DOCUMENTS=true")
		}
		if !c.issuerIsLoopback() {
			return fail("AUTHD_CLIENT_METADATA_ALLOW_LOOPBACK", "only for tests and development: the issuer must be on a loopback host")
		}
	}

	switch m := oauth.RegistrationMode(get("AUTHD_REGISTRATION").value); m {
	case oauth.RegistrationOff, oauth.RegistrationToken, oauth.RegistrationOpen:
		o.Registration = m
	default:
		return fail("AUTHD_REGISTRATION", "want off, token or open")
	}
	tok := get("AUTHD_REGISTRATION_TOKEN").value
	switch {
	case o.Registration == oauth.RegistrationToken && tok == "":
		return fail("AUTHD_REGISTRATION_TOKEN", "required when AUTHD_REGISTRATION=token")
	case o.Registration != oauth.RegistrationToken && tok != "":
		return fail("AUTHD_REGISTRATION_TOKEN", "set only with AUTHD_REGISTRATION=token")
	case tok != "" && (len(tok) < 32 || !bearerToken(tok)):
		return fail("AUTHD_REGISTRATION_TOKEN", "want at least 32 characters of A-Z a-z 0-9 - . _ ~ + / (a Bearer token), e.g. from openssl rand -base64 32")
	}
	o.RegistrationToken = tok
	return nil
}

// issuerIsLoopback reports whether the issuer's host is loopback.
func (c *config) issuerIsLoopback() bool {
	u, err := url.Parse(c.Issuer)
	return err == nil && oauth.LoopbackHost(u.Hostname())
}

// bearerToken reports whether t is an RFC 6750 §2.1 b64token.
func bearerToken(t string) bool {
	body := strings.TrimRight(t, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			return false
		}
	}
	return true
}

// onboardingWarning returns the warning authd logs at start when the
// loopback exception of metadata documents is on, or "".
func (c *config) onboardingWarning() string {
	if !c.Onboarding.ClientMetadataAllowLoopback {
		return ""
	}
	return "AUTHD_CLIENT_METADATA_ALLOW_LOOPBACK is on: anyone who can reach /authorize can make authd fetch from http://127.0.0.1; use it only for tests and development"
}
