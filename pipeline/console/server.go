package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/detectors"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Cookie names.
const (
	sessionCookie = "cdrguard_session"
	loginCookie   = "cdrguard_login"
)

// Options configure a Server.
type Options struct {
	// Store reads and appends the ClickHouse tables. Required.
	Store *Store
	// Releaser is the release API; nil turns release, false positive,
	// approve, reject and redeliver off (they answer with an error).
	Releaser Releaser
	// Waiting lists the held and parked requests from the dispatcher's
	// topics; nil: the deliveries page reads them from the
	// hook_deliveries ledger.
	Waiting Waiting
	// Users may log in. Required.
	Users *Users
	// SessionKey signs session cookies and CSRF tokens: at least 32
	// bytes, the same for every console process behind a load balancer.
	SessionKey []byte
	// SessionTTL is how long a login lasts (default 12 h).
	SessionTTL time.Duration
	// SecureCookies marks cookies Secure (set it when serving TLS, or
	// behind a TLS-terminating proxy).
	SecureCookies bool
	// Rules are the detection rules, for the thresholds beside an
	// alert's metrics.
	Rules []detectors.Rule
	// StoreCDRs says the cdrs table is filled (clickhouse.store_cdrs).
	StoreCDRs bool
	// ShortCallS is the talk time under which an answered call counts as
	// short (detect.short_call_s, default 10), for a source's chart.
	ShortCallS int
	// LoginEvery and LoginBurst limit login attempts per user name and per
	// client address: LoginBurst at once, then one per LoginEvery
	// (defaults 5 and 12 s).
	LoginEvery time.Duration
	LoginBurst int
	// Logger logs requests (never cookies, tokens or passwords). Default
	// none.
	Logger *zap.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// QueryTimeout bounds each page's ClickHouse queries (default 20 s).
	QueryTimeout time.Duration
}

// Server is the console's HTTP handler. It is safe for concurrent use.
type Server struct {
	opts    Options
	sign    signer
	limit   *loginLimiter
	log     *zap.Logger
	pages   map[string]*template.Template
	handler http.Handler
}

// New checks opts and builds the Server.
func New(opts Options) (*Server, error) {
	switch {
	case opts.Store == nil:
		return nil, errors.New("console: no store")
	case opts.Users == nil || opts.Users.Len() == 0:
		return nil, errors.New("console: no users")
	case len(opts.SessionKey) < 32:
		return nil, fmt.Errorf("console: session key is %d bytes, want at least 32", len(opts.SessionKey))
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.LoginEvery <= 0 {
		opts.LoginEvery = 12 * time.Second
	}
	if opts.LoginBurst <= 0 {
		opts.LoginBurst = 5
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ShortCallS <= 0 {
		opts.ShortCallS = 10
	}
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = 20 * time.Second
	}
	s := &Server{opts: opts, sign: signer{key: opts.SessionKey}, limit: newLoginLimiter(opts.LoginEvery, opts.LoginBurst),
		log: opts.Logger, pages: map[string]*template.Template{}}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", n, err)
		}
		s.pages[base] = t
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("console: static files: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheFor(http.FileServerFS(static))))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.Handle("POST /logout", s.action(RoleViewer, s.logout))
	mux.Handle("GET /{$}", s.page(RoleViewer, s.queue))
	mux.Handle("POST /ack", s.action(RoleAnalyst, s.bulkAck))
	mux.Handle("GET /subject", s.page(RoleViewer, s.subject))
	mux.Handle("POST /decide", s.action(RoleAnalyst, s.decide))
	mux.Handle("GET /deliveries", s.page(RoleViewer, s.deliveries))
	mux.Handle("POST /deliveries/held/{id}/{verb}", s.action(RoleSupervisor, s.heldAction))
	mux.Handle("POST /deliveries/parked/{id}/redeliver", s.action(RoleSupervisor, s.redeliver))
	mux.Handle("GET /quality", s.page(RoleViewer, s.quality))
	s.handler = http.NewCrossOriginProtection().Handler(s.logRequests(securityHeaders(mux)))
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func cacheFor(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

// securityHeaders forbids framing and any script or style from elsewhere.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }

type userKey struct{}

// logRequests logs method, path, status, user and duration: never the
// query's form values, cookies or headers.
func (s *Server) logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.opts.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		var user string
		r = r.WithContext(context.WithValue(r.Context(), userKey{}, &user))
		h.ServeHTTP(sw, r)
		if r.URL.Path == "/healthz" || strings.HasPrefix(r.URL.Path, "/static/") {
			return
		}
		s.log.Info("http", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Int("status", sw.status),
			zap.String("user", user), zap.Duration("took", s.opts.Now().Sub(start)))
	})
}

// current returns the request's valid session.
func (s *Server) current(r *http.Request) (session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, false
	}
	ss, ok := s.sign.decode(c.Value, s.opts.Now())
	if !ok {
		return session{}, false
	}
	if p, ok := r.Context().Value(userKey{}).(*string); ok {
		*p = ss.User
	}
	return ss, true
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, ss session)

// page serves a GET for users of at least role; others are sent to the
// login page.
func (s *Server) page(role Role, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ss, ok := s.current(r)
		if !ok {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if ss.Role < role {
			s.fail(w, r, ss, http.StatusForbidden, "Your role ("+ss.Role.String()+") cannot open this page.")
			return
		}
		h(w, r, ss)
	})
}

// action serves a form POST: it needs a session of at least role and the
// session's CSRF token in the form's csrf field.
func (s *Server) action(role Role, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		ss, ok := s.current(r)
		if !ok {
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		if !s.sign.checkCSRF("session", ss.Nonce, r.PostForm.Get("csrf")) {
			http.Error(w, "missing or wrong CSRF token: reload the page and try again", http.StatusForbidden)
			return
		}
		if ss.Role < role {
			s.fail(w, r, ss, http.StatusForbidden, "Your role ("+ss.Role.String()+") cannot do this; it needs "+role.String()+".")
			return
		}
		h(w, r, ss)
	})
}

// pageData is what every page's template gets.
type pageData struct {
	Title string
	Nav   string
	User  string
	Role  string
	CSRF  string
	Flash string
	Error string
	// CanDecide and CanSupervise say which forms to show.
	CanDecide    bool
	CanSupervise bool
	Data         any
}

func (s *Server) base(r *http.Request, ss session, title, nav string) pageData {
	return pageData{Title: title, Nav: nav, User: ss.User, Role: ss.Role.String(), CSRF: s.sign.csrf("session", ss.Nonce),
		Flash: r.URL.Query().Get("msg"), Error: r.URL.Query().Get("err"),
		CanDecide: ss.Role >= RoleAnalyst, CanSupervise: ss.Role >= RoleSupervisor}
}

// render executes a page template into a buffer first, so a template
// error gives a clean 500.
func (s *Server) render(w http.ResponseWriter, status int, name string, d pageData) {
	t := s.pages[name]
	var buf bytes.Buffer
	if t == nil {
		http.Error(w, "no page "+name, http.StatusInternalServerError)
		return
	}
	if err := t.Execute(&buf, d); err != nil {
		s.log.Error("template", zap.String("page", name), zap.Error(err))
		http.Error(w, "cannot render the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// fail renders an error page.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, ss session, status int, msg string) {
	d := s.base(r, ss, http.StatusText(status), "")
	d.Error = msg
	s.render(w, status, "error", d)
}

// failErr logs err and renders it.
func (s *Server) failErr(w http.ResponseWriter, r *http.Request, ss session, err error) {
	s.log.Warn("console request failed", zap.String("path", r.URL.Path), zap.String("user", ss.User), zap.Error(err))
	s.fail(w, r, ss, http.StatusInternalServerError, err.Error())
}

// ctx is a request's context bounded by the query timeout.
func (s *Server) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.opts.QueryTimeout)
}

// redirect sends the browser back with a message (?msg=) or an error
// (?err=).
func redirect(w http.ResponseWriter, r *http.Request, to, key, msg string) {
	u, err := url.Parse(to)
	if err != nil || !localPath(to) {
		u = &url.URL{Path: "/"}
	}
	q := u.Query()
	q.Del("msg")
	q.Del("err")
	q.Set(key, msg)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// localPath reports whether p is a path on this site (not //host or a
// scheme).
func localPath(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//") && !strings.HasPrefix(p, "/\\")
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.renderLogin(w, r, http.StatusOK, "")
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	nonce := randomToken()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: nonce, Path: "/login", HttpOnly: true, Secure: s.opts.SecureCookies,
		SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	next := r.FormValue("next")
	if !localPath(next) {
		next = "/"
	}
	s.render(w, status, "login", pageData{Title: "Log in", CSRF: s.sign.csrf("login", nonce), Error: msg, Data: next})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !s.sign.checkCSRF("login", c.Value, r.PostForm.Get("csrf")) {
		s.renderLogin(w, r, http.StatusForbidden, "The form expired: please log in again.")
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("username"))
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if !s.limit.allow(s.opts.Now(), "user:"+name, "addr:"+host) {
		s.log.Warn("login rate-limited", zap.String("user", name), zap.String("addr", host))
		w.Header().Set("Retry-After", fmt.Sprint(int(s.opts.LoginEvery.Seconds())+1))
		s.renderLogin(w, r, http.StatusTooManyRequests, "Too many login attempts: wait a minute and try again.")
		return
	}
	u, ok := s.opts.Users.Authenticate(name, r.PostForm.Get("password"))
	if !ok {
		s.log.Info("login failed", zap.String("user", name), zap.String("addr", host))
		s.renderLogin(w, r, http.StatusUnauthorized, "Wrong user name or password.")
		return
	}
	ss := session{User: u.Name, Role: u.Role, Expires: s.opts.Now().Add(s.opts.SessionTTL).Unix(), Nonce: randomToken()}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.sign.encode(ss), Path: "/", HttpOnly: true, Secure: s.opts.SecureCookies,
		SameSite: http.SameSiteStrictMode, MaxAge: int(s.opts.SessionTTL.Seconds())})
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/login", MaxAge: -1})
	s.log.Info("login", zap.String("user", u.Name), zap.String("role", u.Role.String()), zap.String("addr", host))
	next := r.PostForm.Get("next")
	if !localPath(next) {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, ss session) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.opts.SecureCookies,
		SameSite: http.SameSiteStrictMode})
	s.log.Info("logout", zap.String("user", ss.User))
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
