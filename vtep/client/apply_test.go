package client

import (
	"testing"

	"github.com/torstitch/torstitch/vtep/plan"
)

// TestBuilders checks that every kind of change the planner emits has its
// operations here.
func TestBuilders(t *testing.T) {
	for _, o := range plan.Ops() {
		if int(o) >= len(builders) || builders[o] == nil {
			t.Errorf("no builder for %v", o)
		}
	}
}
