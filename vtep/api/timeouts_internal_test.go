package api

import (
	"testing"
	"time"
)

// A zero or negative field takes its default; a set one is kept.
func TestTimeoutsWithDefaults(t *testing.T) {
	d := DefaultTimeouts()
	if got := (Timeouts{}).withDefaults(); got != d {
		t.Errorf("Timeouts{}.withDefaults() = %+v, want %+v", got, d)
	}
	want := d
	want.Idle = time.Second
	if got := (Timeouts{Idle: time.Second, Read: -1}).withDefaults(); got != want {
		t.Errorf("withDefaults() = %+v, want %+v", got, want)
	}
}
