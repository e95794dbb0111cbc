package store

import "time"

// PatchState is where the automatic flow stands for one patching policy.
type PatchState struct {
	Policy string `json:"policy"`
	// Rollout is the rollout the scheduler started and still drives ("" = none).
	Rollout string `json:"rollout,omitempty"`
	// Version is the candidate that rollout carries: it keeps it even if a newer release
	// appears meanwhile.
	Version string `json:"version,omitempty"`
	// Starting is set, with Version, just before a rollout is started: a daemon killed
	// between the start and recording its id adopts the rollout instead of starting another.
	Starting bool `json:"starting,omitempty"`
	// FastTrack says why the candidate took the security fast track ("" = it did not).
	FastTrack string `json:"fast_track,omitempty"`
	// Approved: production may run (patchctl rollout approve).
	Approved   bool      `json:"approved,omitempty"`
	ApprovedBy string    `json:"approved_by,omitempty"`
	Since      time.Time `json:"since,omitzero"`
	// Windows are the windows that opened with work and whose summary is still due.
	Windows []OpenWindow `json:"windows,omitempty"`
}

// OpenWindow is one opening of a patch window the scheduler worked in.
type OpenWindow struct {
	Key   string    `json:"key"` // name:opening
	Name  string    `json:"name"`
	Kind  string    `json:"kind"`
	Open  time.Time `json:"open"`
	Close time.Time `json:"close"`
}

// BadVersion is a version whose rollout failed or was aborted: it is not proposed again
// until a newer release appears or an operator clears it.
type BadVersion struct {
	Source  string    `json:"source"`
	Version string    `json:"version"`
	Rollout string    `json:"rollout,omitempty"`
	Reason  string    `json:"reason"`
	Marked  time.Time `json:"marked"`
}

func patchKey(kind, name string) []byte { return []byte(kind + "\x00" + name) }

// PatchState reads a policy's state; a policy never seen has the zero state.
func (tx *Tx) PatchState(policy string) (PatchState, error) {
	st := PatchState{Policy: policy}
	_, err := tx.getJSON(bucketPatching, patchKey("policy", policy), &st)
	return st, err
}

// PutPatchState writes a policy's state.
func (tx *Tx) PutPatchState(st PatchState) error {
	return tx.putJSON(bucketPatching, patchKey("policy", st.Policy), st)
}

// BadVersions lists the versions marked bad for a source.
func (tx *Tx) BadVersions(source string) ([]BadVersion, error) {
	var out []BadVersion
	err := forEachJSON(tx, bucketPatching, patchKey("bad", source+"\x00"), func(_ []byte, b BadVersion) error {
		out = append(out, b)
		return nil
	})
	return out, err
}

// PutBadVersion marks a version bad.
func (tx *Tx) PutBadVersion(b BadVersion) error {
	if b.Marked.IsZero() {
		b.Marked = tx.now
	}
	return tx.putJSON(bucketPatching, patchKey("bad", b.Source+"\x00"+b.Version), b)
}

// DeleteBadVersion clears a mark; ok is false when the version was not marked.
func (tx *Tx) DeleteBadVersion(source, version string) (ok bool, err error) {
	b, err := tx.bucket(bucketPatching)
	if err != nil {
		return false, err
	}
	key := patchKey("bad", source+"\x00"+version)
	if b.Get(key) == nil {
		return false, nil
	}
	return true, b.Delete(key)
}

// Done reports whether a one-time step (a window's reminder, start or summary) happened.
func (tx *Tx) Done(key string) (bool, error) {
	var at time.Time
	return tx.getJSON(bucketPatching, patchKey("done", key), &at)
}

// MarkDone records a one-time step, so a restarted daemon does not repeat it.
func (tx *Tx) MarkDone(key string) error {
	return tx.putJSON(bucketPatching, patchKey("done", key), tx.now)
}
