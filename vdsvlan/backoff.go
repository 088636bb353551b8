package vdsvlan

import (
	"errors"
	"math/rand/v2"
	"time"
)

// Backoff between connection attempts.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 60 * time.Second
)

// backoff is the jittered exponential wait between connection attempts of
// the Watcher and the Publisher.
type backoff struct{ d time.Duration }

func newBackoff() backoff { return backoff{d: minBackoff} }

// reset starts again from the shortest wait.
func (b *backoff) reset() { b.d = minBackoff }

// next returns a wait between half the current step and the step, and
// doubles the step up to maxBackoff.
func (b *backoff) next() time.Duration {
	wait := b.d/2 + rand.N(b.d/2+1)
	b.d = min(b.d*2, maxBackoff)
	return wait
}

// failedState is the state to report after err ended or refused a session:
// StateError when vCenter refused the login or its certificate was not
// trusted, StateDisconnected otherwise.
func failedState(err error) string {
	if errors.Is(err, ErrLogin) || errors.Is(err, ErrCertificate) {
		return StateError
	}
	return StateDisconnected
}
