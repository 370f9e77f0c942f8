package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/pipeline/clickhouse"
	"github.com/cdrguard/cdrguard/pipeline/console"
	"github.com/cdrguard/cdrguard/pipeline/hooks"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
)

// consoleConfig is the console section of the config file.
type consoleConfig struct {
	// Listen is the HTTP address (default 127.0.0.1:8080: loopback
	// unless configured).
	Listen string `yaml:"listen"`
	// UsersFile lists users, roles and bcrypt hashes.
	UsersFile string `yaml:"users_file"`
	// SessionKeyFile holds the cookie-signing key (at least 32 bytes),
	// the same for every console process; or $CDRGUARD_CONSOLE_SESSION_KEY.
	SessionKeyFile string        `yaml:"session_key_file"`
	SessionTTL     time.Duration `yaml:"session_ttl"`
	// TLSCertFile and TLSKeyFile turn TLS on (and Secure cookies).
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// SecureCookies marks cookies Secure behind a TLS-terminating proxy.
	SecureCookies bool `yaml:"secure_cookies"`
	// Insecure allows a non-loopback Listen without TLS (behind a
	// TLS-terminating proxy or mesh), as hooks.api.insecure does.
	Insecure   bool `yaml:"insecure"`
	ReleaseAPI struct {
		URL       string        `yaml:"url"`
		TokenFile string        `yaml:"token_file"`
		Timeout   time.Duration `yaml:"timeout"`
	} `yaml:"release_api"`
}

func runConsole(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "hash-password" {
		return hashPassword(os.Stdin, stdout)
	}
	fs := newFlagSet("console", "console [--config FILE] [--clickhouse DSN] [--listen ADDR] [--users FILE] | console hash-password < password", stderr)
	configPath := fs.String("config", os.Getenv("CDRGUARD_CONFIG"), "config file (YAML) with a console section [$CDRGUARD_CONFIG]")
	chDSN := fs.String("clickhouse", os.Getenv("CDRGUARD_CLICKHOUSE"), "ClickHouse DSN clickhouse://HOST:9000/DATABASE [$CDRGUARD_CLICKHOUSE]")
	listen := fs.String("listen", "", "HTTP address (default 127.0.0.1:8080)")
	users := fs.String("users", "", "users file (console.users_file)")
	releaseURL := fs.String("release-api", "", "release API base URL (console.release_api.url)")
	tokenFile := fs.String("release-token-file", "", "file holding the release API's bearer token (console.release_api.token_file)")
	insecure := fs.Bool("insecure", false, "allow a non-loopback --listen without TLS, behind a TLS-terminating proxy (console.insecure)")
	rulesPath := fs.String("rules", os.Getenv("CDRGUARD_RULES"), "rules file, for the thresholds beside alert metrics [$CDRGUARD_RULES]")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadRunConfig(*configPath)
	if err != nil {
		return err
	}
	cc := consoleConfig{}
	if cfg.Console != nil {
		cc = *cfg.Console
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.ClickHouse.DSN, *chDSN)
	set(&cfg.Detect.Rules, *rulesPath)
	set(&cc.Listen, *listen)
	set(&cc.UsersFile, *users)
	set(&cc.ReleaseAPI.URL, *releaseURL)
	set(&cc.ReleaseAPI.TokenFile, *tokenFile)
	if *insecure {
		cc.Insecure = true
	}
	if cc.Listen == "" {
		cc.Listen = "127.0.0.1:8080"
	}
	if cfg.ClickHouse.DSN == "" {
		return fmt.Errorf("%w: --clickhouse or clickhouse.dsn is needed", errUsage)
	}
	if err := cc.validate(); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	return serveConsole(ctx, cfg, cc, log)
}

// validate checks the console section; messages name the key and the
// bad value (never a secret).
func (cc *consoleConfig) validate() error {
	host, _, err := net.SplitHostPort(cc.Listen)
	if err != nil {
		return fmt.Errorf("console.listen %q is not host:port: %w", cc.Listen, err)
	}
	switch {
	case cc.UsersFile == "":
		return errors.New("--users or console.users_file is needed (make hashes with cdrguard console hash-password)")
	case (cc.TLSCertFile == "") != (cc.TLSKeyFile == ""):
		return errors.New("console.tls_cert_file and console.tls_key_file go together: set both or neither")
	case cc.SessionTTL < 0:
		return fmt.Errorf("console.session_ttl %v must be positive", cc.SessionTTL)
	case cc.ReleaseAPI.Timeout < 0:
		return fmt.Errorf("console.release_api.timeout %v must be positive", cc.ReleaseAPI.Timeout)
	case cc.ReleaseAPI.URL != "" && cc.ReleaseAPI.TokenFile == "":
		return errors.New("console.release_api.token_file is needed with console.release_api.url")
	}
	if cc.ReleaseAPI.URL != "" {
		if u, err := url.Parse(cc.ReleaseAPI.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("console.release_api.url %q must be an absolute http or https URL", cc.ReleaseAPI.URL)
		}
	}
	ip := net.ParseIP(host)
	loopback := host == "localhost" || (ip != nil && ip.IsLoopback())
	if !loopback && cc.TLSCertFile == "" && !cc.Insecure {
		return fmt.Errorf("console.listen %q is not loopback: set console.tls_cert_file and tls_key_file, or console.insecure: true (--insecure) behind a TLS-terminating proxy", cc.Listen)
	}
	return nil
}

// hashPassword reads one password line and prints its bcrypt hash.
func hashPassword(in io.Reader, out io.Writer) error {
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("cannot read the password: %w", err)
	}
	h, err := console.HashPassword(strings.TrimRight(line, "\r\n"))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, h)
	return err
}

// sessionKey reads the cookie-signing key, or makes a random one (valid
// for this process only).
func sessionKey(cc consoleConfig, log *zap.Logger) ([]byte, error) {
	key := []byte(os.Getenv("CDRGUARD_CONSOLE_SESSION_KEY"))
	if cc.SessionKeyFile != "" {
		b, err := os.ReadFile(cc.SessionKeyFile)
		if err != nil {
			return nil, fmt.Errorf("console.session_key_file: %w", err)
		}
		key = []byte(strings.TrimRight(string(b), "\r\n"))
	}
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
		log.Warn("no console.session_key_file: sessions are signed with a random key and valid on this process only")
	}
	if len(key) < 32 {
		return nil, fmt.Errorf("console session key is %d bytes, want at least 32", len(key))
	}
	return key, nil
}

// hooksTopics are the held and parked topics of the config's hooks
// section, with the dispatcher's defaults (<alerts_topic>.hooks-held and
// .hooks-parked).
func hooksTopics(cfg runConfig) (held, parked string) {
	held, parked = cfg.Hooks.HeldTopic, cfg.Hooks.ParkedTopic
	if held == "" {
		held = cfg.Kafka.AlertsTopic + ".hooks-held"
	}
	if parked == "" {
		parked = cfg.Kafka.AlertsTopic + ".hooks-parked"
	}
	return held, parked
}

func serveConsole(ctx context.Context, cfg runConfig, cc consoleConfig, log *zap.Logger) error {
	users, err := console.LoadUsers(cc.UsersFile)
	if err != nil {
		return err
	}
	key, err := sessionKey(cc, log)
	if err != nil {
		return err
	}
	set, err := loadRules(cfg)
	if err != nil {
		return err
	}
	opts, err := chOptions(cfg.ClickHouse)
	if err != nil {
		return err
	}
	client, err := clickhouse.Open(ctx, opts, log)
	if err != nil {
		return err
	}
	defer func() { _ = client.Close() }()
	store, err := console.NewStore(client.Conn(), client.Database())
	if err != nil {
		return err
	}
	var rel console.Releaser
	if cc.ReleaseAPI.URL != "" {
		tok, err := os.ReadFile(cc.ReleaseAPI.TokenFile)
		if err != nil {
			return fmt.Errorf("console.release_api.token_file: %w", err)
		}
		h, err := console.NewHTTPReleaser(cc.ReleaseAPI.URL, string(tok), cc.ReleaseAPI.Timeout)
		if err != nil {
			return err
		}
		rel = h
	} else {
		log.Warn("no console.release_api.url: release, false positive, approve, reject and redeliver are off")
	}
	var waiting console.Waiting
	if cfg.Hooks != nil {
		kc, err := kafkaio.NewClient(cfg.Kafka.Conn)
		if err != nil {
			return err
		}
		defer kc.Close()
		l := hooks.NewKafkaLog(kc)
		defer func() { _ = l.Close() }()
		held, parked := hooksTopics(cfg)
		waiting = console.TopicWaiting{Follower: l, HeldTopic: held, ParkedTopic: parked}
		log.Info("console: held and parked requests from kafka", zap.String("held_topic", held), zap.String("parked_topic", parked))
	} else {
		log.Info("no hooks section: the deliveries page reads held and parked requests from the hook_deliveries ledger")
	}
	tlsOn := cc.TLSCertFile != ""
	srv, err := console.New(console.Options{Store: store, Releaser: rel, Waiting: waiting, Users: users, SessionKey: key, SessionTTL: cc.SessionTTL,
		SecureCookies: tlsOn || cc.SecureCookies, Rules: set.Rules(), StoreCDRs: cfg.ClickHouse.StoreCDRs,
		ShortCallS: cfg.Detect.ShortCallS, Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cc.Listen)
	if err != nil {
		return fmt.Errorf("console: cannot listen on %s: %w", cc.Listen, err)
	}
	hs := &http.Server{Handler: instrumentConsole(srv, newMetricsRegistry()), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12},
		ErrorLog: zap.NewStdLog(log)}
	errc := make(chan error, 1)
	go func() {
		if tlsOn {
			errc <- hs.ServeTLS(ln, cc.TLSCertFile, cc.TLSKeyFile)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	scheme := "http"
	if tlsOn {
		scheme = "https"
	}
	log.Info("cdrguard console", zap.String("version", version), zap.String("url", scheme+"://"+ln.Addr().String()),
		zap.String("database", client.Database()), zap.Int("users", users.Len()), zap.Bool("release_api", rel != nil))
	select {
	case err := <-errc:
		return fmt.Errorf("console: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("console: shutdown: %w", err)
	}
	return nil
}
