package evpn

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/torstitch/torstitch/internal/netnstest"
	"github.com/torstitch/torstitch/vtep/l2"
)

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("EVPN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func startSpeaker(t testing.TB, cfg Config) *Speaker {
	t.Helper()
	s, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return s
}

// waitRemote waits until cond holds on the speaker's remote state.
func waitRemote(t testing.TB, s *Speaker, timeout time.Duration, what string, cond func(RemoteState) error) RemoteState {
	t.Helper()
	var last RemoteState
	netnstest.Eventually(t, timeout, 20*time.Millisecond, what, func() error {
		last = s.Remote()
		return cond(last)
	})
	return last
}

func hasMAC(want l2.RemoteMAC) func(RemoteState) error {
	return func(st RemoteState) error {
		for _, m := range st.MACs {
			if m == want {
				return nil
			}
		}
		return fmt.Errorf("%+v not in %+v", want, st.MACs)
	}
}

func noMAC(vni l2.VNI, mac l2.MAC) func(RemoteState) error {
	return func(st RemoteState) error {
		for _, m := range st.MACs {
			if m.VNI == vni && m.MAC == mac {
				return fmt.Errorf("%s still present: %+v", mac, m)
			}
		}
		return nil
	}
}

func floodIs(vni l2.VNI, want ...netip.Addr) func(RemoteState) error {
	return func(st RemoteState) error {
		if !slices.Equal(st.Flood[vni], want) {
			return fmt.Errorf("flood[%d] = %v, want %v", vni, st.Flood[vni], want)
		}
		return nil
	}
}

func both(fs ...func(RemoteState) error) func(RemoteState) error {
	return func(st RemoteState) error {
		for _, f := range fs {
			if err := f(st); err != nil {
				return err
			}
		}
		return nil
	}
}

var ip = netip.MustParseAddr

// endOfRIBs counts the End-of-RIB markers received from a neighbor.
func (s *Speaker) endOfRIBs(a netip.Addr) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.eor[a]
}
