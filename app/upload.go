package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/patchctl/patchctl/config"
)

// UploadReply is what the daemon kept of an upload.
type UploadReply struct {
	SHA256  string `json:"sha256"`
	Version string `json:"version"`
}

// Upload stores the content of a binary a client sent, if its SHA-256 is sum. It
// changes the artifact cache, so only callers allowed to deploy may.
func (a *App) Upload(ctx context.Context, r io.Reader, sum, version string) (UploadReply, error) {
	if err := a.checkAccess("upload", callerOf(ctx)); err != nil {
		return UploadReply{}, err
	}
	art, err := a.upload(ctx, r, sum, version)
	if err != nil {
		return UploadReply{}, err
	}
	return UploadReply{SHA256: art.SHA256, Version: art.Version}, nil
}

// Upload sends a binary's content to the daemon with its SHA-256.
func (c *Client) Upload(ctx context.Context, r io.Reader, sum, version string) (UploadReply, error) {
	var reply UploadReply
	q := url.Values{"sha256": {sum}, "version": {version}}
	resp, err := c.sendBody(ctx, http.MethodPost, "/v1/upload?"+q.Encode(), r)
	if err != nil {
		return reply, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		return reply, fmt.Errorf("decode upload answer: %w", err)
	}
	return reply, nil
}

// FileSHA256 reads a file and returns its hex SHA-256.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// UploadBinary sends the content of the local file path, which must be nutcracker
// version with SHA-256 sum, where the state lives: to the daemon when one answers,
// otherwise into this process's own artifact cache.
func UploadBinary(ctx context.Context, cfg *config.Config, opts Options, path, sum, version string) error {
	f, err := os.Open(path)
	if err != nil {
		return &Error{Kind: KindUsage, Msg: fmt.Sprintf("--binary: %v", err)}
	}
	defer f.Close()
	_, err = NewClient(cfg.Socket).Upload(ctx, f, sum, version)
	if !errors.Is(err, ErrNoDaemon) {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	a, err := Open(ctx, cfg, opts)
	if err != nil {
		return err
	}
	defer a.Close()
	_, err = a.Upload(ctx, f, sum, version)
	return err
}
