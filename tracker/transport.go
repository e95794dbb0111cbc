package tracker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/patchctl/patchctl/store"
)

// transport sits under go-github. It makes every request conditional on the answer stored
// in the store's HTTP cache and replays stored answers on 304; it retries 5xx, network
// errors and short secondary rate limits; it bounds each attempt by a timeout.
//
// One listing (all pages of one endpoint) is a walk, carried in the request context. When
// page 1 answers 304 and the stored listing was fully re-checked within FullResync, the
// rest of the walk is replayed from the cache without any request. Cache entries of a walk
// are stored together once it completes, so the cache never mixes pages of two listings.
type transport struct {
	g     *GitHub
	stats *FetchStats
}

type walk struct {
	first     bool // the next request is page 1
	unchanged bool // page 1 is unchanged and recently re-checked: replay the rest
	keep      map[string]store.CacheEntry
}

type walkKey struct{}

func withWalk(ctx context.Context, w *walk) context.Context {
	return context.WithValue(ctx, walkKey{}, w)
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	w, _ := req.Context().Value(walkKey{}).(*walk)
	key := req.URL.String()
	var entry store.CacheEntry
	var cached bool
	if t.g.opts.Store != nil {
		err := t.g.opts.Store.View(req.Context(), func(tx *store.Tx) (err error) {
			entry, cached, err = tx.CacheEntry(key)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("read http cache: %w", err)
		}
	}
	page1 := w != nil && w.first
	if w != nil {
		w.first = false
		if w.unchanged && cached {
			t.stats.Replayed++
			return replay(req, entry, nil), nil
		}
	}
	if cached && entry.ETag != "" {
		req = req.Clone(req.Context())
		req.Header.Set("If-None-Match", entry.ETag)
	}
	resp, body, err := t.send(req)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusNotModified && cached:
		if page1 && t.g.opts.Now().Sub(entry.StoredAt) < t.g.opts.FullResync {
			w.unchanged = true
		}
		if w != nil {
			w.keep[key] = entry
		}
		return replay(req, entry, resp.Header), nil
	case resp.StatusCode == http.StatusOK && w != nil && json.Valid(body):
		w.keep[key] = store.CacheEntry{
			ETag:         resp.Header.Get("ETag"),
			LastModified: resp.Header.Get("Last-Modified"),
			Link:         resp.Header.Get("Link"),
			Body:         body,
		}
	}
	return resp, nil
}

// commit stores the entries of a completed walk. A walk replayed from the cache changed
// nothing and keeps the time of the last full walk.
func (t *transport) commit(ctx context.Context, w *walk) error {
	if t.g.opts.Store == nil || w.unchanged || len(w.keep) == 0 {
		return nil
	}
	now := t.g.opts.Now()
	return t.g.opts.Store.Update(ctx, func(tx *store.Tx) error {
		for k, e := range w.keep {
			e.StoredAt = now
			if err := tx.PutCacheEntry(k, e); err != nil {
				return err
			}
		}
		return nil
	})
}

// replay answers from a stored entry. X-From-Cache keeps go-github from taking the stale
// rate-limit headers of a replayed answer as current.
func replay(req *http.Request, e store.CacheEntry, fresh http.Header) *http.Response {
	h := http.Header{}
	for k, v := range fresh {
		h[k] = v
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-From-Cache", "1")
	h.Del("Content-Length")
	h.Del("Link")
	if e.Link != "" {
		h.Set("Link", e.Link)
	}
	return &http.Response{
		Status:        "200 OK",
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(e.Body)),
		ContentLength: int64(len(e.Body)),
		Request:       req,
	}
}

// send does one request with bounded retries. The body is read inside the attempt's
// timeout, so a server that stalls mid-body also times out.
func (t *transport) send(req *http.Request) (*http.Response, []byte, error) {
	o := t.g.opts
	endpoint := path.Base(req.URL.Path)
	backoff := o.Backoff
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(req.Context(), o.Timeout)
		resp, err := o.Transport.RoundTrip(req.Clone(ctx))
		var body []byte
		if err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		cancel()
		if perr := req.Context().Err(); perr != nil {
			return nil, nil, perr
		}
		t.stats.Requests++
		if err != nil {
			o.Metrics.request(endpoint, "error")
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				err = fmt.Errorf("no answer within %s", o.Timeout)
			}
			err = fmt.Errorf("GET %s: %w", req.URL.Path, err)
			if attempt >= o.Retries {
				return nil, nil, err
			}
			o.Logger.Debug("retry", "url", req.URL.Path, "err", err, "in", backoff)
			if err := sleep(req.Context(), backoff); err != nil {
				return nil, nil, err
			}
			backoff *= 2
			continue
		}
		o.Metrics.request(endpoint, strconv.Itoa(resp.StatusCode))
		if resp.StatusCode == http.StatusNotModified {
			t.stats.NotModified++
		}
		if n, err := strconv.Atoi(resp.Header.Get("X-RateLimit-Remaining")); err == nil {
			t.stats.RateRemaining = n
			o.Metrics.remaining(t.g.name, n)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		var wait time.Duration
		switch {
		case secondaryLimit(resp, body):
			if wait = retryAt(resp.Header, o.Now()).Sub(o.Now()); wait > o.MaxWait {
				return resp, body, nil // the caller records when to come back
			}
		case resp.StatusCode >= 500 && resp.StatusCode <= 599:
			wait, backoff = backoff, backoff*2
		default:
			return resp, body, nil
		}
		if attempt >= o.Retries {
			return resp, body, nil
		}
		o.Logger.Debug("retry", "url", req.URL.Path, "status", resp.StatusCode, "in", wait)
		if err := sleep(req.Context(), wait); err != nil {
			return nil, nil, err
		}
	}
}

// secondaryLimit reports a rate limit that asks to wait a little (429, or 403 with
// Retry-After or the secondary-limit message), as opposed to an exhausted primary quota.
func secondaryLimit(resp *http.Response, body []byte) bool {
	if resp.Header.Get("X-RateLimit-Remaining") == "0" {
		return false
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		return true
	case http.StatusForbidden:
		return resp.Header.Get("Retry-After") != "" || bytes.Contains(bytes.ToLower(body), []byte("secondary rate limit"))
	}
	return false
}

// retryAt is when a rate-limited client may ask again: Retry-After, else the reset time,
// else one minute (GitHub's advice when it says nothing).
func retryAt(h http.Header, now time.Time) time.Time {
	if s, err := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After"))); err == nil && s >= 0 {
		return now.Add(time.Duration(s) * time.Second)
	}
	if t, err := http.ParseTime(h.Get("Retry-After")); err == nil {
		return t
	}
	if s, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil && s > 0 {
		return time.Unix(s, 0)
	}
	return now.Add(time.Minute)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
