package store

import (
	"encoding/json"
	"time"
)

// Rollout is one fleet rollout: a candidate version moved over ordered waves of hosts.
// Package fleet owns its life; the store only keeps it.
type Rollout struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Policy  string `json:"policy"`
	State   string `json:"state"`
	Reason  string `json:"reason,omitempty"`
	// AwaitingPromote: the rollout is paused until someone promotes it to the next wave.
	AwaitingPromote bool `json:"awaiting_promote,omitempty"`
	// HoldAfter names waves after which the rollout waits for a promote whatever the policy says.
	HoldAfter []string `json:"hold_after"`
	// Settings is the policy as it was when the rollout started (frozen, JSON).
	Settings json.RawMessage `json:"settings,omitempty"`
	Waves    []RolloutWave   `json:"waves"`
	// Unmatched lists inventory hosts no wave selected.
	Unmatched []string  `json:"unmatched"`
	Created   time.Time `json:"created"`
	Started   time.Time `json:"started,omitzero"`
	Finished  time.Time `json:"finished,omitzero"`
	// Undo is the state the rollout ends in once every changed host is reverted
	// (aborted, rolled_back); empty unless an abort or rollback runs.
	Undo string `json:"undo,omitempty"`
}

// RolloutWave is one wave of a rollout with its frozen list of hosts.
type RolloutWave struct {
	Name        string        `json:"name"`
	State       string        `json:"state"`
	Hosts       []string      `json:"hosts"`
	MaxParallel int           `json:"max_parallel"`
	MaxFailures int           `json:"max_failures"`
	Soak        time.Duration `json:"soak"`
	Promote     bool          `json:"promote"`
	Reason      string        `json:"reason,omitempty"`
	Started     time.Time     `json:"started,omitzero"`
	SoakUntil   time.Time     `json:"soak_until,omitzero"`
	Finished    time.Time     `json:"finished,omitzero"`
	// Baseline is each host's stats counters taken before the wave started.
	Baseline map[string]Counters `json:"baseline,omitempty"`
}

// Counters is a host's error counters summed over pools and servers, as the soak gate
// compares them.
type Counters struct {
	Answered bool             `json:"answered"`
	Uptime   int64            `json:"uptime"`
	Taken    time.Time        `json:"taken"`
	Values   map[string]int64 `json:"values,omitempty"`
}

// RolloutHost is one host of a rollout.
type RolloutHost struct {
	Rollout  string    `json:"rollout"`
	Host     string    `json:"host"`
	Wave     string    `json:"wave"`
	State    string    `json:"state"`
	From     string    `json:"from,omitempty"` // version the host ran before the rollout
	Note     string    `json:"note,omitempty"`
	Error    string    `json:"error,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	// Reverted: when the abort or rollback of this host started.
	Reverted time.Time `json:"reverted,omitzero"`
}

// Rollout reads one rollout.
func (tx *Tx) Rollout(id string) (r Rollout, ok bool, err error) {
	ok, err = tx.getJSON(bucketRollouts, []byte(id), &r)
	return r, ok, err
}

// PutRollout writes a rollout.
func (tx *Tx) PutRollout(r Rollout) error { return tx.putJSON(bucketRollouts, []byte(r.ID), r) }

// Rollouts lists every rollout in id order (ids start with their creation time).
func (tx *Tx) Rollouts() ([]Rollout, error) {
	var out []Rollout
	err := forEachJSON(tx, bucketRollouts, nil, func(_ []byte, r Rollout) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

func rolloutHostKey(id, host string) []byte { return []byte(id + "\x00" + host) }

// RolloutHost reads one host of a rollout.
func (tx *Tx) RolloutHost(id, host string) (h RolloutHost, ok bool, err error) {
	ok, err = tx.getJSON(bucketWaveHosts, rolloutHostKey(id, host), &h)
	return h, ok, err
}

// PutRolloutHost writes one host of a rollout.
func (tx *Tx) PutRolloutHost(h RolloutHost) error {
	return tx.putJSON(bucketWaveHosts, rolloutHostKey(h.Rollout, h.Host), h)
}

// RolloutHosts lists the hosts of a rollout, by host name.
func (tx *Tx) RolloutHosts(id string) (map[string]RolloutHost, error) {
	out := map[string]RolloutHost{}
	err := forEachJSON(tx, bucketWaveHosts, []byte(id+"\x00"), func(_ []byte, h RolloutHost) error {
		out[h.Host] = h
		return nil
	})
	return out, err
}

// Lease returns the rollout holding a host, "" when none does. A lease keeps one
// operation per host: a rollout leases its hosts until it finishes.
func (tx *Tx) Lease(host string) (string, error) {
	return tx.getString(bucketLeases, host)
}

// PutLease gives a host to a rollout.
func (tx *Tx) PutLease(host, rollout string) error {
	return tx.putString(bucketLeases, host, rollout)
}

// DeleteLease frees a host if rollout holds it.
func (tx *Tx) DeleteLease(host, rollout string) error {
	b, err := tx.bucket(bucketLeases)
	if err != nil {
		return err
	}
	if string(b.Get([]byte(host))) != rollout {
		return nil
	}
	return b.Delete([]byte(host))
}

// Leases lists every held host and its rollout.
func (tx *Tx) Leases() (map[string]string, error) {
	b, err := tx.bucket(bucketLeases)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	err = b.ForEach(func(k, v []byte) error {
		out[string(k)] = string(v)
		return nil
	})
	return out, err
}
