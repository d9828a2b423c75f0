// Package server is `vigil server`: it loads the configuration, builds
// storage → barrier → core → HTTP API, runs the listeners, reloads TLS
// certificates and the log level on SIGHUP and shuts down gracefully.
//
// It is the one place that wires the parts together (with the explicit table
// of engine factories); nothing imports it but cmd/vigil and tests.
package server

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/internal/audit"
	auditfile "github.com/vigil-secrets/vigil/internal/audit/file"
	auditsocket "github.com/vigil-secrets/vigil/internal/audit/socket"
	auditsyslog "github.com/vigil-secrets/vigil/internal/audit/syslog"
	"github.com/vigil-secrets/vigil/internal/auth/approle"
	"github.com/vigil-secrets/vigil/internal/auth/jwt"
	"github.com/vigil-secrets/vigil/internal/auth/kubernetes"
	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/core"
	"github.com/vigil-secrets/vigil/internal/httpapi"
	"github.com/vigil-secrets/vigil/internal/logging"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/metrics"
	"github.com/vigil-secrets/vigil/internal/secrets/cubbyhole"
	"github.com/vigil-secrets/vigil/internal/secrets/database"
	"github.com/vigil-secrets/vigil/internal/secrets/kv"
	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/bolt"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
	"github.com/vigil-secrets/vigil/internal/storage/postgres"
)

// Factories is the table of secrets engines this build serves.
func Factories() map[string]logical.Factory {
	return map[string]logical.Factory{
		"kv":        kv.Factory,
		"database":  database.Factory,
		"cubbyhole": cubbyhole.Factory,
	}
}

// AuthFactories is the table of auth methods this build serves.
func AuthFactories() map[string]logical.Factory {
	return map[string]logical.Factory{
		"approle":    approle.Factory,
		"jwt":        jwt.Factory,
		"kubernetes": kubernetes.Factory,
		"oidc":       jwt.Factory,
	}
}

// AuditFactories is the table of audit device types this build serves.
func AuditFactories() map[string]audit.Factory {
	return map[string]audit.Factory{
		"file":   auditfile.New,
		"socket": auditsocket.New,
		"syslog": auditsyslog.New,
	}
}

// auditDevices converts the configuration's audit blocks.
func auditDevices(ds []config.AuditDevice) []core.AuditDevice {
	var out []core.AuditDevice
	for _, d := range ds {
		out = append(out, core.AuditDevice{Path: d.Path, Type: d.Type, Description: d.Description, Options: d.Options})
	}
	return out
}

// flags are `vigil server`'s command-line options.
type flags struct {
	configPath       string
	dev              bool
	devRootTokenID   string
	devListenAddress string
	devTLS           bool
	devTLSCertDir    string
	logLevel         string
	logFormat        string
}

const usage = `Usage: vigil server [options]

  Start a Vigil server.

    vigil server -config=/etc/vigil/config.hcl
    vigil server -dev

Options:
`

// Run is the `vigil server` command. reload delivers SIGHUP; ctx ends on
// SIGINT/SIGTERM. It returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, reload <-chan os.Signal) int {
	var f flags
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&f.configPath, "config", "", "path to the server configuration file (HCL or JSON)")
	fs.BoolVar(&f.dev, "dev", false, "start an in-memory, unsealed development server")
	fs.StringVar(&f.devRootTokenID, "dev-root-token-id", "", "root token of the dev server (default: random)")
	fs.StringVar(&f.devListenAddress, "dev-listen-address", "127.0.0.1:8200", "address the dev server listens on")
	fs.BoolVar(&f.devTLS, "dev-tls", false, "serve the dev server over TLS with a throwaway CA")
	fs.StringVar(&f.devTLSCertDir, "dev-tls-cert-dir", "", "where -dev-tls writes its CA and certificate (default: a new temporary directory)")
	fs.StringVar(&f.logLevel, "log-level", "", "log level: trace, debug, info, warn, error (overrides the config)")
	fs.StringVar(&f.logFormat, "log-format", "", "log format: json or text (overrides the config)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vigil server: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if !f.dev && f.configPath == "" {
		fmt.Fprintln(stderr, "vigil server: a -config file is required (or -dev for a development server)")
		return 2
	}
	if err := run(ctx, f, stdout, stderr, reload); err != nil {
		fmt.Fprintf(stderr, "vigil server: %v\n", err)
		return 1
	}
	return 0
}

// loadConfig reads the config file, or builds the dev configuration.
func loadConfig(f flags) (*config.Server, error) {
	if f.dev {
		cfg := config.Dev(f.devListenAddress)
		return cfg, nil
	}
	return config.Load(f.configPath)
}

func run(ctx context.Context, f flags, stdout, stderr io.Writer, reload <-chan os.Signal) error {
	cfg, err := loadConfig(f)
	if err != nil {
		return err
	}
	level, format := cfg.LogLevel, cfg.LogFormat
	if f.logLevel != "" {
		level = f.logLevel
	}
	if f.logFormat != "" {
		format = f.logFormat
	}
	if f.dev && f.logFormat == "" {
		format = "text"
	}
	logger, levelVar, err := logging.New(logging.Options{Level: level, Format: format, Output: stderr})
	if err != nil {
		return err
	}
	logInertKeys(logger, cfg)

	var devCerts *devTLS
	if f.dev && f.devTLS {
		dir := f.devTLSCertDir
		if dir == "" {
			if dir, err = os.MkdirTemp("", "vigil-dev-tls-"); err != nil {
				return err
			}
			defer os.RemoveAll(dir)
		}
		host, _, _ := net.SplitHostPort(f.devListenAddress)
		if devCerts, err = generateDevTLS(dir, host); err != nil {
			return fmt.Errorf("generate dev tls certificate: %w", err)
		}
		cfg.Listeners[0].TLSDisable = false
		cfg.Listeners[0].TLSCertFile = devCerts.certFile
		cfg.Listeners[0].TLSKeyFile = devCerts.keyFile
	}

	backend, err := openStorage(ctx, cfg.Storage, logger, os.Getenv)
	if err != nil {
		return err
	}
	defer func() {
		if c, ok := backend.(storage.Closer); ok {
			if err := c.Close(); err != nil {
				logger.Error("close storage", "error", err)
			}
		}
	}()

	// With ha_enabled, this server is one of several sharing the storage:
	// the core campaigns for its leader lock and the HTTP layer forwards
	// a standby's clients to the active server's api_addr.
	var ha storage.HABackend
	var apiAddr string
	if cfg.Storage.Postgres != nil && cfg.Storage.Postgres.HAEnabled {
		hb, ok := backend.(storage.HABackend)
		if !ok {
			return fmt.Errorf("storage %q cannot elect an active server", cfg.Storage.Type)
		}
		ha = hb
		if apiAddr, err = haAPIAddr(cfg); err != nil {
			return err
		}
	}

	autoSeal, closeSeal, err := openSeal(f.configPath, cfg.Seal, os.Getenv)
	if err != nil {
		return err
	}
	defer func() {
		if err := closeSeal(); err != nil {
			logger.Error("close seal", "error", err)
		}
	}()

	met := metrics.New(metrics.Options{DisablePrometheus: cfg.Telemetry.DisablePrometheus})
	c, err := core.New(core.Config{
		Storage:         met.Storage(cfg.Storage.Type, backend),
		StorageType:     cfg.Storage.Type,
		Seal:            autoSeal,
		Factories:       Factories(),
		AuthFactories:   AuthFactories(),
		AuditFactories:  AuditFactories(),
		AuditDevices:    auditDevices(cfg.Audit),
		Logger:          logger,
		Clock:           clock.Real{},
		DefaultLeaseTTL: cfg.DefaultLeaseTTL,
		MaxLeaseTTL:     cfg.MaxLeaseTTL,
		ClusterName:     cfg.ClusterName,
		LoginRate:       float64(cfg.LoginRateLimit),
		LoginBurst:      int(cfg.LoginBurst),
		Metrics:         met,
		HA:              ha,
		APIAddr:         apiAddr,
	})
	if err != nil {
		return err
	}
	met.Watch(c)
	defer func() {
		if err := c.SealInternal(context.Background()); err != nil {
			logger.Error("seal on shutdown", "error", err)
		}
	}()

	if autoSeal != nil {
		stopUnseal, err := startAutoUnseal(ctx, c, logger, ha != nil)
		if err != nil {
			return err
		}
		defer stopUnseal()
	}

	lns, reloaders, err := listen(cfg.Listeners)
	if err != nil {
		return err
	}
	var fwdTLS *tls.Config
	if ha != nil {
		fwd, leader, err := forwardTLS(cfg.Listeners, reloaders, cfg.Storage.Postgres)
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
			return err
		}
		fwdTLS = fwd
		reloaders = append(reloaders, leader)
	}
	servers := make([]*http.Server, len(lns))
	var wg sync.WaitGroup
	serveErr := make(chan error, len(lns))
	for i, ln := range lns {
		l := cfg.Listeners[i]
		handler := httpapi.New(httpapi.Options{
			Core:               c,
			Logger:             logger,
			MaxRequestSize:     l.MaxRequestSize,
			MaxRequestDuration: l.MaxRequestDuration,
			TrustedProxies:     l.XForwardedForAuthorizedAddrs,
			Version:            core.Version,
			Metrics:            met,

			UnauthenticatedMetrics: l.UnauthenticatedMetricsAccess,
			ForwardTLS:             fwdTLS,
		})
		srv := &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       5 * time.Minute,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		}
		servers[i] = srv
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- err
			}
		}()
		logger.Info("listening", "address", ln.Addr().String(), "tls", !l.TLSDisable && l.TLSCertFile != "")
	}

	if f.dev {
		if err := startDev(ctx, c, f, stdout, lns[0].Addr().String(), devCerts); err != nil {
			shutdown(servers, logger)
			wg.Wait()
			return err
		}
	}

	for {
		select {
		case <-ctx.Done():
			logger.Info("shutting down")
			shutdown(servers, logger)
			wg.Wait()
			return nil
		case err := <-serveErr:
			shutdown(servers, logger)
			wg.Wait()
			return fmt.Errorf("serve: %w", err)
		case <-reload:
			reloadConfig(f, levelVar, reloaders, logger)
			if err := c.ReopenAudit(ctx); err != nil {
				logger.Error("reopen audit devices", "error", err)
			} else {
				logger.Info("audit devices reopened")
			}
		}
	}
}

// reloadConfig re-reads the log level and TLS certificates (SIGHUP).
func reloadConfig(f flags, levelVar *slog.LevelVar, reloaders []*certReloader, logger *slog.Logger) {
	logger.Info("reloading configuration")
	if !f.dev && f.logLevel == "" {
		cfg, err := config.Load(f.configPath)
		if err != nil {
			logger.Error("reload configuration", "error", err)
		} else if lvl, err := logging.ParseLevel(cfg.LogLevel); err != nil {
			logger.Error("reload log level", "error", err)
		} else {
			levelVar.Set(lvl)
		}
	}
	for _, r := range reloaders {
		if r == nil {
			continue
		}
		if err := r.reload(); err != nil {
			logger.Error("reload tls certificate", "error", err)
		} else {
			logger.Info("tls certificate reloaded", "cert_file", r.certFile)
		}
	}
}

func shutdown(servers []*http.Server, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(ctx); err != nil {
			logger.Warn("http shutdown", "error", err)
		}
	}
}

// PGConnectionURLEnv holds the PostgreSQL connection URL, so that its
// password need not be written in the configuration file; as in Vault, it
// overrides the storage block's connection_url. VAULT_PG_CONNECTION_URL
// is honoured as a fallback.
const PGConnectionURLEnv = "VIGIL_PG_CONNECTION_URL"

// storageOpenTimeout bounds connecting to a database storage and
// migrating its schema at startup.
const storageOpenTimeout = time.Minute

// openStorage opens the configuration's storage. Errors never hold the
// PostgreSQL connection URL. A postgresql backend opened with ha_enabled
// implements storage.HABackend (see postgres.Backend.HAEnabled).
func openStorage(ctx context.Context, s config.Storage, logger *slog.Logger, getenv func(string) string) (storage.Backend, error) {
	logger = logger.With("component", "storage")
	switch s.Type {
	case "inmem":
		return inmem.New(), nil
	case "bolt":
		b, err := bolt.Open(s.Bolt.Path, bolt.Options{Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("open bolt storage: %w", err)
		}
		return b, nil
	case "postgresql":
		pc := s.Postgres
		url := pc.ConnectionURL
		for _, env := range []string{PGConnectionURLEnv, "VAULT_PG_CONNECTION_URL"} {
			if v := getenv(env); v != "" {
				url = v
				break
			}
		}
		if url == "" {
			return nil, fmt.Errorf("storage %q (line %d): no connection_url, and %s is not set", s.Type, s.Line, PGConnectionURLEnv)
		}
		ctx, cancel := context.WithTimeout(ctx, storageOpenTimeout)
		defer cancel()
		b, err := postgres.Open(ctx, postgres.Options{
			ConnectionURL:      url,
			Table:              pc.Table,
			HAEnabled:          pc.HAEnabled,
			HATable:            pc.HATable,
			MaxParallel:        pc.MaxParallel,
			MaxIdleConnections: pc.MaxIdleConnections,
			Logger:             logger,
		})
		if err != nil {
			return nil, fmt.Errorf("open postgresql storage: %w", err)
		}
		logger.Info("opened postgresql storage", "ha_enabled", pc.HAEnabled)
		return b, nil
	}
	return nil, fmt.Errorf("unknown storage type %q", s.Type)
}

// listen opens every listener, enforcing plain HTTP only on loopback or
// with an explicit tls_disable.
func listen(ls []config.Listener) ([]net.Listener, []*certReloader, error) {
	var lns []net.Listener
	var reloaders []*certReloader
	fail := func(err error) ([]net.Listener, []*certReloader, error) {
		for _, ln := range lns {
			ln.Close()
		}
		return nil, nil, err
	}
	for _, l := range ls {
		useTLS := l.TLSCertFile != "" && !l.TLSDisable
		if !useTLS && !l.TLSDisable && !l.Loopback() {
			return fail(fmt.Errorf("listener %s: plain HTTP is only served on loopback addresses; configure tls_cert_file and tls_key_file, or set tls_disable = true", l.Address))
		}
		ln, err := net.Listen("tcp", l.Address)
		if err != nil {
			return fail(fmt.Errorf("listen on %s: %w", l.Address, err))
		}
		var r *certReloader
		if useTLS {
			r, err = newCertReloader(l.TLSCertFile, l.TLSKeyFile)
			if err != nil {
				ln.Close()
				return fail(err)
			}
			minVer, err := config.TLSVersion(l.TLSMinVersion)
			if err != nil {
				ln.Close()
				return fail(err)
			}
			tc := &tls.Config{
				MinVersion:     minVer,
				GetCertificate: r.getCertificate,
				NextProtos:     []string{"h2", "http/1.1"},
			}
			if l.TLSClientCAFile != "" {
				if tc.ClientCAs, err = loadCAs("tls_client_ca_file", l.TLSClientCAFile); err != nil {
					ln.Close()
					return fail(err)
				}
				tc.ClientAuth = tls.VerifyClientCertIfGiven
				if l.TLSRequireAndVerifyClientCert {
					tc.ClientAuth = tls.RequireAndVerifyClientCert
				}
			}
			ln = tls.NewListener(ln, tc)
		}
		lns = append(lns, ln)
		reloaders = append(reloaders, r)
	}
	return lns, reloaders, nil
}

// startDev initializes and unseals the in-memory dev server, mounts KV v2
// at secret/ and prints how to use it.
func startDev(ctx context.Context, c *core.Core, f flags, stdout io.Writer, addr string, certs *devTLS) error {
	res, err := c.Init(ctx, core.InitRequest{SecretShares: 1, SecretThreshold: 1, RootTokenID: f.devRootTokenID})
	if err != nil {
		return fmt.Errorf("dev init: %w", err)
	}
	key := hex.EncodeToString(res.Keys[0])
	if _, err := c.Unseal(ctx, key); err != nil {
		return fmt.Errorf("dev unseal: %w", err)
	}
	if err := c.EnableMount(ctx, "secret/", core.MountInput{Type: "kv", Options: map[string]string{"version": "2"}, Description: "key/value secret storage"}); err != nil {
		return fmt.Errorf("dev mount secret/: %w", err)
	}
	scheme := "http"
	if certs != nil {
		scheme = "https"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nWARNING! dev mode is enabled: the server is in memory, unsealed, and\n")
	fmt.Fprintf(&b, "holds a root token. Everything is lost when it stops. Never use it in production.\n\n")
	fmt.Fprintf(&b, "You may need to set the following environment variables:\n\n")
	fmt.Fprintf(&b, "    export VIGIL_ADDR='%s://%s'\n", scheme, addr)
	if certs != nil {
		fmt.Fprintf(&b, "    export VIGIL_CACERT='%s'\n", certs.caFile)
	}
	fmt.Fprintf(&b, "\nThe unseal key and root token are shown below in case you want to\nseal and unseal the server or log in as root.\n\n")
	fmt.Fprintf(&b, "Unseal Key: %s\n", key)
	fmt.Fprintf(&b, "Root Token: %s\n\n", res.RootToken.Reveal())
	if certs != nil {
		fmt.Fprintf(&b, "TLS: a throwaway CA signed this server's certificate. Trust it with\n")
		fmt.Fprintf(&b, "VIGIL_CACERT above, or: curl --cacert %s %s://%s/v1/sys/health\n\n", certs.caFile, scheme, addr)
	}
	_, err = io.WriteString(stdout, b.String())
	return err
}

// logInertKeys says which of Vault's keys in cfg Vigil accepts, so that
// Vault configurations load, but does nothing with.
func logInertKeys(logger *slog.Logger, cfg *config.Server) {
	if cfg.UI {
		logger.Info("ui = true is accepted but does nothing: Vigil serves no web UI")
	}
	if cfg.ClusterAddr != "" {
		logger.Info("cluster_addr is accepted but does nothing: standbys forward clients to the active server's api_addr", "cluster_addr", cfg.ClusterAddr)
	}
}
