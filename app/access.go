package app

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/user"
	"slices"
	"strconv"
	"syscall"

	"github.com/patchctl/patchctl/config"
)

// Caller is who sent a request, as the kernel says (SO_PEERCRED on the socket), or this
// process when the CLI runs a method itself.
type Caller struct {
	UID, GID, PID int
	// Known is false when the socket could not say (then changing methods are refused
	// wherever access is restricted).
	Known bool
}

// String is how events and alerts name the caller: "uid 1000 (alice)".
func (c Caller) String() string {
	if !c.Known {
		return "unknown caller"
	}
	s := "uid " + strconv.Itoa(c.UID)
	if u, err := user.LookupId(strconv.Itoa(c.UID)); err == nil {
		s += " (" + u.Username + ")"
	}
	return s
}

type callerKey struct{}

func withCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// callerOf is the caller of the request in ctx; without one, this process.
func callerOf(ctx context.Context) Caller {
	if c, ok := ctx.Value(callerKey{}).(Caller); ok {
		return c
	}
	return Caller{UID: os.Getuid(), GID: os.Getgid(), PID: os.Getpid(), Known: true}
}

// peerCaller asks the kernel who is at the other end of a unix socket connection.
func peerCaller(c net.Conn) Caller {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Caller{}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Caller{}
	}
	var cred *syscall.Ucred
	cerr := raw.Control(func(fd uintptr) {
		cred, err = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if cerr != nil || err != nil {
		return Caller{}
	}
	return Caller{UID: int(cred.Uid), GID: int(cred.Gid), PID: int(cred.Pid), Known: true}
}

// readOnly are the methods anyone who can open the socket may call. Every other method
// changes something (deploy, rollback, adopt, rollouts, reload, notify retry, abort, ...)
// and is limited to api.allow_users/allow_groups when those are set: a new method is
// restricted until it is listed here.
var readOnly = map[string]bool{
	"status": true, "events": true, "history": true, "slots": true, "ops": true, "op": true,
	"inventory": true, "releases": true, "advisories": true, "version": true, "windows": true,
	// Polls only observe (releases, the fleet) and record what they saw.
	"poll": true, "inventory.poll": true,
	// A rollout plan checks hosts without touching them.
	"rollout.plan": true, "rollout.status": true, "rollout.list": true,
}

// access decides who may call changing methods.
type access struct {
	users, groups []int
}

func newAccess(c config.API) (access, error) {
	var a access
	for _, u := range c.AllowUsers {
		id, err := config.LookupUID(u)
		if err != nil {
			return a, fmt.Errorf("api.allow_users: %w", err)
		}
		a.users = append(a.users, id)
	}
	for _, g := range c.AllowGroups {
		id, err := config.LookupGID(g)
		if err != nil {
			return a, fmt.Errorf("api.allow_groups: %w", err)
		}
		a.groups = append(a.groups, id)
	}
	return a, nil
}

// checkAccess refuses a changing method to a caller outside the allowed users and groups
// of the configuration in force (a reload changes them).
func (a *App) checkAccess(method string, c Caller) error {
	api := a.config().API
	if !api.Restricted() {
		return nil
	}
	acc, err := newAccess(api)
	if err != nil {
		return &Error{Kind: KindDenied, Msg: fmt.Sprintf("%s refused: %v", method, err)}
	}
	return acc.check(method, c)
}

// check refuses a changing method to a caller outside the allowed users and groups.
// The daemon's own user (and root) may always: they own the store anyway.
func (a access) check(method string, c Caller) error {
	if readOnly[method] {
		return nil
	}
	if c.Known && (c.UID == 0 || c.UID == os.Getuid() || slices.Contains(a.users, c.UID) || a.inGroups(c)) {
		return nil
	}
	return &Error{Kind: KindDenied, Msg: fmt.Sprintf("%s may not call %s: it changes things, and api.allow_users/api.allow_groups in the daemon's patchctl.yml do not list this user or any of its groups", c, method)}
}

func (a access) inGroups(c Caller) bool {
	if slices.Contains(a.groups, c.GID) {
		return true
	}
	u, err := user.LookupId(strconv.Itoa(c.UID))
	if err != nil {
		return false
	}
	gids, err := u.GroupIds()
	if err != nil {
		return false
	}
	for _, g := range gids {
		if id, err := strconv.Atoi(g); err == nil && slices.Contains(a.groups, id) {
			return true
		}
	}
	return false
}
