package app

import (
	"context"
	"slices"

	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/patching"
	"github.com/patchctl/patchctl/waves"
)

// patchEngine is the fleet rollout engine as the patch scheduler sees it: a scheduled
// rollout holds after its staging waves, and "staging done" means those waves passed.
type patchEngine struct {
	e        *waves.Engine
	policies func() config.Rollouts
}

var _ patching.Engine = patchEngine{}

func (p patchEngine) Start(ctx context.Context, req patching.StartRequest) (patching.Rollout, error) {
	hold := req.StagingWaves
	if len(hold) == 0 {
		pol, _ := p.policies().Policy(req.RolloutPolicy)
		if len(pol.Waves) > 0 {
			hold = []string{pol.Waves[0].Name}
		}
	}
	v, err := p.e.Start(ctx, waves.Request{Version: req.Version, Policy: req.RolloutPolicy, HoldAfter: hold})
	if err != nil {
		return patching.Rollout{}, err
	}
	return patchView(v), nil
}

func (p patchEngine) after(ctx context.Context, id string, err error) (patching.Rollout, error) {
	if err != nil {
		return patching.Rollout{}, err
	}
	return p.Get(ctx, id)
}

func (p patchEngine) Pause(ctx context.Context, id, reason string) (patching.Rollout, error) {
	_, err := p.e.Pause(ctx, id, reason)
	return p.after(ctx, id, err)
}

func (p patchEngine) Resume(ctx context.Context, id string) (patching.Rollout, error) {
	_, err := p.e.Resume(ctx, id)
	return p.after(ctx, id, err)
}

func (p patchEngine) Promote(ctx context.Context, id string) (patching.Rollout, error) {
	_, err := p.e.Promote(ctx, id)
	return p.after(ctx, id, err)
}

func (p patchEngine) Get(ctx context.Context, id string) (patching.Rollout, error) {
	v, err := p.e.Get(ctx, id)
	if err != nil {
		return patching.Rollout{}, err
	}
	return patchView(v), nil
}

func (p patchEngine) Find(ctx context.Context, version, policy string) (patching.Rollout, bool, error) {
	rs, err := p.e.List(ctx)
	if err != nil {
		return patching.Rollout{}, false, err
	}
	for _, r := range slices.Backward(rs) {
		if r.Version == version && (policy == "" || r.Policy == policy) && !waves.Terminal(r.State) {
			got, err := p.Get(ctx, r.ID)
			return got, err == nil, err
		}
	}
	return patching.Rollout{}, false, nil
}

func patchView(v waves.View) patching.Rollout {
	r := patching.Rollout{ID: v.ID, Version: v.Version, State: v.State, Reason: v.Reason, AwaitingPromote: v.AwaitingPromote,
		Hosts: len(v.Hosts), StagingDone: len(v.HoldAfter) > 0}
	for _, w := range v.Waves {
		if slices.Contains(v.HoldAfter, w.Name) && w.State != waves.WavePassed {
			r.StagingDone = false
		}
	}
	for _, h := range v.Hosts {
		if h.State == waves.HostSucceeded || h.State == waves.HostSkipped {
			r.Done++
		}
	}
	return r
}
