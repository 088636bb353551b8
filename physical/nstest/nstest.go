// Package nstest holds torswitch's data-path test helpers, built on the
// namespace kit internal/netnstest: raw frames on AF_PACKET sockets, an eBPF
// VLAN tagger, and condition polling.
package nstest

import (
	"errors"
	"testing"
	"time"

	"github.com/torstitch/torstitch/internal/netnstest"
)

// Eventually polls cond every 20 ms until it returns true or timeout passes,
// then fails the test with cond's last message.
func Eventually(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	netnstest.Eventually(t, timeout, 20*time.Millisecond, "condition", func() error {
		if ok, msg := cond(); !ok {
			return errors.New(msg)
		}
		return nil
	})
}
