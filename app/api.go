package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/patchctl/patchctl/artifact"
	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/store"
)

// APIVersion is the socket API's version. It grows whenever a request gains a method or
// a field, so a daemon refuses a CLI newer than itself with a clear message instead of
// dropping what it does not know.
const APIVersion = 2

// apiHeader carries APIVersion both ways.
const apiHeader = "Patchctl-Api"

// maxRequest bounds a request body; a larger one is refused, never truncated.
const maxRequest = 1 << 20

func (a *App) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/call/{method}", func(w http.ResponseWriter, r *http.Request) {
		body, ok := readBody(w, r, maxRequest)
		if !ok {
			return
		}
		out, err := a.Call(r.Context(), r.PathValue("method"), body)
		if err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(out)
	})
	mux.HandleFunc("POST /v1/start/{method}", func(w http.ResponseWriter, r *http.Request) {
		body, ok := readBody(w, r, maxRequest)
		if !ok {
			return
		}
		o, err := a.Start(r.Context(), r.PathValue("method"), body)
		if err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(o.Info())
	})
	// The events of one operation as newline-delimited JSON, each flushed when it
	// happens, until the done event. ?after=N skips what the client has seen.
	mux.HandleFunc("GET /v1/ops/{id}/events", func(w http.ResponseWriter, r *http.Request) {
		o, ok := a.ops.Get(r.PathValue("id"))
		if !ok {
			writeError(w, unknownOp(r.PathValue("id")))
			return
		}
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		enc := json.NewEncoder(w)
		_ = o.Follow(r.Context(), after, func(e OpEvent) error {
			if err := enc.Encode(e); err != nil {
				return err
			}
			return rc.Flush()
		})
	})
	// A binary for `deploy --binary`: the CLI sends the file's content and its SHA-256;
	// the daemon keeps it only if the digest matches, and never runs it here.
	mux.HandleFunc("POST /v1/upload", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		body := http.MaxBytesReader(w, r.Body, artifact.DefaultMaxMemberSize)
		reply, err := a.Upload(r.Context(), body, q.Get("sha256"), q.Get("version"))
		if err != nil {
			if tooBig, ok := errors.AsType[*http.MaxBytesError](err); ok {
				writeErrorStatus(w, http.StatusRequestEntityTooLarge, &Error{Kind: KindUsage,
					Msg: fmt.Sprintf("upload refused: over the limit of %d bytes", tooBig.Limit)})
				return
			}
			writeError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(reply)
	})
	return versioned(a.config().Socket, mux)
}

// versioned stamps every answer with APIVersion and refuses a client newer than this
// daemon before it can misread the request.
func versioned(socket string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(apiHeader, strconv.Itoa(APIVersion))
		if v, err := strconv.Atoi(r.Header.Get(apiHeader)); err == nil && v > APIVersion {
			writeError(w, &Error{Kind: KindUsage, Msg: fmt.Sprintf(
				"this patchctl speaks API %d, the daemon on %s only API %d (patchctl %s): restart the daemon with the new patchctl", v, socket, APIVersion, Version)})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// readBody reads a request body of at most limit bytes; a larger one is refused whole.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			w.Header().Set("Connection", "close")
			writeErrorStatus(w, http.StatusRequestEntityTooLarge, &Error{Kind: KindUsage,
				Msg: fmt.Sprintf("request refused: its body is over the limit of %d bytes", limit)})
			return nil, false
		}
		writeError(w, &Error{Kind: KindUsage, Msg: "read request: " + err.Error()})
		return nil, false
	}
	return body, true
}

func writeError(w http.ResponseWriter, err error) {
	e := asError(err)
	status := http.StatusInternalServerError
	switch e.Kind {
	case KindUsage:
		status = http.StatusBadRequest
	case KindUnavailable:
		status = http.StatusServiceUnavailable
	case KindDenied:
		status = http.StatusForbidden
	}
	writeErrorStatus(w, status, e)
}

func writeErrorStatus(w http.ResponseWriter, status int, e *Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(e)
}

func asError(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, store.ErrLocked), errors.Is(err, store.ErrCorrupt), errors.Is(err, store.ErrTooNew):
		return &Error{Kind: KindUnavailable, Msg: err.Error()}
	}
	return &Error{Kind: KindFailed, Msg: err.Error()}
}

// Client calls a running daemon over its socket.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client for the daemon listening on socket.
func NewClient(socket string) *Client {
	d := &net.Dialer{Timeout: 2 * time.Second}
	return &Client{socket: socket, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}}}
}

// ErrNoDaemon means nothing listens on the socket.
var ErrNoDaemon = errors.New("no daemon is running")

// ErrDaemonTooOld means the daemon speaks an older API than this client.
var ErrDaemonTooOld = errors.New("the daemon is older than this patchctl")

// send makes one request to the daemon and returns the answer when its status is 2xx; any
// other answer becomes the daemon's *Error.
func (c *Client) send(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	return c.sendBody(ctx, method, path, rd)
}

// sendBody is send with a streamed body.
func (c *Client) sendBody(ctx context.Context, method, path string, rd io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://patchctl"+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set(apiHeader, strconv.Itoa(APIVersion))
	resp, err := c.http.Do(req)
	if err != nil {
		switch {
		case errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("%w on %s", ErrNoDaemon, c.socket)
		case errors.Is(err, syscall.EACCES) || errors.Is(err, os.ErrPermission):
			return nil, &Error{Kind: KindDenied, Msg: socketDenied(c.socket)}
		}
		return nil, fmt.Errorf("daemon on %s: %w", c.socket, err)
	}
	if v, _ := strconv.Atoi(resp.Header.Get(apiHeader)); v < APIVersion {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: the daemon on %s speaks API %d, this patchctl %s API %d: restart the daemon with this patchctl",
			ErrDaemonTooOld, c.socket, v, Version, APIVersion)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxRequest))
	var e Error
	if json.Unmarshal(raw, &e) != nil || e.Msg == "" {
		return nil, fmt.Errorf("daemon on %s: %s: %s", c.socket, resp.Status, strings.TrimSpace(string(raw)))
	}
	return nil, &e
}

// socketDenied says why the socket cannot be opened and what to do about it.
func socketDenied(socket string) string {
	msg := "permission denied on the daemon's socket " + socket
	fi, err := os.Stat(socket)
	if err != nil {
		return msg + ": ask for access to it (socket_group in the daemon's patchctl.yml)"
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return msg
	}
	if fi.Mode().Perm()&0o060 == 0 {
		return fmt.Sprintf("%s (mode %v): only its owner, uid %d, may use it; set socket_group in the daemon's patchctl.yml and join that group, or run as that user", msg, fi.Mode().Perm(), st.Uid)
	}
	group := strconv.Itoa(int(st.Gid))
	if g, err := user.LookupGroupId(group); err == nil {
		group = g.Name
	}
	return fmt.Sprintf("%s (mode %v, group %s): join the group %s (socket_group in the daemon's patchctl.yml), then log in again", msg, fi.Mode().Perm(), group, group)
}

// Call runs a method in the daemon; result, if not nil, receives the decoded answer.
func (c *Client) Call(ctx context.Context, name string, args, result any) error {
	body, err := json.Marshal(args)
	if err != nil {
		return fmt.Errorf("encode arguments: %w", err)
	}
	resp, err := c.send(ctx, http.MethodPost, "/v1/call/"+name, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("daemon on %s: %w", c.socket, err)
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(raw, result); err != nil {
		return fmt.Errorf("decode %s answer: %w", name, err)
	}
	return nil
}

// Start asks the daemon to run a method as an operation and returns once it is accepted.
func (c *Client) Start(ctx context.Context, name string, args any) (OpInfo, error) {
	var info OpInfo
	body, err := json.Marshal(args)
	if err != nil {
		return info, fmt.Errorf("encode arguments: %w", err)
	}
	resp, err := c.send(ctx, http.MethodPost, "/v1/start/"+name, body)
	if err != nil {
		return info, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return info, fmt.Errorf("decode %s acceptance: %w", name, err)
	}
	return info, nil
}

// Follow streams an operation's events after seq to fn as they happen, and returns the
// done event.
func (c *Client) Follow(ctx context.Context, id string, after int, fn func(OpEvent)) (OpEvent, error) {
	resp, err := c.send(ctx, http.MethodGet, "/v1/ops/"+url.PathEscape(id)+"/events?after="+strconv.Itoa(after), nil)
	if err != nil {
		return OpEvent{}, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var e OpEvent
		if err := dec.Decode(&e); err != nil {
			if ctx.Err() != nil {
				return OpEvent{}, ctx.Err()
			}
			return OpEvent{}, fmt.Errorf("lost the daemon on %s while following %s (%v): the operation does not depend on this CLI; if the daemon is stopping, it finishes or undoes it when it is back (see `patchctl history`)", c.socket, id, err)
		}
		if fn != nil {
			fn(e)
		}
		if e.Type == EventDone {
			return e, nil
		}
	}
}

// Do runs a method where the state lives: in the daemon when one answers on the socket,
// otherwise in a short-lived App of this process. Both paths return the same JSON.
func Do(ctx context.Context, cfg *config.Config, opts Options, name string, args, result any) error {
	err := NewClient(cfg.Socket).Call(ctx, name, args, result)
	if !errors.Is(err, ErrNoDaemon) {
		return err
	}
	a, err := Open(ctx, cfg, opts)
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("%w, and no daemon answers on %s", err, cfg.Socket)
		}
		return err
	}
	defer a.Close()
	raw, err := json.Marshal(args)
	if err != nil {
		return fmt.Errorf("encode arguments: %w", err)
	}
	out, err := a.Call(ctx, name, raw)
	if err != nil {
		return err
	}
	if result == nil {
		return nil
	}
	return json.Unmarshal(out, result)
}

// StartOp runs a method as an operation where the state lives: in the daemon when one
// answers (the operation then runs to its end whatever happens to this process), otherwise
// in a short-lived App of this process. It calls fn with each event as it happens and
// returns the done event; with detach it returns the accepted event at once (daemon only).
func StartOp(ctx context.Context, cfg *config.Config, opts Options, name string, args any, detach bool, fn func(OpEvent)) (OpEvent, error) {
	c := NewClient(cfg.Socket)
	info, err := c.Start(ctx, name, args)
	switch {
	case err == nil && detach:
		return OpEvent{Seq: 1, Time: info.Started, Op: info.ID, Type: EventAccepted, By: info.By,
			Message: info.Kind + " " + strings.Join(info.Hosts, ", ")}, nil
	case err == nil:
		return c.Follow(ctx, info.ID, 0, fn)
	case !errors.Is(err, ErrNoDaemon):
		return OpEvent{}, err
	case detach:
		return OpEvent{}, &Error{Kind: KindUsage, Msg: fmt.Sprintf("--detach needs a running daemon (%v)", err)}
	}
	a, err := Open(ctx, cfg, opts)
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return OpEvent{}, fmt.Errorf("%w, and no daemon answers on %s", err, cfg.Socket)
		}
		return OpEvent{}, err
	}
	defer a.Close()
	raw, err := json.Marshal(args)
	if err != nil {
		return OpEvent{}, fmt.Errorf("encode arguments: %w", err)
	}
	o, err := a.Start(ctx, name, raw)
	if err != nil {
		return OpEvent{}, err
	}
	var last OpEvent
	follow := func(ctx context.Context) error {
		return o.Follow(ctx, last.Seq, func(e OpEvent) error {
			last = e
			if fn != nil {
				fn(e)
			}
			return nil
		})
	}
	if err := follow(ctx); err != nil {
		// This process owns the operation: an interrupt is a deliberate abort, and the
		// operation still ends properly (a deploy rolls back) before the process does.
		_, _ = a.ops.Abort(o.ID(), "an interrupt of the CLI that ran it")
		if err := follow(context.WithoutCancel(ctx)); err != nil {
			return last, err
		}
	}
	return last, nil
}

// AttachOp follows an operation of the daemon from its first event.
func AttachOp(ctx context.Context, cfg *config.Config, id string, fn func(OpEvent)) (OpEvent, error) {
	e, err := NewClient(cfg.Socket).Follow(ctx, id, 0, fn)
	if errors.Is(err, ErrNoDaemon) {
		return e, fmt.Errorf("%w: operations live in the daemon, and a finished one is kept until it restarts", err)
	}
	return e, err
}
