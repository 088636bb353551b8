package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/torstitch/torstitch/testbed/clab"
)

// Environment variables torlab gives every node process, besides the node's
// env. CLAB_INTFS is containerlab's (number of data interfaces).
const (
	EnvLab     = "TORLAB_LAB"
	EnvNode    = "TORLAB_NODE"
	EnvNetns   = "TORLAB_NETNS"
	EnvNodeDir = "TORLAB_NODE_DIR"
)

func (l *Lab) env(n *clab.Node) []string {
	path := append(slices.Clone(l.opts.BinDirs), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
	env := []string{
		"PATH=" + strings.Join(path, ":"),
		"HOME=/root",
		"LANG=C.UTF-8",
		EnvLab + "=" + l.Name,
		EnvNode + "=" + n.Name,
		EnvNetns + "=" + l.Netns(n.Name),
		EnvNodeDir + "=" + l.NodeDir(n.Name),
		"CLAB_INTFS=" + strconv.Itoa(len(l.Topology.Endpoints(n.Name))),
	}
	for _, k := range slices.Sorted(maps.Keys(n.Env)) {
		env = append(env, k+"="+n.Env[k])
	}
	return env
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// wrap returns the argv that runs args inside the node: in its network
// namespace (`ip netns exec`, which also gives the process a private mount
// namespace with /sys of the netns), with the node's binds mounted.
func (l *Lab) wrap(n *clab.Node, args []string) []string {
	var script strings.Builder
	script.WriteString("set -e\n")
	for _, b := range n.Binds {
		fmt.Fprintf(&script, "mount --bind %s %s\n", shellQuote(l.bindSource(n, b)), shellQuote(b.Container))
		if b.ReadOnly {
			fmt.Fprintf(&script, "mount -o remount,bind,ro %s\n", shellQuote(b.Container))
		}
	}
	script.WriteString("cd /\nexec \"$@\"\n")
	return append([]string{"ip", "netns", "exec", l.Netns(n.Name), "/bin/sh", "-c", script.String(), "torlab-" + n.Name}, args...)
}

// Command returns a command that runs args inside node (see wrap); the
// caller starts it. It fails for bridge nodes and unknown nodes.
func (l *Lab) Command(ctx context.Context, node string, args ...string) (*exec.Cmd, error) {
	n := l.Topology.Node(node)
	if n == nil {
		return nil, fmt.Errorf("no node %q in lab %s", node, l.Name)
	}
	if len(args) == 0 {
		return nil, errors.New("no command")
	}
	argv := l.wrap(n, args)
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Env = l.env(n)
	c.WaitDelay = 2 * time.Second
	return c, nil
}

// Exec runs args inside node and returns its combined output; a non-zero
// exit is an error that quotes the output.
func (l *Lab) Exec(ctx context.Context, node string, args ...string) ([]byte, error) {
	c, err := l.Command(ctx, node, args...)
	if err != nil {
		return nil, err
	}
	out, err := c.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s: %s: %w: %s", node, strings.Join(args, " "), err, tail(out, 20))
	}
	return out, nil
}

// Shell runs a shell command line inside node (sh -c).
func (l *Lab) Shell(ctx context.Context, node, cmdline string) ([]byte, error) {
	return l.Exec(ctx, node, "/bin/sh", "-c", cmdline)
}

func tail(b []byte, lines int) string {
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// bindSource resolves containerlab's magic bind sources: __clabDir__ is
// the lab's run directory, __clabNodeDir__ the node's directory in it.
func (l *Lab) bindSource(n *clab.Node, b clab.Bind) string {
	for magic, dir := range map[string]string{clab.MagicNodeDir: l.NodeDir(n.Name), clab.MagicLabDir: l.RunDir} {
		if b.Host == magic || strings.HasPrefix(b.Host, magic+"/") {
			return filepath.Join(dir, strings.TrimPrefix(b.Host, magic))
		}
	}
	return b.Host
}

// ensureMountpoints creates the lab-directory sources of magic binds and
// missing bind targets (registered, removed by the last destroy using them
// while empty).
func (l *Lab) ensureMountpoints(n *clab.Node) error {
	for _, b := range n.Binds {
		if err := l.st.addBindTarget(b.Container); err != nil {
			return err
		}
		src := l.bindSource(n, b)
		if clab.IsMagic(b.Host) {
			if err := os.MkdirAll(src, 0o755); err != nil {
				return fmt.Errorf("node %s: bind source: %w", n.Name, err)
			}
		}
		if err := l.ensureMountpoint(n, src, b.Container); err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) ensureMountpoint(n *clab.Node, src, target string) error {
	reg, err := openMountRegistry(l.opts.RunRoot)
	if err != nil {
		return err
	}
	defer reg.close()
	if _, err := os.Stat(target); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("bind target %s: %w", target, err)
	}
	hi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("node %s: bind source: %w", n.Name, err)
	}
	if !slices.Contains(reg.Paths, target) {
		reg.Paths = append(reg.Paths, target)
		if err := reg.save(); err != nil {
			return err
		}
	}
	if hi.IsDir() {
		err = os.MkdirAll(target, 0o755)
	} else if err = os.MkdirAll(filepath.Dir(target), 0o755); err == nil {
		err = os.WriteFile(target, nil, 0o644)
	}
	if err != nil {
		return fmt.Errorf("creating bind target %s: %w", target, err)
	}
	return nil
}

// removeMountpoints removes the registered mount points this lab used that
// no other lab uses, while they are empty (never data).
func (l *Lab) removeMountpoints(targets []string) error {
	reg, err := openMountRegistry(l.opts.RunRoot)
	if err != nil {
		return err
	}
	defer reg.close()
	kept := reg.Paths[:0]
	for _, p := range reg.Paths {
		if slices.Contains(targets, p) && !mountpointInUse(l.opts.RunRoot, l.Name, p) {
			if err := os.Remove(p); err == nil || errors.Is(err, fs.ErrNotExist) {
				continue
			}
		}
		kept = append(kept, p)
	}
	reg.Paths = kept
	return reg.save()
}

// startNodes starts every linux node's cmd (unless it runs already), then
// runs each node's exec commands in file order (unless they ran already).
func (l *Lab) startNodes(ctx context.Context) error {
	for _, n := range l.Topology.Nodes {
		if n.Kind != clab.KindLinux {
			continue
		}
		if err := os.MkdirAll(l.NodeDir(n.Name), 0o755); err != nil {
			return fmt.Errorf("node dir: %w", err)
		}
		if err := l.ensureMountpoints(n); err != nil {
			return err
		}
		if n.Cmd != "" {
			if err := l.startCmd(ctx, n); err != nil {
				return err
			}
		}
	}
	// exec: nodes in parallel (as containerlab does), commands of one node
	// in order.
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 4)
		errs = make([]error, len(l.Topology.Nodes))
	)
	for i, n := range l.Topology.Nodes {
		if n.Kind != clab.KindLinux || l.st.execDone(n.Name) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			for _, e := range n.Exec {
				if err := l.runExec(ctx, n, e); err != nil {
					errs[i] = err
					return
				}
			}
			errs[i] = l.st.markExecDone(n.Name)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (l *Lab) startCmd(ctx context.Context, n *clab.Node) error {
	if pid := l.st.CmdPID[n.Name]; pid > 0 && l.running(n.Name, pid) {
		return nil
	}
	logf, err := os.OpenFile(filepath.Join(l.NodeDir(n.Name), "cmd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("node %s: cmd log: %w", n.Name, err)
	}
	argv := l.wrap(n, []string{"/bin/sh", "-c", "exec " + n.Cmd})
	// Not bound to ctx: the process outlives this call (and torlab).
	c := exec.Command(argv[0], argv[1:]...)
	c.Env = l.env(n)
	c.Stdout, c.Stderr = logf, logf
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("node %s: starting cmd %q: %w", n.Name, n.Cmd, err)
	}
	go func() { _ = c.Wait(); logf.Close() }()
	l.st.CmdPID[n.Name] = c.Process.Pid
	l.log.Info("cmd started", "node", n.Name, "pid", c.Process.Pid, "cmd", n.Cmd)
	return l.st.save()
}

func (l *Lab) runExec(ctx context.Context, n *clab.Node, cmdline string) error {
	ctx, cancel := context.WithTimeout(ctx, l.opts.ExecTimeout)
	defer cancel()
	c, err := l.Command(ctx, n.Name, "/bin/sh", "-c", cmdline)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	start := time.Now()
	err = c.Run()
	l.appendLog(n.Name, "exec.log", fmt.Sprintf("$ %s\n%s", cmdline, out.String()))
	if err != nil {
		return fmt.Errorf("node %s: exec %q: %w\n%s", n.Name, cmdline, err, tail(out.Bytes(), 30))
	}
	l.log.Info("exec done", "node", n.Name, "cmd", cmdline, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (l *Lab) appendLog(node, name, text string) {
	f, err := os.OpenFile(filepath.Join(l.NodeDir(node), name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.WriteString(text)
}

// running reports whether pid is a live process in node's namespace.
func (l *Lab) running(node string, pid int) bool {
	ino, err := netnsInode(l.Netns(node))
	if err != nil || !alive(pid) {
		return false
	}
	var st syscall.Stat_t
	return syscall.Stat("/proc/"+strconv.Itoa(pid)+"/ns/net", &st) == nil && st.Ino == ino
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}

// waitHealthy waits, for all nodes in parallel, until each linux node's
// cmd runs and its health command (label torlab.health) exits 0.
func (l *Lab) waitHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.opts.HealthTimeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(l.Topology.Nodes))
	for i, n := range l.Topology.Nodes {
		if n.Kind != clab.KindLinux {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.waitNode(ctx, n)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (l *Lab) waitNode(ctx context.Context, n *clab.Node) error {
	check := n.Labels[HealthLabel]
	start := time.Now()
	var last []byte
	for {
		// alive, not running: right after the start the process may still
		// be `ip netns exec`, not yet inside the namespace.
		if pid := l.st.CmdPID[n.Name]; n.Cmd != "" && !alive(pid) {
			log, _ := os.ReadFile(filepath.Join(l.NodeDir(n.Name), "cmd.log"))
			return fmt.Errorf("node %s: cmd %q exited:\n%s", n.Name, n.Cmd, tail(log, 20))
		}
		if check == "" {
			return nil
		}
		out, err := l.Shell(ctx, n.Name, check)
		if err == nil {
			l.log.Info("node healthy", "node", n.Name, "after", time.Since(start).Round(time.Millisecond))
			return nil
		}
		last = out
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return fmt.Errorf("node %s: health check %q not passing after %s: %w\n%s",
				n.Name, check, time.Since(start).Round(time.Second), err, tail(last, 10))
		}
	}
}

// PIDs lists the processes running in node's network namespace.
func (l *Lab) PIDs(node string) ([]int, error) {
	if l.Topology.Node(node) == nil {
		return nil, fmt.Errorf("no node %q in lab %s", node, l.Name)
	}
	return pidsInNetns(l.Netns(node))
}

// StopNode ends every process of node (SIGTERM, then SIGKILL after grace;
// with no grace, SIGKILL alone), leaving its namespace and links in place: a
// crashed or powered-off node.
func (l *Lab) StopNode(ctx context.Context, node string, grace time.Duration) error {
	if l.Topology.Node(node) == nil {
		return fmt.Errorf("no node %q in lab %s", node, l.Name)
	}
	if err := killNetns(ctx, l.Netns(node), grace); err != nil {
		return err
	}
	l.mu.Lock()
	killed := l.killed[node]
	delete(l.killed, node)
	l.mu.Unlock()
	waitGone(ctx, killed) // an exiting process leaves the namespace before it is reaped
	return nil
}

// Kill implements Runtime: SIGKILL to every process in node's network
// namespace, not waited for (StopNode does).
func (l *Lab) Kill(ctx context.Context, node string) error {
	if l.Topology.Node(node) == nil {
		return fmt.Errorf("no node %q in lab %s", node, l.Name)
	}
	pids, err := pidsInNetns(l.Netns(node))
	if err != nil {
		return err
	}
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	l.mu.Lock()
	if l.killed == nil {
		l.killed = map[string][]int{}
	}
	l.killed[node] = append(l.killed[node], pids...)
	l.mu.Unlock()
	return nil
}

// StartNode runs node's cmd and exec commands again (after StopNode) and
// waits for its health.
func (l *Lab) StartNode(ctx context.Context, node string) error {
	n := l.Topology.Node(node)
	if n == nil || n.Kind != clab.KindLinux {
		return fmt.Errorf("no linux node %q in lab %s", node, l.Name)
	}
	unlock, err := lockRunDir(l.RunDir)
	if err != nil {
		return err
	}
	defer unlock()
	st, _, err := loadState(l.RunDir)
	if err != nil {
		return err
	}
	l.st = st
	if n.Cmd != "" {
		if err := l.startCmd(ctx, n); err != nil {
			return err
		}
	}
	for _, e := range n.Exec {
		if err := l.runExec(ctx, n, e); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, l.opts.HealthTimeout)
	defer cancel()
	return l.waitNode(ctx, n)
}
