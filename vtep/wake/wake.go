// Package wake is the coalescing wake-up of torstitch's loops: a source
// notes that something changed, a loop wakes and reads the whole current
// state. Notify never blocks, and notifications made before the loop looks
// count as one: the loop reads levels, not events, so none is lost.
package wake

// Signal is a wake-up channel with room for one pending wake-up. Receive
// from it (or hand it out as <-chan struct{}) to wait.
type Signal chan struct{}

// New returns a Signal with no wake-up pending.
func New() Signal { return make(Signal, 1) }

// Notify wakes the receiver, or does nothing when a wake-up is pending.
func (s Signal) Notify() {
	select {
	case s <- struct{}{}:
	default:
	}
}
