package testbed_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/torstitch/torstitch/testbed"
	"github.com/torstitch/torstitch/testbed/clab"
)

// e2eRuntime deploys a topology file for the end-to-end scenarios: torlab's
// network namespaces or containerlab with Docker. The scenarios only use
// testbed.Runtime.
type e2eRuntime struct {
	kind    string
	require func(t *testing.T)
	// deploy deploys file as lab name with the product binaries in bin;
	// notes are extra summary lines (e.g. image build time), took the
	// time from deploy to healthy.
	deploy func(ctx context.Context, t *testing.T, file, name, bin string) (lab testbed.Runtime, notes []string, took time.Duration, err error)
}

func netnsRuntime() e2eRuntime {
	return e2eRuntime{
		kind:    "netns",
		require: lockE2E,
		deploy: func(ctx context.Context, t *testing.T, file, name, bin string) (testbed.Runtime, []string, time.Duration, error) {
			opts := testbed.Options{Logger: testLogger(t), Name: name, BinDirs: []string{bin}, HealthTimeout: 90 * time.Second}
			cleanLab(t, file, opts)
			start := time.Now()
			lab, err := testbed.Deploy(ctx, file, opts)
			if err != nil {
				return nil, nil, 0, err
			}
			return lab, nil, time.Since(start), nil
		},
	}
}

const clabEnvScript = "../containerlab/setup/clab-env.sh"

var (
	clabEnvOnce sync.Once
	clabEnv     testbed.ClabEnv
	clabEnvErr  error
)

// clabRuntime deploys with containerlab. TORSTITCH_CONTAINERLAB=1 (make
// test as root, after running the set-up script) makes a missing Docker
// engine or containerlab a failure; 0 skips; unset runs when
// `clab-env.sh status` finds both.
func clabRuntime() e2eRuntime {
	return e2eRuntime{
		kind: "containerlab",
		require: func(t *testing.T) {
			want := os.Getenv("TORSTITCH_CONTAINERLAB")
			if want == "0" {
				t.Skip("TORSTITCH_CONTAINERLAB=0")
			}
			clabEnvOnce.Do(func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				clabEnv, clabEnvErr = testbed.LoadClabEnv(ctx, clabEnvScript, "status")
			})
			if clabEnvErr != nil {
				if want == "1" {
					t.Fatalf("TORSTITCH_CONTAINERLAB=1 but no usable Docker engine + containerlab: %v", clabEnvErr)
				}
				t.Skipf("no Docker engine + containerlab (run containerlab/setup/clab-env.sh up, or make test as root): %v", clabEnvErr)
			}
			lockE2E(t)
		},
		deploy: func(ctx context.Context, t *testing.T, file, name, bin string) (testbed.Runtime, []string, time.Duration, error) {
			images, err := labImages(file)
			if err != nil {
				return nil, nil, 0, err
			}
			start := time.Now()
			cmd := exec.CommandContext(ctx, "../containerlab/images/build.sh", images...)
			cmd.Env = append(os.Environ(), "BIN_DIR="+bin, "DOCKER_HOST="+clabEnv.DockerHost)
			out, err := cmd.CombinedOutput()
			if err != nil {
				return nil, nil, 0, fmt.Errorf("images: %v\n%s", err, out)
			}
			built := time.Since(start)
			t.Logf("images built in %s:\n%s", built.Round(time.Millisecond), out)
			lab, err := testbed.OpenContainerlab(file, testbed.ClabOptions{
				Name: name, Env: clabEnv, HealthTimeout: 2 * time.Minute, Logger: testLogger(t)})
			if err != nil {
				return nil, nil, 0, err
			}
			if err := lab.Destroy(ctx); err != nil {
				t.Logf("destroying leftovers: %v", err)
			}
			t.Cleanup(func() {
				if err := lab.Destroy(context.Background()); err != nil {
					t.Errorf("cleanup destroy: %v", err)
				}
			})
			notes := []string{fmt.Sprintf("%-16s %s: torstitch/{%s} from bin/ and the .deb cache", "images", built.Round(time.Millisecond), strings.Join(images, ","))}
			start = time.Now()
			if err := lab.Deploy(ctx); err != nil {
				return nil, notes, 0, err
			}
			return lab, notes, time.Since(start), nil
		},
	}
}

// lockE2E makes the E2E labs of concurrent test processes (another
// checkout's make test, say) take turns: they use the same lab names
// (tb-e2e: netns and container names, the leftover clean-up destroys the
// other's lab) and, under containerlab, the engine namespace's bridge
// `underlay` and the torstitch/*:latest image tags. It holds an exclusive
// flock on /run/torstitch-e2e.lock until the test ends (the cleanups
// registered after it, the lab's destroy, run first), waiting up to 20 min.
func lockE2E(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if err := lockFile(ctx, t, "/run/torstitch-e2e.lock"); err != nil {
		t.Fatal(err)
	}
}

func lockFile(ctx context.Context, t *testing.T, path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	start := time.Now()
	logged := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if err != syscall.EWOULDBLOCK {
			f.Close()
			return err
		}
		if !logged {
			t.Logf("another process runs an E2E lab (%s held); waiting", path)
			logged = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return fmt.Errorf("waiting for %s: %w", path, ctx.Err())
		case <-time.After(time.Second):
		}
	}
	if logged {
		t.Logf("%s taken after %s", path, time.Since(start).Round(time.Second))
	}
	t.Cleanup(func() { f.Close() })
	return nil
}

// TestStitchE2EContainerlab runs TestStitchE2E's scenarios on the same
// topology file deployed by containerlab (Docker, thin images).
func TestStitchE2EContainerlab(t *testing.T) {
	runStitchE2E(t, clabRuntime(), stitchLab, stitchScenarios)
}

// TestStitchTorswitchE2EContainerlab runs TestStitchTorswitchE2E's
// scenarios on the torswitch topology deployed by containerlab.
func TestStitchTorswitchE2EContainerlab(t *testing.T) {
	runStitchE2E(t, clabRuntime(), torswitchLab, torswitchScenarios)
}

// results: lab description -> runtime -> summary lines, for the
// side-by-side comparison printed (and appended to the report) at the end.
var (
	resultsMu sync.Mutex
	results   = map[string]map[string][]string{}
	labOrder  []string
)

func recordResults(what, runtime string, lines []string) {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	if results[what] == nil {
		results[what] = map[string][]string{}
		labOrder = append(labOrder, what)
	}
	results[what][runtime] = lines
}

// sideBySide renders every scenario's figures of each runtime one under
// the other, per lab.
func sideBySide() string {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	var b strings.Builder
	for _, what := range labOrder {
		byRT := results[what]
		if len(byRT) < 2 {
			continue
		}
		fmt.Fprintf(&b, "E2E RUNTIMES SIDE BY SIDE (%s)\n", what)
		var keys []string
		figures := map[string]map[string]string{}
		rts := []string{"netns", "containerlab"}
		// containerlab's lines first: its summary has an extra line
		// (images) before the deploy.
		for _, rt := range []string{"containerlab", "netns"} {
			for _, line := range byRT[rt] {
				key, rest, _ := strings.Cut(line, " ")
				if !slices.Contains(keys, key) {
					keys = append(keys, key)
					figures[key] = map[string]string{}
				}
				figures[key][rt] = strings.TrimSpace(rest)
			}
		}
		for _, k := range keys {
			fmt.Fprintf(&b, "  %s\n", k)
			for _, rt := range rts {
				v := figures[k][rt]
				if v == "" {
					v = "-"
				}
				fmt.Fprintf(&b, "    %-13s %s\n", rt+":", v)
			}
		}
	}
	return b.String()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if text := sideBySide(); text != "" {
		fmt.Print(text)
		appendReport(nil, text)
	}
	os.Exit(code)
}

// labImages names the project's images (torstitch/NAME:latest) that file's
// nodes use, for containerlab/images/build.sh: each lab builds what it
// deploys, whichever lab runs first or alone.
func labImages(file string) ([]string, error) {
	t, err := clab.Load(file)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, n := range t.Nodes {
		name, ours := strings.CutPrefix(n.Image, "torstitch/")
		name, latest := strings.CutSuffix(name, ":latest")
		if ours && latest && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no node uses a torstitch/*:latest image", file)
	}
	slices.Sort(names)
	return names, nil
}

func TestLabImages(t *testing.T) {
	for file, want := range map[string][]string{
		stitchLab:    {"frr", "host", "ovs", "torstitch"},
		torswitchLab: {"frr", "host", "ovs", "torstitch", "torswitch"},
	} {
		if got, err := labImages(file); err != nil || !slices.Equal(got, want) {
			t.Errorf("labImages(%s) = %v, %v; want %v", file, got, err, want)
		}
	}
}
