package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/patchctl/patchctl/store"
)

// GitHubOptions configure a GitHub source.
type GitHubOptions struct {
	// APIURL is the API root: GitHub's (default), GitHub Enterprise's .../api/v3/, or a mirror.
	APIURL string
	// Token authenticates requests (optional; 304s are free only when authenticated).
	Token string
	// Timeout bounds each HTTP attempt, body included (default 30s).
	Timeout time.Duration
	// Tags also lists plain tags; those without a Release object become TagOnly releases.
	Tags bool
	// Advisories also lists the repository's security advisories.
	Advisories bool
	// FullResync is how often every page is re-checked even when page 1 is unchanged, to
	// catch edits deep in history (default 24h).
	FullResync time.Duration
	// Retries is how many times a 5xx, a network error or a short secondary rate limit is
	// retried within one fetch (default 3; negative: none).
	Retries int
	// Backoff is the first retry delay, doubled each time (default 500ms).
	Backoff time.Duration
	// MaxWait is the longest Retry-After honoured by waiting inside a fetch (default 10s);
	// longer ones fail the fetch with a *RateLimitError.
	MaxWait time.Duration
	// Store keeps the HTTP cache (ETags and bodies); nil disables conditional requests.
	Store *store.Store
	// Transport sends requests (default http.DefaultTransport).
	Transport http.RoundTripper
	Logger    *slog.Logger
	Metrics   *Metrics
	Now       func() time.Time
}

// GitHub lists the releases, tags and advisories of one repository over GitHub's REST API.
type GitHub struct {
	name, owner, repo string
	base              *url.URL
	opts              GitHubOptions
}

var _ Source = (*GitHub)(nil)

const perPage = 100

// NewGitHub returns a source for repo (owner/name).
func NewGitHub(repo string, opts GitHubOptions) (*GitHub, error) {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("source %q: want owner/name", repo)
	}
	if opts.APIURL == "" {
		opts.APIURL = "https://api.github.com/"
	}
	base, err := url.Parse(opts.APIURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("source %s: api url %q is not an http(s) URL", repo, opts.APIURL)
	}
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/" // go-github refuses a base URL without the trailing slash
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.FullResync <= 0 {
		opts.FullResync = 24 * time.Hour
	}
	if opts.Retries == 0 {
		opts.Retries = 3
	} else if opts.Retries < 0 {
		opts.Retries = 0
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 500 * time.Millisecond
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 10 * time.Second
	}
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &GitHub{name: repo, owner: owner, repo: name, base: base, opts: opts}, nil
}

// Name returns owner/repo.
func (g *GitHub) Name() string { return g.name }

// Fetch lists every page of releases, then tags and advisories if enabled. Any failure
// fails the whole fetch; a rate limit is a *RateLimitError.
func (g *GitHub) Fetch(ctx context.Context) (Snapshot, error) {
	stats := FetchStats{RateRemaining: -1}
	tr := &transport{g: g, stats: &stats}
	// A fresh client per fetch: go-github remembers a rate limit and refuses requests
	// locally until its reset, by the wall clock; the tracker keeps that state itself.
	client := github.NewClient(&http.Client{Transport: tr})
	if g.opts.Token != "" {
		client = client.WithAuthToken(g.opts.Token)
	}
	client.BaseURL = g.base
	client.UploadURL = g.base

	var (
		rels []*github.RepositoryRelease
		tags []*github.RepositoryTag
		advs []*github.SecurityAdvisory
	)
	err := g.walk(ctx, tr, "releases", func(ctx context.Context) error {
		opt := &github.ListOptions{PerPage: perPage}
		for {
			page, resp, err := client.Repositories.ListReleases(ctx, g.owner, g.repo, opt)
			if err != nil {
				return g.classify(err, resp)
			}
			rels = append(rels, page...)
			if resp.NextPage == 0 {
				return nil
			}
			opt.Page = resp.NextPage
		}
	})
	if err == nil && g.opts.Tags {
		err = g.walk(ctx, tr, "tags", func(ctx context.Context) error {
			opt := &github.ListOptions{PerPage: perPage}
			for {
				page, resp, err := client.Repositories.ListTags(ctx, g.owner, g.repo, opt)
				if err != nil {
					return g.classify(err, resp)
				}
				tags = append(tags, page...)
				if resp.NextPage == 0 {
					return nil
				}
				opt.Page = resp.NextPage
			}
		})
	}
	if err == nil && g.opts.Advisories {
		err = g.walk(ctx, tr, "security-advisories", func(ctx context.Context) error {
			opt := &github.ListRepositorySecurityAdvisoriesOptions{ListCursorOptions: github.ListCursorOptions{PerPage: perPage}}
			for {
				page, resp, err := client.SecurityAdvisories.ListRepositorySecurityAdvisories(ctx, g.owner, g.repo, opt)
				if err != nil {
					return g.classify(err, resp)
				}
				advs = append(advs, page...)
				if resp.After == "" {
					return nil
				}
				opt.After = resp.After
			}
		})
	}
	if err != nil {
		return Snapshot{Stats: stats}, err
	}
	snap := builder{source: g.name, log: g.opts.Logger}.snapshot(rels, tags, advs)
	snap.Stats = stats
	return snap, nil
}

// walk runs one paginated listing and stores its cache entries when it completes.
func (g *GitHub) walk(ctx context.Context, tr *transport, endpoint string, list func(context.Context) error) error {
	w := &walk{first: true, keep: map[string]store.CacheEntry{}}
	if err := list(withWalk(ctx, w)); err != nil {
		return fmt.Errorf("%s: %w", endpoint, err)
	}
	if err := tr.commit(ctx, w); err != nil {
		return fmt.Errorf("%s: store http cache: %w", endpoint, err)
	}
	return nil
}

// classify turns go-github's rate-limit answers (and the 429 that v60 does not know) into
// a *RateLimitError carrying when to ask again.
func (g *GitHub) classify(err error, resp *github.Response) error {
	var primary *github.RateLimitError
	if errors.As(err, &primary) {
		return &RateLimitError{Until: primary.Rate.Reset.Time, Err: err}
	}
	var abuse *github.AbuseRateLimitError
	var er *github.ErrorResponse
	limited := errors.As(err, &abuse)
	if errors.As(err, &er) && er.Response != nil {
		code := er.Response.StatusCode
		limited = code == http.StatusTooManyRequests ||
			(code == http.StatusForbidden && er.Response.Header.Get("Retry-After") != "")
	}
	if limited && resp != nil {
		return &RateLimitError{Until: retryAt(resp.Header, g.opts.Now()), Err: err}
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	if errors.As(err, &se) || errors.As(err, &te) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("malformed JSON answer: %w", err)
	}
	return err
}
