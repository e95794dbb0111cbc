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
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/store"
)

const maxRequest = 1 << 20

func (a *App) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/call/{method}", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRequest))
		if err != nil {
			writeError(w, &Error{Kind: KindUsage, Msg: "read request: " + err.Error()})
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
	return mux
}

func writeError(w http.ResponseWriter, err error) {
	e := asError(err)
	w.Header().Set("Content-Type", "application/json")
	status := http.StatusInternalServerError
	switch e.Kind {
	case KindUsage:
		status = http.StatusBadRequest
	case KindUnavailable:
		status = http.StatusServiceUnavailable
	}
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

// Call runs a method in the daemon; result, if not nil, receives the decoded answer.
func (c *Client) Call(ctx context.Context, name string, args, result any) error {
	body, err := json.Marshal(args)
	if err != nil {
		return fmt.Errorf("encode arguments: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://patchctl/v1/call/"+name, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w on %s", ErrNoDaemon, c.socket)
		}
		return fmt.Errorf("daemon on %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("daemon on %s: %w", c.socket, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e Error
		if json.Unmarshal(raw, &e) != nil || e.Msg == "" {
			return fmt.Errorf("daemon on %s: %s: %s", c.socket, resp.Status, strings.TrimSpace(string(raw)))
		}
		return &e
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(raw, result); err != nil {
		return fmt.Errorf("decode %s answer: %w", name, err)
	}
	return nil
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
