// Package testbed realizes containerlab topologies (parsed by testbed/clab)
// on one machine without a container engine: one network namespace per
// node, a veth pair per link, a Linux bridge for each bridge node, and each
// node's cmd and exec run as processes inside its namespace. It is the E2E
// harness and the engine of cmd/torlab; docs/lab.md describes the mapping.
package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/torstitch/torstitch/testbed/clab"
	"github.com/vishvananda/netlink"
)

// DefaultRunRoot holds one directory per deployed lab.
const DefaultRunRoot = "/run/torlab"

// Options tune a deployment. The zero value is usable.
type Options struct {
	// Name overrides the lab name of the file (like containerlab --name).
	Name string
	// Nodes, when set, deploys only these nodes and the links between them
	// (like containerlab --node-filter).
	Nodes []string
	// RunRoot is where lab directories live; default DefaultRunRoot.
	RunRoot string
	// BinDirs are prepended to PATH for node processes (e.g. the
	// directory holding toragent and torvcsim).
	BinDirs []string
	// ExecTimeout bounds each exec command; default 2m.
	ExecTimeout time.Duration
	// HealthTimeout bounds the wait for health after start; default 2m.
	HealthTimeout time.Duration
	// KeepOnError leaves a failed first deployment in place for debugging
	// (it is removed by default).
	KeepOnError bool
	// Logger receives progress; default discards.
	Logger *slog.Logger

	// crashAfterLinks, when > 0, makes Deploy stop dead after creating that
	// many links, as if torlab had been killed (tests only).
	crashAfterLinks int
}

// HealthLabel is the node label holding a shell command that must exit 0
// before the node counts as healthy.
const HealthLabel = "torlab.health"

// ErrCrashed is returned by the crash test hook.
var errCrashed = errors.New("simulated crash")

// Lab is a deployed (or opened) lab.
type Lab struct {
	Topology *clab.Topology
	// Name is the lab name in use (the file's, or Options.Name).
	Name string
	// RunDir holds the state file and the per-node directories.
	RunDir string

	opts Options
	log  *slog.Logger
	st   *state

	mu     sync.Mutex
	killed map[string][]int // node -> pids sent SIGKILL by Kill, not yet waited for
}

// Open loads a topology and attaches to the lab it describes, deployed or
// not, without changing anything.
func Open(file string, opts Options) (*Lab, error) {
	t, err := clab.Load(file)
	if err != nil {
		return nil, err
	}
	return newLab(t, opts)
}

func newLab(t *clab.Topology, opts Options) (*Lab, error) {
	if opts.Name != "" {
		t.Name = opts.Name
	}
	if len(opts.Nodes) > 0 {
		if err := filterNodes(t, opts.Nodes); err != nil {
			return nil, err
		}
	}
	expandNames(t)
	bins := make([]string, 0, len(opts.BinDirs))
	for _, d := range opts.BinDirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("bin dir %s: %w", d, err)
		}
		bins = append(bins, abs)
	}
	opts.BinDirs = bins
	if opts.RunRoot == "" {
		opts.RunRoot = DefaultRunRoot
	}
	if opts.ExecTimeout == 0 {
		opts.ExecTimeout = 2 * time.Minute
	}
	if opts.HealthTimeout == 0 {
		opts.HealthTimeout = 2 * time.Minute
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Lab{
		Topology: t, Name: t.Name, RunDir: filepath.Join(opts.RunRoot, t.Name),
		opts: opts, log: log.With("lab", t.Name),
	}, nil
}

// expandNames replaces containerlab's magic variables __clabNodeName__ and
// __clabLabName__ in cmd, exec and bind paths (the directory variables are
// resolved when mounting).
func expandNames(t *clab.Topology) {
	for _, n := range t.Nodes {
		r := strings.NewReplacer("__clabNodeName__", n.Name, "__clabLabName__", t.Name)
		n.Cmd = r.Replace(n.Cmd)
		for i := range n.Exec {
			n.Exec[i] = r.Replace(n.Exec[i])
		}
		for i := range n.Binds {
			n.Binds[i].Host = r.Replace(n.Binds[i].Host)
			n.Binds[i].Container = r.Replace(n.Binds[i].Container)
		}
	}
}

func filterNodes(t *clab.Topology, keep []string) error {
	for _, k := range keep {
		if t.Node(k) == nil {
			return fmt.Errorf("node filter: no node %q in %s", k, t.Name)
		}
	}
	t.Nodes = slices.DeleteFunc(t.Nodes, func(n *clab.Node) bool { return !slices.Contains(keep, n.Name) })
	t.Links = slices.DeleteFunc(t.Links, func(l *clab.Link) bool {
		return !slices.Contains(keep, l.A.Node) || !slices.Contains(keep, l.B.Node)
	})
	return nil
}

// NetnsName is the network namespace of a node: PREFIX-LAB-NODE, as
// containerlab names containers ("" prefix: NODE; "__lab-name": LAB-NODE).
func NetnsName(prefix, lab, node string) string {
	switch prefix {
	case "":
		return node
	case "__lab-name":
		return lab + "-" + node
	}
	return prefix + "-" + lab + "-" + node
}

// Netns returns the network namespace name of node.
func (l *Lab) Netns(node string) string { return NetnsName(l.Topology.Prefix, l.Name, node) }

// NodeDir is the node's private run directory (logs, pid files, and the
// TORLAB_NODE_DIR its scripts keep their state in).
func (l *Lab) NodeDir(node string) string { return filepath.Join(l.RunDir, "nodes", node) }

// Deploy realizes a topology file and waits until every node is healthy.
// Deploying a lab that is already up changes nothing and starts nothing
// twice.
func Deploy(ctx context.Context, file string, opts Options) (*Lab, error) {
	l, err := Open(file, opts)
	if err != nil {
		return nil, err
	}
	if err := l.Deploy(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// Deploy realizes the lab; see the package function Deploy.
func (l *Lab) Deploy(ctx context.Context) (err error) {
	unlock, err := lockRunDir(l.RunDir)
	if err != nil {
		return err
	}
	st, existed, err := loadState(l.RunDir)
	if err != nil {
		unlock()
		return err
	}
	l.st = st
	st.Lab, st.File, st.Prefix = l.Name, l.Topology.File, l.Topology.Prefix
	defer func() {
		unlock()
		if err != nil && !existed && !l.opts.KeepOnError && !errors.Is(err, errCrashed) {
			l.log.Info("deploy failed, removing what it made", "err", err)
			if derr := l.Destroy(context.WithoutCancel(ctx)); derr != nil {
				err = errors.Join(err, fmt.Errorf("cleaning up: %w", derr))
			}
		}
	}()
	start := time.Now()
	if err := l.deployNetwork(ctx); err != nil {
		return err
	}
	if err := l.startNodes(ctx); err != nil {
		return err
	}
	if err := l.waitHealthy(ctx); err != nil {
		return err
	}
	l.log.Info("lab deployed", "nodes", len(l.Topology.Nodes), "links", len(l.Topology.Links), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (l *Lab) deployNetwork(ctx context.Context) error {
	for _, n := range l.Topology.Nodes {
		ns := l.Netns(n.Name)
		l.st.Netns[n.Name] = ns
		if err := l.st.save(); err != nil {
			return err
		}
		created, err := ensureNetns(ns)
		if err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		if created {
			l.log.Debug("netns created", "node", n.Name, "netns", ns)
		}
		if err := l.ensureLoopback(ns); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		if n.Kind == clab.KindBridge {
			if err := l.ensureBridge(n); err != nil {
				return err
			}
		}
	}
	made := 0
	for _, link := range l.Topology.Links {
		if err := ctx.Err(); err != nil {
			return err
		}
		created, err := l.ensureLink(link)
		if err != nil {
			return fmt.Errorf("link %s (line %d): %w", link, link.Line, err)
		}
		if created {
			made++
			if made == l.opts.crashAfterLinks {
				return errCrashed
			}
		}
	}
	return nil
}

func (l *Lab) ensureLoopback(ns string) error {
	_, h, err := nsHandle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	return nil
}

// Destroy removes everything the lab made: processes, namespaces (and with
// them veths and bridges), temporary veths left in the host namespace,
// mount points it created, and its run directory. It works from the state
// file and the topology, so it also cleans up after a crash.
func (l *Lab) Destroy(ctx context.Context) error {
	unlock, err := lockRunDir(l.RunDir)
	if err != nil {
		return err
	}
	defer unlock()
	st, _, err := loadState(l.RunDir)
	if err != nil {
		return err
	}
	nsNames := map[string]bool{}
	for _, n := range l.Topology.Nodes {
		nsNames[l.Netns(n.Name)] = true
	}
	for _, ns := range st.Netns {
		nsNames[ns] = true
	}
	var errs []error
	for ns := range nsNames {
		if _, err := os.Stat(filepath.Join(netnsDir, ns)); err != nil {
			continue
		}
		if isNetns(ns) {
			if err := killNetns(ctx, ns, 3*time.Second); err != nil {
				errs = append(errs, fmt.Errorf("stopping processes in %s: %w", ns, err))
			}
		}
		if err := deleteNetns(ns); err != nil {
			errs = append(errs, err)
		}
	}
	temps := slices.Clone(st.TempLinks)
	for _, link := range l.Topology.Links {
		a, b := tempNames(l.Name, link)
		temps = append(temps, a, b)
	}
	if h, err := netlink.NewHandle(); err == nil {
		if n := deleteHostLinks(h, temps...); n > 0 {
			l.log.Info("removed leftover temporary veths", "count", n)
		}
		h.Close()
	} else {
		errs = append(errs, fmt.Errorf("netlink handle: %w", err))
	}
	if err := l.removeMountpoints(st.BindTargets); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := os.RemoveAll(l.RunDir); err != nil {
		return fmt.Errorf("removing run dir: %w", err)
	}
	l.log.Info("lab destroyed")
	return nil
}

// Destroy removes the lab a topology file describes (see Lab.Destroy).
func Destroy(ctx context.Context, file string, opts Options) error {
	l, err := Open(file, opts)
	if err != nil {
		return err
	}
	return l.Destroy(ctx)
}
