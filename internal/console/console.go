package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"

	"recommendation-api/internal/auth"
)

// dist is the built console (web/ → `make console`).
//
//go:embed dist
var dist embed.FS

// Prefix is the path the console is served under.
const Prefix = "/console/"

// CSP is the Content-Security-Policy of every console answer: the console's
// own script and style only (no inline script, no eval), REST calls to this
// origin only, images only from itself or data: URLs (the SVG charts are
// inline DOM, not images), no frames, no forms posted anywhere, no <base>.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Guard wraps next so that only callers holding role need (or higher)
// reach it; transport.Authenticator.RequireHTTP is one. what names the
// route in refusals.
type Guard func(need auth.Role, what string, next http.Handler) http.Handler

// Options configure Handler and Mount.
type Options struct {
	// Guard checks the bearer token of the console's JSON endpoints.
	// Required.
	Guard Guard
	// EvaluationDir holds `evaluate` reports (*.json) the Evaluation page
	// shows; "" or a missing directory means none.
	EvaluationDir string
	// Log receives errors reading reports; nil discards them.
	Log *slog.Logger
}

// Handler returns the console: the embedded files under Prefix and the
// JSON endpoints under Prefix+"api/" (see the package comment). A path that
// is neither is 404. Only GET and HEAD are allowed (405 with Allow
// otherwise).
func Handler(opts Options) http.Handler {
	if opts.Guard == nil {
		panic("console: Handler needs Options.Guard")
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	files, err := fs.Sub(dist, "dist")
	if err != nil {
		panic("console: embedded dist: " + err.Error()) // the embed pattern guarantees it
	}
	evals := &evaluations{dir: opts.EvaluationDir, log: log}
	mux := http.NewServeMux()
	mux.Handle("GET "+Prefix+"api/whoami", opts.Guard(auth.Viewer, Prefix+"api/whoami", http.HandlerFunc(whoami)))
	mux.Handle("GET "+Prefix+"api/evaluations", opts.Guard(auth.Viewer, Prefix+"api/evaluations", http.HandlerFunc(evals.list)))
	mux.Handle("GET "+Prefix+"api/evaluations/{file}", opts.Guard(auth.Viewer, Prefix+"api/evaluations/{file}", http.HandlerFunc(evals.get)))
	mux.Handle("GET "+Prefix+"api/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusNotFound, "no console endpoint "+r.URL.Path+"; the console's endpoints are whoami and evaluations[/{file}]")
	}))
	mux.Handle("GET "+Prefix, newStatic(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			writeJSONError(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed on "+r.URL.Path+"; allowed: GET, HEAD")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Mount returns a handler that serves the console under Prefix, redirects
// GET / to it, and passes every other request to rest.
func Mount(rest http.Handler, opts Options) http.Handler {
	c := Handler(opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			http.Redirect(w, r, Prefix, http.StatusFound)
		case r.URL.Path == strings.TrimSuffix(Prefix, "/") || strings.HasPrefix(r.URL.Path, Prefix):
			c.ServeHTTP(w, r)
		default:
			rest.ServeHTTP(w, r)
		}
	})
}

// contentTypes are the types of the files dist may hold; a file of another
// extension is not served.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".txt":  "text/plain; charset=utf-8",
}

// static serves the embedded files: index.html for the bare prefix, each
// with its content type and a strong ETag (the sha256 of its bytes), and
// Cache-Control no-cache so a new binary's files are fetched at once.
type static struct {
	files map[string]staticFile // path below Prefix → file
}

type staticFile struct {
	body        []byte
	contentType string
	etag        string
}

func newStatic(root fs.FS) *static {
	s := &static{files: map[string]staticFile{}}
	err := fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		s.files[p] = staticFile{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	if err != nil {
		panic("console: reading the embedded files: " + err.Error())
	}
	return s
}

func (s *static) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, Prefix)
	if name == "" {
		name = "index.html"
	}
	f, ok := s.files[name]
	if !ok {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("404: no console file " + path.Clean("/"+name) + "\n"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == f.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(f.body)
}

// Identity is the whoami answer.
type Identity struct {
	// Name is the token's name; "anonymous" when authentication is off.
	Name string `json:"name"`
	// Role is "operator", "agent" or "viewer".
	Role string `json:"role"`
	// Authenticated is false when the server runs without authentication.
	Authenticated bool `json:"authenticated"`
}

func whoami(w http.ResponseWriter, r *http.Request) {
	p, ok := auth.FromContext(r.Context())
	if !ok {
		p = auth.Anonymous
	}
	writeJSON(w, http.StatusOK, Identity{Name: p.Name, Role: p.Role.String(), Authenticated: p.Authenticated})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeJSONError writes an error in the gateway's JSON shape, with code 5
// (NOT_FOUND) or 12 (UNIMPLEMENTED) as the gateway would.
func writeJSONError(w http.ResponseWriter, httpStatus int, msg string) {
	code := 2 // UNKNOWN
	switch httpStatus {
	case http.StatusNotFound:
		code = 5
	case http.StatusMethodNotAllowed:
		code = 12
	case http.StatusBadRequest:
		code = 3
	case http.StatusInternalServerError:
		code = 13
	}
	writeJSON(w, httpStatus, struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Details []any  `json:"details"`
	}{code, msg, []any{}})
}
