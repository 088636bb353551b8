package testbed

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
)

// state is the lab's journal under RunDir/state.json. Every resource is
// recorded before it is created, so destroy finds it after a crash.
type state struct {
	Lab    string `json:"lab"`
	File   string `json:"file"`
	Prefix string `json:"prefix"`
	// Netns holds node name -> network namespace name.
	Netns map[string]string `json:"netns"`
	// TempLinks holds the host-namespace temporary veth names ever used.
	TempLinks []string `json:"temp_links,omitempty"`
	// BindTargets holds every bind mount target the lab uses, so that a
	// destroy of another lab does not remove a mount point still in use.
	BindTargets []string `json:"bind_targets,omitempty"`
	// CmdPID holds node -> pid of its cmd process.
	CmdPID map[string]int `json:"cmd_pid,omitempty"`
	// ExecDone lists nodes whose exec commands all succeeded.
	ExecDone []string `json:"exec_done,omitempty"`

	path string
	mu   sync.Mutex // nodes start in parallel
}

func loadState(runDir string) (*state, bool, error) {
	p := filepath.Join(runDir, "state.json")
	s := &state{path: p, Netns: map[string]string{}, CmdPID: map[string]int{}}
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return s, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading lab state: %w", err)
	}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, false, fmt.Errorf("decoding lab state %s: %w", p, err)
	}
	if s.Netns == nil {
		s.Netns = map[string]string{}
	}
	if s.CmdPID == nil {
		s.CmdPID = map[string]int{}
	}
	return s, true, nil
}

func (s *state) save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding lab state: %w", err)
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("writing lab state: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("writing lab state: %w", err)
	}
	return nil
}

func (s *state) markExecDone(node string) error {
	s.mu.Lock()
	if !slices.Contains(s.ExecDone, node) {
		s.ExecDone = append(s.ExecDone, node)
	}
	s.mu.Unlock()
	return s.save()
}

func (s *state) execDone(node string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.ExecDone, node)
}

func (s *state) addTemp(names ...string) error {
	for _, n := range names {
		if !slices.Contains(s.TempLinks, n) {
			s.TempLinks = append(s.TempLinks, n)
		}
	}
	return s.save()
}

func (s *state) addBindTarget(p string) error {
	if slices.Contains(s.BindTargets, p) {
		return nil
	}
	s.BindTargets = append(s.BindTargets, p)
	return s.save()
}

// lockRunDir takes an exclusive lock on the lab's run directory; the lock
// is released when the returned function is called or the process dies.
func lockRunDir(runDir string) (func(), error) {
	return lockFile(filepath.Join(runDir, "lock"))
}

// lockFile takes an exclusive flock on path (creating it and its directory).
func lockFile(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating run dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// mountpointInUse reports whether another lab under runRoot uses p.
func mountpointInUse(runRoot, self, p string) bool {
	labs, _ := os.ReadDir(runRoot)
	for _, l := range labs {
		if !l.IsDir() || l.Name() == self {
			continue
		}
		s, ok, err := loadState(filepath.Join(runRoot, l.Name()))
		if err == nil && ok && slices.Contains(s.BindTargets, p) {
			return true
		}
	}
	return false
}

// mountRegistry lists the mount points torlab created on the host, for all
// labs under one run root: a mount point created for one lab and used by
// another is removed by whichever destroy comes last.
type mountRegistry struct {
	path   string
	unlock func()
	Paths  []string `json:"paths"`
}

func openMountRegistry(runRoot string) (*mountRegistry, error) {
	unlock, err := lockFile(filepath.Join(runRoot, "mountpoints.lock"))
	if err != nil {
		return nil, err
	}
	r := &mountRegistry{path: filepath.Join(runRoot, "mountpoints.json"), unlock: unlock}
	data, err := os.ReadFile(r.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		unlock()
		return nil, fmt.Errorf("reading mount point registry: %w", err)
	default:
		if err := json.Unmarshal(data, r); err != nil {
			unlock()
			return nil, fmt.Errorf("decoding %s: %w", r.path, err)
		}
	}
	return r, nil
}

func (r *mountRegistry) save() error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding mount point registry: %w", err)
	}
	if err := os.WriteFile(r.path, data, 0o644); err != nil {
		return fmt.Errorf("writing mount point registry: %w", err)
	}
	return nil
}

func (r *mountRegistry) close() { r.unlock() }
