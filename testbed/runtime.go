package testbed

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/torstitch/torstitch/testbed/clab"
)

// Runtime is a deployed lab as the end-to-end scenarios see it, whoever
// realized the topology: torlab's network namespaces (*Lab) or containerlab
// with Docker (*ClabLab). Node names, addresses, links and node scripts are
// the topology file's in both.
type Runtime interface {
	// Kind is "netns" (torlab) or "containerlab".
	Kind() string
	// LabName is the lab name in use.
	LabName() string
	// Topo is the resolved topology.
	Topo() *clab.Topology
	// Exec runs args inside node; combined output, non-zero exit is an error.
	Exec(ctx context.Context, node string, args ...string) ([]byte, error)
	// Shell runs `sh -c cmdline` inside node.
	Shell(ctx context.Context, node, cmdline string) ([]byte, error)
	// Command returns an unstarted long-running command in node's network
	// namespace whose process receives the signals sent to the returned
	// command (torlab: inside the node; containerlab: a host program in
	// the container's network namespace).
	Command(ctx context.Context, node string, args ...string) (*exec.Cmd, error)
	// StopNode stops node (SIGTERM, SIGKILL after grace; with no grace,
	// SIGKILL at once and no SIGTERM: a crash, where no process gets to
	// act on its way out). Its links stay: a crashed or powered-off box.
	// Shell still reaches its network.
	StopNode(ctx context.Context, node string, grace time.Duration) error
	// Kill sends SIGKILL to every process of node at once and returns
	// without waiting for them to exit: a crash, for a scenario that cuts
	// the node's links right after it (StopNode with no grace waits until
	// the processes are gone, which can take a second or more on a loaded
	// machine). The links stay and Shell reaches the node's network;
	// StopNode afterwards waits for the processes, StartNode starts again.
	Kill(ctx context.Context, node string) error
	// StartNode starts node again: its cmd and exec commands, then health.
	StartNode(ctx context.Context, node string) error
	// NodeDir is the host directory bound as __clabNodeDir__ for node.
	NodeDir(node string) string
	// NetnsRef names node's network namespace for `ip link set DEV netns
	// REF` run on the host: a netns name or a pid.
	NetnsRef(node string) (string, error)
	// Logs returns the output of node's cmd so far (torlab: the node's
	// cmd.log; containerlab: docker logs), for timelines and diagnostics.
	Logs(ctx context.Context, node string) ([]byte, error)
	// Signal sends sig to node's processes named comm.
	Signal(ctx context.Context, node, comm string, sig syscall.Signal) error
	// Destroy removes the lab.
	Destroy(ctx context.Context) error
}

var (
	_ Runtime = (*Lab)(nil)
	_ Runtime = (*ClabLab)(nil)
)

// Kind implements Runtime.
func (l *Lab) Kind() string { return "netns" }

// LabName implements Runtime.
func (l *Lab) LabName() string { return l.Name }

// Topo implements Runtime.
func (l *Lab) Topo() *clab.Topology { return l.Topology }

// NetnsRef implements Runtime: the node's named network namespace.
func (l *Lab) NetnsRef(node string) (string, error) {
	if l.Topology.Node(node) == nil {
		return "", fmt.Errorf("no node %q in lab %s", node, l.Name)
	}
	return l.Netns(node), nil
}

// Logs implements Runtime: the node's cmd.log (its cmd's stdout and stderr,
// across restarts).
func (l *Lab) Logs(_ context.Context, node string) ([]byte, error) {
	if l.Topology.Node(node) == nil {
		return nil, fmt.Errorf("no node %q in lab %s", node, l.Name)
	}
	b, err := os.ReadFile(filepath.Join(l.NodeDir(node), "cmd.log"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // a node without cmd
	}
	return b, err
}

// Signal implements Runtime: the processes of node's namespace whose
// /proc/PID/comm is comm.
func (l *Lab) Signal(_ context.Context, node, comm string, sig syscall.Signal) error {
	pids, err := l.PIDs(node)
	if err != nil {
		return err
	}
	n := 0
	for _, pid := range pids {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(b)) == comm {
			if err := syscall.Kill(pid, sig); err == nil {
				n++
			}
		}
	}
	if n == 0 {
		return fmt.Errorf("no %s process in node %s (pids %v)", comm, node, pids)
	}
	return nil
}
