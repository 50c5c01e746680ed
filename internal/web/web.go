package web

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/latlab/latlab/internal/store"
)

// AlertView is one alert as the dashboard shows it.
type AlertView struct {
	// Name is the rule's name; Job the scheduled job it watches ("" none).
	Name string
	Job  string
	// ConfigKey and Metric ("rate", "p50", "p99", ...) say what it is about.
	ConfigKey string
	Metric    string
	// State is AlertFiring, AlertPending or AlertResolved (other values
	// are shown as they are).
	State string
	// Since is when the alert entered its state.
	Since time.Time
	// RunID is the run that set the state (0: none).
	RunID   int64
	Message string
}

// Alert states.
const (
	AlertFiring   = "firing"
	AlertPending  = "pending"
	AlertResolved = "resolved"
)

// Alerts lists the current alerts (the watch half's alert table).
type Alerts interface {
	Alerts(ctx context.Context) ([]AlertView, error)
}

// AlertsFunc adapts a function to Alerts.
type AlertsFunc func(ctx context.Context) ([]AlertView, error)

// Alerts calls f.
func (f AlertsFunc) Alerts(ctx context.Context) ([]AlertView, error) { return f(ctx) }

// Scheduler reports the watch scheduler's health.
type Scheduler interface {
	Health() SchedulerHealth
}

// SchedulerHealth is the scheduler's state.
type SchedulerHealth struct {
	Running bool
	Jobs    []JobHealth
}

// JobHealth is one scheduled job's state. Zero times mean "never".
type JobHealth struct {
	Name        string
	LastRun     time.Time // start of the last run
	LastSuccess time.Time // end of the last successful run
	LastError   string    // why the last run failed; "" if it did not
	NextRun     time.Time
	Runs        int64 // runs since the scheduler started
	Failures    int64 // failed runs since the scheduler started
}

// Options configure a Server.
type Options struct {
	// Store is the results database (required).
	Store *store.Store
	// Alerts, Scheduler and ChangePoints come from the watch half; nil
	// means "not available" and the pages say so.
	Alerts    Alerts
	Scheduler Scheduler
	// ChangePoints returns the indices at which a new segment of series
	// (oldest first) starts: i means the change happened between
	// series[i-1] and series[i] (0 < i < len(series)).
	ChangePoints func(series []float64) []int
	// Token, when set, must come as "Authorization: Bearer TOKEN" (or a
	// cookie set by visiting any page with ?token=TOKEN once); requests
	// without it get 401.
	Token string
	// LoopbackOnly refuses requests whose Host header is not a loopback
	// name or address (DNS rebinding); set it when listening on loopback.
	LoopbackOnly bool
	// PageSize is the number of runs per page of the runs list (default
	// 50, at most MaxPageSize; ?limit= overrides it within the same
	// bound); HistoryRuns the number of runs a history chart shows
	// (default 60, at most MaxHistoryRuns).
	PageSize    int
	HistoryRuns int
	// Log receives request errors (nil: discarded).
	Log *log.Logger
}

// MaxHistoryRuns bounds Options.HistoryRuns.
const MaxHistoryRuns = 1000

//go:embed templates/*.html static/style.css
var assets embed.FS

// Server serves the dashboard. It is an http.Handler, safe for
// concurrent use.
type Server struct {
	opts  Options
	mux   *http.ServeMux
	pages map[string]*template.Template
	css   template.CSS
	cache *viewCache
}

// New builds a Server.
func New(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("web: no store")
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 50
	}
	opts.PageSize = min(opts.PageSize, MaxPageSize)
	if opts.HistoryRuns <= 0 {
		opts.HistoryRuns = 60
	}
	opts.HistoryRuns = min(opts.HistoryRuns, MaxHistoryRuns)
	if opts.Log == nil {
		opts.Log = log.New(io.Discard, "", 0)
	}
	pages, css, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, mux: http.NewServeMux(), pages: pages, css: css, cache: newViewCache(256)}
	s.mux.HandleFunc("GET /{$}", s.handleRuns)
	s.mux.HandleFunc("GET /runs/{id}", s.handleRun)
	s.mux.HandleFunc("GET /history", s.handleHistory)
	s.mux.HandleFunc("GET /alerts", s.handleAlerts)
	s.mux.HandleFunc("GET /diff", s.handleDiff)
	s.mux.HandleFunc("GET /metrics", s.handleMetrics)
	s.mux.HandleFunc("GET /static/style.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		io.WriteString(w, string(s.css))
	})
	return s, nil
}

func parseTemplates() (map[string]*template.Template, template.CSS, error) {
	css, err := assets.ReadFile("static/style.css")
	if err != nil {
		return nil, "", err
	}
	funcs := template.FuncMap{
		"fmtTime": func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return t.UTC().Format("2006-01-02 15:04:05Z")
		},
		"pct":         func(f float64) float64 { return f * 100 },
		"queryEscape": func(s string) string { return strings.ReplaceAll(template.URLQueryEscaper(s), "+", "%20") },
	}
	pages := map[string]*template.Template{}
	for _, name := range []string{"runs", "run", "history", "alerts", "diff", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, "", fmt.Errorf("web: template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, template.CSS(css), nil
}

// page is what the layout template gets.
type page struct {
	Title string
	// Static is set for a saved report: no navigation, no server links.
	Static bool
	CSS    template.CSS
	Nav    string
	Data   any
}

// ServeHTTP applies the read-only, host and token checks, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "read-only: only GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	if s.opts.LoopbackOnly && !loopbackHost(r.Host) {
		http.Error(w, "forbidden host (the dashboard listens on loopback; use --listen to expose it)", http.StatusForbidden)
		return
	}
	if s.opts.Token != "" && !s.authorized(w, r) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

const tokenCookie = "latlab_ui_token"

// authorized checks the bearer token (header or cookie). A ?token= query
// with the right token sets the cookie and redirects to the same URL
// without it, so a browser can be let in once.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	ok := func(got string) bool {
		return subtle.ConstantTimeCompare([]byte(got), []byte(s.opts.Token)) == 1
	}
	if a := r.Header.Get("Authorization"); a != "" {
		if scheme, tok, found := strings.Cut(a, " "); found && strings.EqualFold(scheme, "Bearer") && ok(strings.TrimSpace(tok)) {
			return true
		}
	}
	if c, err := r.Cookie(tokenCookie); err == nil && ok(c.Value) {
		return true
	}
	if q := r.URL.Query(); q.Has("token") && ok(q.Get("token")) {
		http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: s.opts.Token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		q.Del("token")
		u := *r.URL
		u.RawQuery = q.Encode()
		http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
		return false
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="latlab"`)
	http.Error(w, "unauthorized: send Authorization: Bearer TOKEN (latlab ui --token / LATLAB_UI_TOKEN)", http.StatusUnauthorized)
	return false
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// render writes a page; errors after the header cannot be reported.
func (s *Server) render(w http.ResponseWriter, status int, name, nav, title string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	var b strings.Builder
	if err := s.pages[name].Execute(&b, page{Title: title, CSS: s.css, Nav: nav, Data: data}); err != nil {
		s.opts.Log.Printf("render %s: %v", name, err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	io.WriteString(w, b.String())
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	if status >= 500 {
		s.opts.Log.Printf("%s %s: %v", r.Method, r.URL, err)
	}
	s.render(w, status, "error", "", http.StatusText(status), struct {
		Status int
		Msg    string
	}{status, err.Error()})
}

func (s *Server) storeErr(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, err)
		return
	}
	s.fail(w, r, http.StatusInternalServerError, err)
}

func parseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("bad run id %q", s)
	}
	return id, nil
}

// viewCache keeps the rendered views of finished runs: a complete or
// incomplete run never changes, and summarising one (the p99 bootstrap)
// costs tens of milliseconds.
type viewCache struct {
	mu  sync.Mutex
	max int
	m   map[int64]*runView
}

func newViewCache(max int) *viewCache { return &viewCache{max: max, m: map[int64]*runView{}} }

func (c *viewCache) get(id int64) *runView {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}

func (c *viewCache) put(v *runView) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k := range c.m { // evict an arbitrary entry
			delete(c.m, k)
			break
		}
	}
	c.m[v.Run.ID] = v
}
