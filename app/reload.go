package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/store"
)

// reloader checks a new configuration for one component and prepares it (loading files,
// building clients); apply switches the component over and cannot fail. It runs with a.mu
// held, and only once every component accepted the configuration.
type reloader func(ctx context.Context, cfg *config.Config) (apply func(), err error)

func (a *App) addReloader(r reloader) { a.reloaders = append(a.reloaders, r) }

// ReloadResult is what `patchctl reload` reports.
type ReloadResult struct {
	Config    string `json:"config"`
	Inventory string `json:"inventory,omitempty"`
	Hosts     int    `json:"hosts"`
}

// Reload re-reads patchctl.yml and the inventory and switches to them. Everything is
// loaded and validated first: on any error the running configuration stays and the error
// says why (file:line for a bad file).
func (a *App) Reload(ctx context.Context) (ReloadResult, error) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	old := a.config()
	if old.File == "" {
		return ReloadResult{}, errors.New("reload: the configuration was not read from a file")
	}
	cfg, err := config.LoadFile(old.File)
	if err != nil {
		return ReloadResult{}, fmt.Errorf("reload: %w", err)
	}
	if err := needsRestart(old, cfg); err != nil {
		return ReloadResult{}, fmt.Errorf("reload: %w", err)
	}
	var applies []func()
	var errs []error
	for _, r := range a.reloaders {
		apply, err := r(ctx, cfg)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		applies = append(applies, apply)
	}
	if len(errs) > 0 {
		return ReloadResult{}, fmt.Errorf("reload: %w", errors.Join(errs...))
	}
	a.mu.Lock()
	for _, apply := range applies {
		apply()
	}
	a.conf.Store(cfg)
	err = a.scheduleLocked() // schedules were validated with the file
	a.mu.Unlock()
	res := ReloadResult{Config: cfg.File, Inventory: cfg.Inventory.File}
	if inv := a.inventory(); inv != nil {
		res.Hosts = len(inv.Hosts)
	}
	if werr := a.store.Update(context.WithoutCancel(ctx), func(tx *store.Tx) error {
		_, err := tx.AppendEvent(store.Event{Kind: "config.reloaded", Subject: cfg.File,
			Message: fmt.Sprintf("configuration reloaded, %d inventory hosts", res.Hosts)})
		return err
	}); werr != nil {
		err = errors.Join(err, werr)
	}
	return res, err
}

// needsRestart names a changed setting that a running daemon cannot switch: where it
// listens, where it keeps its state and how it logs.
func needsRestart(old, cfg *config.Config) error {
	for _, c := range []struct {
		field    string
		old, new any
	}{
		{"data_dir", old.DataDir, cfg.DataDir},
		{"socket", old.Socket, cfg.Socket},
		{"socket_group", old.SocketGroup, cfg.SocketGroup},
		{"metrics.listen", old.Metrics.Listen, cfg.Metrics.Listen},
		{"log", old.Log, cfg.Log},
		{"artifacts.dir", old.Artifacts.Dir, cfg.Artifacts.Dir},
	} {
		if c.old != c.new {
			return fmt.Errorf("%s: %s changed; restart the daemon to apply it", cfg.File, c.field)
		}
	}
	return nil
}

// serving reports whether this App is the daemon: it serves the socket.
func (a *App) serving() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.listener != ""
}

func setupReload(_ context.Context, a *App) error {
	handle(a, "reload", func(ctx context.Context, _ struct{}) (any, error) {
		if !a.serving() {
			return nil, &Error{Kind: KindFailed, Msg: "no daemon is running: nothing to reload"}
		}
		res, err := a.Reload(ctx)
		if err != nil {
			return nil, &Error{Kind: KindFailed, Msg: err.Error()}
		}
		return res, nil
	})
	return nil
}
