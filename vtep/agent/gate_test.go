package agent

import (
	"testing"
	"time"

	"github.com/torstitch/torstitch/vtep/plan"
)

func TestAdvertiseGate(t *testing.T) {
	one := map[string]*plan.Observed{"tor1": {}}
	two := map[string]*plan.Observed{"tor1": {}, "tor2": {}}
	const wait = 30 * time.Second
	type step struct {
		obs     map[string]*plan.Observed
		vcValid bool
		since   time.Duration
		want    bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"both switches and vCenter read", []step{{two, true, time.Second, true}}},
		{"one switch missing: held, then opened by the wait", []step{
			{one, true, time.Second, false}, {one, true, wait - time.Millisecond, false}, {one, true, wait, true}}},
		{"vCenter not read yet: held", []step{{two, false, time.Second, false}, {two, true, 2 * time.Second, true}}},
		{"open stays open", []step{{two, true, time.Second, true}, {nil, false, 2 * time.Second, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g advertiseGate
			for i, s := range tc.steps {
				if got := g.ready(&passEffects{}, len(s.obs), 2, s.vcValid, s.since, wait); got != s.want {
					t.Fatalf("step %d: ready = %v, want %v", i, got, s.want)
				}
			}
		})
	}
}
