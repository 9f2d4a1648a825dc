package main

import (
	"context"
	"github.com/authd-dev/authd/clientdoc"
	"log/slog"
	"net/http"
	"time"

	"github.com/authd-dev/authd/internal/server"
	"github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/provider"
	"github.com/authd-dev/authd/store"
)

// serverConfig is the configuration of authd's HTTP server: the settings
// of cfg on the connections newApp opened.
func serverConfig(cfg *config, log *slog.Logger, db *store.DB, rdb *redisConn) server.Config {
	var ups []oauth.Upstream
	if cfg.Google.ClientID != "" {
		ups = append(ups, server.Provider(provider.NewGoogle(providerSettings(cfg, "google", cfg.Google),
			provider.GoogleEndpoints{AuthURL: cfg.Google.AuthURL, TokenURL: cfg.Google.TokenURL, UserInfoURL: cfg.Google.UserInfoURL})))
	}
	if cfg.GitHub.ClientID != "" {
		ups = append(ups, server.Provider(provider.NewGitHub(providerSettings(cfg, "github", cfg.GitHub),
			provider.GitHubEndpoints{BaseURL: cfg.GitHub.BaseURL, APIURL: cfg.GitHub.APIURL})))
	}
	return server.Config{
		Issuer:           cfg.Issuer,
		ErrorURIBase:     cfg.ErrorURIBase,
		DB:               db,
		Redis:            rdb,
		AccessTokenTTL:   cfg.AccessTokenTTL,
		IDTokenTTL:       cfg.IDTokenTTL,
		RefreshTokenTTL:  cfg.RefreshTokenTTL,
		RefreshFamilyMax: cfg.RefreshFamilyMax,
		KeyEncryption:    cfg.KeyFile.enc,
		CodeTTL:          cfg.CodeTTL,
		LoginTTL:         cfg.LoginTTL,
		SigauthWindow:    cfg.SigauthWindow,
		TrustedProxies:   cfg.TrustedProxies,
		RateLimits:       cfg.RateLimits,

		SigauthRequireBinding:        cfg.SigauthRequireBinding,
		SigauthUncompressedAddresses: cfg.SigauthUncompressed,
		BackupIPDailyBytes:           cfg.BackupIPDailyBytes,
		BackupIPDailyCreates:         cfg.BackupIPDailyCreates,
		Upstreams:                    ups,
		MetricsElsewhere:             cfg.MetricsAddr != "",
		Logger:                       log,
		SessionIdle:                  cfg.SessionIdle,
		SessionMax:                   cfg.SessionMax,
		SessionsOff:                  cfg.SessionIdle == 0 || cfg.SessionMax == 0,

		Resources:               cfg.Onboarding.Resources,
		Registration:            cfg.Onboarding.Registration,
		RegistrationToken:       cfg.Onboarding.RegistrationToken,
		ClientMetadataDocuments: cfg.Onboarding.ClientMetadataDocuments,
		ClientMetadata:          clientdoc.Config{AllowLoopback: cfg.Onboarding.ClientMetadataAllowLoopback},
	}
}

func providerSettings(cfg *config, name string, p providerConfig) provider.Config {
	pc := provider.Config{
		ClientID:     p.ClientID,
		ClientSecret: p.ClientSecret,
		RedirectURL:  cfg.Issuer + "/callback/" + name,
	}
	if cfg.providerTimeout > 0 {
		pc.HTTPClient = &http.Client{Timeout: cfg.providerTimeout}
	}
	return pc
}

// purgeLoop deletes expired refresh tokens and revoked-family records
// hourly until ctx is done.
func (a *app) purgeLoop(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := a.srv.OAuth().Purge(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("purging expired tokens failed", slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
