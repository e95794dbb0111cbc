package rollout

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/patchctl/patchctl/transport"
)

// ErrAlreadyManaged means adopt found the host already on a slot patchctl installed.
var ErrAlreadyManaged = errors.New("already managed by patchctl")

// adoptScript prints the pid, the executable and the sha256 of the process listening on
// port $1, from the process itself (/proc/PID/exe works even if the file was replaced or
// deleted since it started). Exit 2: nothing listens; 3: the owner cannot be read.
const adoptScript = portHolderFunc + `
h=$(port_holder "$1")
case $h in
'') echo "nothing listens on port $1" >&2; exit 2 ;;
"an unknown process") echo "cannot tell which process listens on port $1 (log in as root or as its user)" >&2; exit 3 ;;
esac
pid=${h#pid }; pid=${pid%% *}
echo "$pid"
readlink "/proc/$pid/exe"
sha256sum < "/proc/$pid/exe" | cut -d ' ' -f 1
`

// copyExeScript copies /proc/$1/exe to the slot binary $2, atomically.
const copyExeScript = `set -e
mkdir -p -m 0755 -- "$(dirname -- "$2")"
cp -- "/proc/$1/exe" "$2.adopt"
chmod 0755 -- "$2.adopt"
mv -f -- "$2.adopt" "$2"`

// Adopt records the nutcracker serving a host's stats port, started outside patchctl, as
// the host's first good slot, without restarting it: its executable is copied from the
// process itself into a slot, checked with -V against what the stats port reports, and
// current points at it. The next deploy or rollback replaces it with the usual safety
// and stops the adopted process (pidfile mode).
func (r *Rollout) Adopt(ctx context.Context, h HostSpec) (Result, error) {
	return r.resumed(ctx, h, func(x *run, current string, hs HostState) (Result, error) {
		if current != "" {
			return Result{}, fmt.Errorf("host %s: %s points at %s: %w", h.Name, x.fs.current(), current, ErrAlreadyManaged)
		}
		_, port, err := net.SplitHostPort(h.StatsAddr)
		if err != nil {
			return Result{}, fmt.Errorf("host %s: stats_addr %q: %w", h.Name, h.StatsAddr, err)
		}
		res, err := x.fs.run(ctx, "sh", "-c", adoptScript, "adopt", port)
		if err != nil {
			var exit *transport.ExitError
			if errors.As(err, &exit) && exit.Status == 2 {
				return Result{}, fmt.Errorf("host %s: %w: %w", h.Name, ErrNotRunning, err)
			}
			return Result{}, err
		}
		f := strings.Fields(string(res.Stdout))
		if len(f) != 3 || len(f[2]) != 64 {
			return Result{}, fmt.Errorf("host %s: adopt: unexpected answer %q", h.Name, res.Stdout)
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil {
			return Result{}, fmt.Errorf("host %s: adopt: pid %q: %w", h.Name, f[0], err)
		}
		exe, sha := strings.TrimSuffix(f[1], " (deleted)"), f[2]
		st, err := fetchStats(ctx, h.StatsAddr)
		if err != nil {
			return Result{}, fmt.Errorf("host %s: %w: %w", h.Name, ErrNotRunning, err)
		}
		target := Slot{Name: slotName(st.Version, sha), Version: st.Version, SHA256: sha}
		x.newOp(KindAdopt, "", hs, target)
		existing := hs.slot(target.Name)
		x.op.CreatedSlot = existing == nil || existing.State == SlotRetired
		if err := x.step(ctx, StepAdopt, nil); err != nil {
			return Result{}, err
		}
		if err := x.adopt(ctx, pid, target); err != nil {
			return x.refuse(ctx, err, OpFailed)
		}
		adopted := &Adopted{PID: pid, Exe: exe}
		now := r.opts.Now()
		if err := x.finish(ctx, OpSucceeded, func(hs *HostState) {
			if hs.slot(target.Name) == nil {
				hs.Slots = append(hs.Slots, Slot{Name: target.Name, Version: target.Version, SHA256: sha, Installed: now})
			}
			hs.Current, hs.Adopted = target.Name, adopted
			hs.setState(target.Name, SlotGood, now, x.op.ID, fmt.Sprintf("adopted from pid %d (%s)", pid, exe))
		}, nil); err != nil {
			return Result{Operation: x.op}, err
		}
		return Result{Operation: x.op}, nil
	})
}

// adopt copies the running executable into its slot, proves the copy is that file and
// reports the version the stats port does, and points current at it.
func (x *run) adopt(ctx context.Context, pid int, target Slot) error {
	bin := x.fs.binary(target.Name)
	if _, err := x.fs.run(ctx, "sh", "-c", copyExeScript, "copy", strconv.Itoa(pid), bin); err != nil {
		return fmt.Errorf("copy the executable of pid %d: %w", pid, err)
	}
	if err := x.verify(ctx, target); err != nil {
		return fmt.Errorf("the executable of pid %d changed while copied (it may have exited): %w", pid, err)
	}
	v, err := x.fs.version(ctx, bin)
	if err != nil {
		return err
	}
	if v != target.Version {
		return fmt.Errorf("%s reports %s but the stats port %s: %w", bin, v, target.Version, ErrWrongVersion)
	}
	return x.fs.switchTo(ctx, target.Name)
}

// unadopt undoes an adoption that was interrupted: the host goes back to unmanaged, its
// process untouched.
func (x *run) unadopt(ctx context.Context) error {
	if cur, err := x.fs.readCurrent(ctx); err == nil && cur == x.op.To {
		if _, err := x.fs.run(ctx, "rm", "-f", "--", x.fs.current()); err != nil {
			return err
		}
	}
	return nil
}
