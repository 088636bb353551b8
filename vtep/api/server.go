package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/torstitch/torstitch/vtep/l2"
)

// InternalError is the whole answer to an unexpected error or a panic of
// the backend; the details go to the agent's log only.
const InternalError = "internal error (details are in the agent's log)"

// errPanic marks a recovered panic of the backend.
var errPanic = errors.New("panic")

// MaxRequestBody is the largest request body the handler reads.
const MaxRequestBody = 1 << 20

// Routes of the API, version 1.
const (
	PathVersion  = "/v1/version"
	PathBindings = "/v1/bindings"
	PathMACs     = "/v1/macs"
	PathSwitches = "/v1/switches"
	PathPeers    = "/v1/peers"
	PathVCenter  = "/v1/vcenter"
)

// httpError is an error with the status code the handler answers with.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &httpError{code: http.StatusBadRequest, msg: fmt.Sprintf(format, a...)}
}

type route struct {
	query []string // allowed query parameters
	fn    func(r *http.Request) (any, error)
}

type handler struct {
	b        Backend
	log      *slog.Logger
	hasToken bool
	tokenSum [sha256.Size]byte
	routes   map[string]map[string]route // path -> method -> route
}

// NewHandler serves the operator API over b. When token is not empty every
// request must carry "Authorization: Bearer <token>". Errors are answered with
// an ErrorBody: 400 for ErrInvalid and malformed requests, 409 for
// ErrConflict, 401 for a missing or wrong token, 404 and 405 for unknown
// routes and methods, 500 otherwise. A nil log discards.
func NewHandler(b Backend, log *slog.Logger, token string) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{b: b, log: log}
	if token != "" {
		h.hasToken = true
		h.tokenSum = sha256.Sum256([]byte(token))
	}
	h.routes = map[string]map[string]route{
		PathVersion: {http.MethodGet: {fn: func(r *http.Request) (any, error) {
			return b.Version(r.Context())
		}}},
		PathBindings: {
			http.MethodGet: {fn: func(r *http.Request) (any, error) {
				bs, err := b.Bindings(r.Context())
				if bs == nil {
					bs = []Binding{}
				}
				return bs, err
			}},
			http.MethodPost:   {fn: h.bind},
			http.MethodDelete: {fn: h.unbind},
		},
		PathMACs: {http.MethodGet: {query: []string{"vni"}, fn: h.macs}},
		PathSwitches: {http.MethodGet: {fn: func(r *http.Request) (any, error) {
			s, err := b.Switches(r.Context())
			if s == nil {
				s = []Switch{}
			}
			return s, err
		}}},
		PathPeers: {http.MethodGet: {fn: func(r *http.Request) (any, error) {
			p, err := b.Peers(r.Context())
			if p == nil {
				p = []Peer{}
			}
			return p, err
		}}},
		PathVCenter: {http.MethodGet: {fn: func(r *http.Request) (any, error) {
			return b.VCenter(r.Context())
		}}},
	}
	h.addNetworkRoutes(b)
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code, err := h.serveRecover(w, r)
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", code, "duration", time.Since(start)}
	switch {
	case code >= 500:
		h.log.Error("api request failed", append(attrs, "err", err)...)
	case err != nil:
		h.log.Info("api request refused", append(attrs, "err", err)...)
	default:
		h.log.Debug("api request", attrs...)
	}
}

// serveRecover turns a panic of the backend into a 500 answer; serve writes
// nothing before the backend returns, so the answer is still unsent.
func (h *handler) serveRecover(w http.ResponseWriter, r *http.Request) (code int, err error) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.log.Error("api handler panic", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
			code, err = writeError(w, fmt.Errorf("%w: %v", errPanic, p))
		}
	}()
	return h.serve(w, r)
}

// serve answers r and returns the status code sent and the error, if any.
func (h *handler) serve(w http.ResponseWriter, r *http.Request) (int, error) {
	if h.hasToken && !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="toragent"`)
		return writeError(w, &httpError{code: http.StatusUnauthorized, msg: "unauthorized: missing or invalid bearer token"})
	}
	methods, ok := h.routes[r.URL.Path]
	if !ok {
		return writeError(w, &httpError{code: http.StatusNotFound, msg: fmt.Sprintf("no such endpoint %s", r.URL.Path)})
	}
	rt, ok := methods[r.Method]
	if !ok {
		allow := slices.Sorted(maps.Keys(methods))
		w.Header().Set("Allow", strings.Join(allow, ", "))
		return writeError(w, &httpError{code: http.StatusMethodNotAllowed,
			msg: fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", "))})
	}
	if err := checkQuery(r, rt.query); err != nil {
		return writeError(w, err)
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBody)
	v, err := rt.fn(r)
	if err != nil {
		return writeError(w, err)
	}
	if v == nil {
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent, nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		return http.StatusOK, fmt.Errorf("writing response: %w", err)
	}
	return http.StatusOK, nil
}

// authorized compares the bearer token in constant time. Both sides are
// hashed first so that not even the token's length leaks through timing.
func (h *handler) authorized(r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(sum[:], h.tokenSum[:]) == 1
}

func checkQuery(r *http.Request, allowed []string) error {
	q := r.URL.Query()
	for _, k := range slices.Sorted(maps.Keys(q)) {
		ok := false
		for _, a := range allowed {
			ok = ok || a == k
		}
		if !ok {
			return badRequest("unknown query parameter %q", k)
		}
		if len(q[k]) > 1 {
			return badRequest("query parameter %q given %d times", k, len(q[k]))
		}
	}
	return nil
}

func (h *handler) bind(r *http.Request) (any, error) {
	var req BindRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if err := req.VLAN.ValidateUsable(); err != nil {
		return nil, badRequest("%v", err)
	}
	if err := req.VNI.Validate(); err != nil {
		return nil, badRequest("%v", err)
	}
	if err := checkPorts(req.Ports); err != nil {
		return nil, err
	}
	return nil, h.b.Bind(r.Context(), req)
}

func (h *handler) unbind(r *http.Request) (any, error) {
	var req UnbindRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if err := req.VLAN.ValidateUsable(); err != nil {
		return nil, badRequest("%v", err)
	}
	if err := checkPorts(req.Ports); err != nil {
		return nil, err
	}
	return nil, h.b.Unbind(r.Context(), req)
}

func checkPorts(ports []string) error {
	if len(ports) == 0 {
		return badRequest("no ports given")
	}
	for _, p := range ports {
		if _, err := l2.ParsePortRef(p); err != nil {
			return badRequest("%v", err)
		}
	}
	return nil
}

func (h *handler) macs(r *http.Request) (any, error) {
	var vni l2.VNI
	if s := r.URL.Query().Get("vni"); s != "" {
		v, err := l2.ParseVNI(s)
		if err != nil {
			return nil, badRequest("%v", err)
		}
		vni = v
	}
	m, err := h.b.MACs(r.Context(), vni)
	if m.Local == nil {
		m.Local = []l2.LocalMAC{}
	}
	if m.Remote == nil {
		m.Remote = []l2.RemoteMAC{}
	}
	return m, err
}

// decodeBody decodes exactly one JSON object into v, refusing unknown fields,
// and trailing data. serve has limited r.Body to MaxRequestBody.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return decodeError(err)
		}
		return badRequest("request body: trailing data after the JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var (
		syn  *json.SyntaxError
		typ  *json.UnmarshalTypeError
		size *http.MaxBytesError
	)
	switch {
	case errors.As(err, &size):
		return &httpError{code: http.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("request body larger than %d bytes", size.Limit)}
	case errors.Is(err, io.EOF):
		return badRequest("request body: empty, want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("request body: truncated JSON")
	case errors.As(err, &syn):
		return badRequest("request body: malformed JSON at offset %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badRequest("request body: want a JSON object, got %s", typ.Value)
		}
		return badRequest("request body: field %q: %s is not %s", typ.Field, typ.Value, jsonWant(typ.Type))
	}
	// encoding/json reports unknown fields only by message.
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return badRequest("request body: unknown field %s", f)
	}
	msg, _ := strings.CutPrefix(err.Error(), "json: ")
	return badRequest("request body: %s", msg)
}

// jsonWant names what a field of type t takes, without Go type names.
func jsonWant(t reflect.Type) string {
	switch {
	case t == nil:
		return "valid here"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return fmt.Sprintf("a whole number (%d bits)", t.Bits())
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64:
		return fmt.Sprintf("a whole number from 0 to %d", uint64(1)<<t.Bits()-1)
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		return "a list"
	}
	return "an object"
}

func writeError(w http.ResponseWriter, err error) (int, error) {
	code := http.StatusInternalServerError
	var he *httpError
	switch {
	case errors.As(err, &he):
		code = he.code
	case errors.Is(err, ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code = http.StatusServiceUnavailable
	}
	msg := err.Error()
	if errors.Is(err, errPanic) {
		// A panic's text may hold internals (paths, addresses, a stack);
		// the caller logs it, the client learns only that it happened.
		msg = InternalError
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	b, _ := json.Marshal(ErrorBody{Error: msg})
	_, _ = w.Write(append(b, '\n'))
	return code, err
}
