package testbed

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
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

// ClabEnv says how to reach containerlab and its Docker engine: what
// containerlab/setup/clab-env.sh prints (and writes to /run/torstitch-clab/env).
type ClabEnv struct {
	// DockerHost is the engine's DOCKER_HOST.
	DockerHost string
	// Clab is the containerlab command (clab-env.sh's wrapper runs the
	// real one in dockerd's network namespace).
	Clab string
	// Netns is the network namespace dockerd and containerlab run in, where
	// bridge nodes' host bridges live; "" is the host's.
	Netns string
}

// LoadClabEnv runs the set-up script with verb "status" (an engine and
// containerlab are usable, nothing changes) or "up" (install and start what
// is missing) and reads the environment it prints.
func LoadClabEnv(ctx context.Context, script, verb string) (ClabEnv, error) {
	var env ClabEnv
	c := exec.CommandContext(ctx, script, verb)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return env, fmt.Errorf("%s %s: %w: %s", script, verb, err, tail(stderr.Bytes(), 20))
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export "), "=")
		if !ok {
			continue
		}
		switch k {
		case "DOCKER_HOST":
			env.DockerHost = v
		case "CLAB":
			env.Clab = v
		case "CLAB_NETNS":
			env.Netns = v
		}
	}
	if env.Clab == "" || env.DockerHost == "" {
		return env, fmt.Errorf("%s %s printed no CLAB/DOCKER_HOST:\n%s", script, verb, out)
	}
	return env, nil
}

// ClabOptions tune a containerlab deployment.
type ClabOptions struct {
	// Name overrides the lab name of the file (containerlab --name).
	Name string
	Env  ClabEnv
	// HealthTimeout bounds the wait for the nodes' torlab.health checks,
	// run inside the containers (see Exec); default 2m.
	HealthTimeout time.Duration
	// ExecTimeout bounds each exec command rerun by StartNode; default 2m.
	ExecTimeout time.Duration
	Logger      *slog.Logger
}

// ClabLab is a lab deployed by containerlab: one container per linux node
// (named PREFIX-LAB-NODE), a host bridge (in Env.Netns) per bridge node.
type ClabLab struct {
	Topology *clab.Topology
	Name     string
	// LabDir is containerlab's lab directory, clab-LAB beside the file;
	// LabDir/NODE is __clabNodeDir__.
	LabDir string

	opts ClabOptions
	log  *slog.Logger

	mu   sync.Mutex
	pids map[string]int      // container pids
	envs map[string][]string // their environments
	held map[string]string   // stopped node -> its held network namespace
	// killed: nodes whose container init (this pid) was killed from the
	// host (Kill) and that docker has not yet been asked to stop;
	// StartNode does that first.
	killed map[string]int
}

// heldRoot holds bind mounts of stopped containers' network namespaces.
const heldRoot = "/run/torstitch-clab/held"

// OpenContainerlab loads a topology for containerlab without deploying.
func OpenContainerlab(file string, opts ClabOptions) (*ClabLab, error) {
	t, err := clab.Load(file)
	if err != nil {
		return nil, err
	}
	if opts.Name != "" {
		t.Name = opts.Name
	}
	expandNames(t)
	if opts.HealthTimeout == 0 {
		opts.HealthTimeout = 2 * time.Minute
	}
	if opts.ExecTimeout == 0 {
		opts.ExecTimeout = 2 * time.Minute
	}
	if opts.Env.Clab == "" {
		opts.Env.Clab = "containerlab"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &ClabLab{
		Topology: t, Name: t.Name, LabDir: filepath.Join(t.Dir, "clab-"+t.Name),
		opts: opts, log: log.With("lab", t.Name, "runtime", "containerlab"),
		pids: map[string]int{}, envs: map[string][]string{}, held: map[string]string{},
		killed: map[string]int{},
	}, nil
}

// PrepareContainerlab makes what containerlab expects to exist before
// `containerlab deploy -t FILE` but does not create itself: the lab
// directory's node directories that binds of __clabNodeDir__ (and
// __clabDir__) name (containerlab checks bind sources before it creates
// them), and a Linux bridge for each bridge node, in network namespace
// netns ("" = the current one). torlab creates the same directories under
// its run root; `torlab prepare FILE` runs this step.
func PrepareContainerlab(ctx context.Context, t *clab.Topology, netns string) error {
	labDir := filepath.Join(t.Dir, "clab-"+t.Name)
	for _, n := range t.Nodes {
		for _, b := range n.Binds {
			var dir string
			switch {
			case b.Host == clab.MagicNodeDir || strings.HasPrefix(b.Host, clab.MagicNodeDir+"/"):
				dir = filepath.Join(labDir, n.Name, strings.TrimPrefix(b.Host, clab.MagicNodeDir))
			case b.Host == clab.MagicLabDir || strings.HasPrefix(b.Host, clab.MagicLabDir+"/"):
				dir = filepath.Join(labDir, strings.TrimPrefix(b.Host, clab.MagicLabDir))
			default:
				continue
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
		}
		if n.Kind == clab.KindBridge {
			if _, err := ipIn(ctx, netns, "link", "show", n.Name); err != nil {
				if out, err := ipIn(ctx, netns, "link", "add", n.Name, "type", "bridge"); err != nil {
					return fmt.Errorf("bridge %s: %w: %s", n.Name, err, out)
				}
			}
			if out, err := ipIn(ctx, netns, "link", "set", n.Name, "up"); err != nil {
				return fmt.Errorf("bridge %s: %w: %s", n.Name, err, out)
			}
		}
	}
	return nil
}

func ipIn(ctx context.Context, netns string, args ...string) ([]byte, error) {
	if netns != "" {
		args = append([]string{"-n", netns}, args...)
	}
	return exec.CommandContext(ctx, "ip", args...).CombinedOutput()
}

// DeployContainerlab prepares the topology (PrepareContainerlab), runs
// `containerlab deploy` and waits until every container runs and every
// node's torlab.health check passes inside it (see Exec), as torlab does.
func DeployContainerlab(ctx context.Context, file string, opts ClabOptions) (*ClabLab, error) {
	l, err := OpenContainerlab(file, opts)
	if err != nil {
		return nil, err
	}
	return l, l.Deploy(ctx)
}

// Deploy implements DeployContainerlab on an opened lab.
func (l *ClabLab) Deploy(ctx context.Context) error {
	start := time.Now()
	if err := PrepareContainerlab(ctx, l.Topology, l.opts.Env.Netns); err != nil {
		return err
	}
	out, err := l.clab(ctx, "deploy", "-t", l.Topology.File, "--name", l.Name)
	if err != nil {
		return fmt.Errorf("containerlab deploy: %w\n%s", err, tail(out, 30))
	}
	l.log.Info("containerlab deployed", "in", time.Since(start).Round(time.Millisecond))
	if err := l.waitHealthy(ctx, l.Topology.Nodes); err != nil {
		return err
	}
	l.log.Info("healthy", "in", time.Since(start).Round(time.Millisecond))
	return nil
}

func (l *ClabLab) clab(ctx context.Context, args ...string) ([]byte, error) {
	c := exec.CommandContext(ctx, l.opts.Env.Clab, args...)
	c.Env = append(os.Environ(), "DOCKER_HOST="+l.opts.Env.DockerHost)
	c.WaitDelay = 5 * time.Second
	return c.CombinedOutput()
}

func (l *ClabLab) docker(ctx context.Context, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, "docker", args...)
	c.Env = append(os.Environ(), "DOCKER_HOST="+l.opts.Env.DockerHost)
	c.WaitDelay = 2 * time.Second
	return c
}

// Container is the container name of node (containerlab's PREFIX-LAB-NODE).
func (l *ClabLab) Container(node string) string {
	return NetnsName(l.Topology.Prefix, l.Name, node)
}

func (l *ClabLab) linuxNode(node string) (*clab.Node, error) {
	n := l.Topology.Node(node)
	if n == nil || n.Kind != clab.KindLinux {
		return nil, fmt.Errorf("no linux node %q in lab %s", node, l.Name)
	}
	return n, nil
}

// PID returns the pid of node's container (its init), asking Docker.
func (l *ClabLab) PID(ctx context.Context, node string) (int, error) {
	if _, err := l.linuxNode(node); err != nil {
		return 0, err
	}
	out, err := l.docker(ctx, "inspect", "-f", "{{.State.Pid}}", l.Container(node)).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("docker inspect %s: %w: %s", l.Container(node), err, out)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || pid == 0 {
		return 0, fmt.Errorf("container %s is not running", l.Container(node))
	}
	l.mu.Lock()
	if l.pids[node] != pid {
		delete(l.envs, node)
	}
	l.pids[node] = pid
	l.mu.Unlock()
	return pid, nil
}

func (l *ClabLab) heldNetns(node string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held[node]
}

// Kind implements Runtime.
func (l *ClabLab) Kind() string { return "containerlab" }

// LabName implements Runtime.
func (l *ClabLab) LabName() string { return l.Name }

// Topo implements Runtime.
func (l *ClabLab) Topo() *clab.Topology { return l.Topology }

// NodeDir implements Runtime: LabDir/NODE, the source of __clabNodeDir__.
func (l *ClabLab) NodeDir(node string) string { return filepath.Join(l.LabDir, node) }

// Logs implements Runtime: docker logs of node's container (its cmd's
// stdout and stderr).
func (l *ClabLab) Logs(ctx context.Context, node string) ([]byte, error) {
	if _, err := l.linuxNode(node); err != nil {
		return nil, err
	}
	out, err := l.docker(ctx, "logs", l.Container(node)).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("docker logs %s: %w: %s", l.Container(node), err, out)
	}
	return out, nil
}

// NetnsRef implements Runtime: the container's pid.
func (l *ClabLab) NetnsRef(node string) (string, error) {
	pid, err := l.PID(context.Background(), node)
	return strconv.Itoa(pid), err
}

// Exec implements Runtime: like docker exec (the container's namespaces,
// root and environment: /proc/PID/environ of its init) but with nsenter,
// which costs one fork instead of a round trip through dockerd,
// containerd and runc; on this 2-core machine the scenarios' polling
// loops through docker exec (about 1 s of CPU each under load) slowed the
// lab itself. On a stopped node (StopNode) the command runs from the host
// in the node's kept network namespace.
func (l *ClabLab) Exec(ctx context.Context, node string, args ...string) ([]byte, error) {
	if _, err := l.linuxNode(node); err != nil {
		return nil, err
	}
	if len(args) == 0 {
		return nil, errors.New("no command")
	}
	var c *exec.Cmd
	if h := l.heldNetns(node); h != "" {
		c = exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + h, "--"}, args...)...)
	} else {
		pid, env, err := l.initProc(ctx, node)
		if err != nil {
			return nil, err
		}
		c = exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(pid),
			"-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w", "--"}, args...)...)
		c.Env = env
	}
	c.WaitDelay = 2 * time.Second
	out, err := c.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s: %s: %w: %s", node, strings.Join(args, " "), err, tail(out, 20))
	}
	return out, nil
}

// initProc returns the pid of node's container init (cached until the
// node is stopped or restarted) and its environment.
func (l *ClabLab) initProc(ctx context.Context, node string) (int, []string, error) {
	l.mu.Lock()
	pid, env := l.pids[node], l.envs[node]
	l.mu.Unlock()
	if pid != 0 && env != nil {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil {
			return pid, env, nil
		}
	}
	pid, err := l.PID(ctx, node)
	if err != nil {
		return 0, nil, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return 0, nil, fmt.Errorf("node %s: %w", node, err)
	}
	env = strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	l.mu.Lock()
	l.envs[node] = env
	l.mu.Unlock()
	return pid, env, nil
}

// Shell implements Runtime.
func (l *ClabLab) Shell(ctx context.Context, node, cmdline string) ([]byte, error) {
	return l.Exec(ctx, node, "/bin/sh", "-c", cmdline)
}

// Command implements Runtime: a host program run in the container's network
// namespace (nsenter -n), as torlab runs host programs in a node's
// namespace. docker exec would not pass signals on to the process, and
// nsenter into the container's pid namespace would not either; entering
// its mount namespace without its pid namespace would let tools that check
// pid files (ovs-appctl) judge the container's pids by the host's.
func (l *ClabLab) Command(ctx context.Context, node string, args ...string) (*exec.Cmd, error) {
	n, err := l.linuxNode(node)
	if err != nil {
		return nil, err
	}
	if len(args) == 0 {
		return nil, errors.New("no command")
	}
	pid, err := l.PID(ctx, node)
	if err != nil {
		return nil, err
	}
	c := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(pid), "-n", "--"}, args...)...)
	c.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}
	for _, k := range slices.Sorted(maps.Keys(n.Env)) {
		c.Env = append(c.Env, k+"="+n.Env[k])
	}
	c.WaitDelay = 2 * time.Second
	return c, nil
}

// Signal implements Runtime (pkill -x inside the container).
func (l *ClabLab) Signal(ctx context.Context, node, comm string, sig syscall.Signal) error {
	_, err := l.Exec(ctx, node, "pkill", "-"+strconv.Itoa(int(sig)), "-x", comm)
	return err
}

// StopNode implements Runtime with docker stop. Docker would delete the
// container's network namespace and with it the node's links; a bind mount
// of the namespace keeps it, with the veths and their state, until
// StartNode moves them into the new container (torlab keeps a stopped
// node's namespace the same way). With no grace (a crash) it is Kill, then
// the wait until the container's init is gone.
func (l *ClabLab) StopNode(ctx context.Context, node string, grace time.Duration) error {
	if grace <= 0 {
		if err := l.Kill(ctx, node); err != nil {
			return err
		}
	}
	l.mu.Lock()
	pid, killed := l.killed[node]
	l.mu.Unlock()
	if killed {
		waitGone(ctx, []int{pid})
		return nil
	}
	if _, err := l.hold(ctx, node); err != nil {
		return err
	}
	secs := int((grace + time.Second - 1) / time.Second)
	if out, err := l.docker(ctx, "stop", "-t", strconv.Itoa(secs), l.Container(node)).CombinedOutput(); err != nil {
		return fmt.Errorf("docker stop %s: %w: %s", node, err, out)
	}
	l.mu.Lock()
	delete(l.pids, node)
	delete(l.envs, node)
	l.mu.Unlock()
	return nil
}

// Kill implements Runtime: the container's init is killed from the host,
// which ends its whole pid namespace at once; docker is told at the next
// StartNode. (docker stop -t 0 would send SIGTERM first, and only half a
// second or more after the call on a loaded machine: the node's daemons
// would act on it, and its links would be cut that much later.)
func (l *ClabLab) Kill(ctx context.Context, node string) error {
	l.mu.Lock()
	_, done := l.killed[node]
	l.mu.Unlock()
	if done {
		return nil
	}
	pid, err := l.hold(ctx, node)
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing %s (pid %d): %w", node, pid, err)
	}
	l.mu.Lock()
	l.killed[node] = pid
	delete(l.pids, node)
	delete(l.envs, node)
	l.mu.Unlock()
	return nil
}

// hold keeps node's network namespace (a bind mount) for Exec and
// StartNode while the container is down; it returns the container's init.
func (l *ClabLab) hold(ctx context.Context, node string) (int, error) {
	pid, _, err := l.initProc(ctx, node)
	if err != nil {
		return 0, err
	}
	if l.heldNetns(node) != "" {
		return pid, nil
	}
	hold := filepath.Join(heldRoot, l.Container(node))
	if err := os.MkdirAll(heldRoot, 0o755); err != nil {
		return 0, err
	}
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		return 0, err
	}
	if err := syscall.Mount(fmt.Sprintf("/proc/%d/ns/net", pid), hold, "", syscall.MS_BIND, ""); err != nil {
		return 0, fmt.Errorf("keeping %s's network namespace: %w", node, err)
	}
	l.mu.Lock()
	l.held[node] = hold
	l.mu.Unlock()
	return pid, nil
}

// StartNode implements Runtime: docker start, the node's veths moved back
// from the kept namespace (admin state as they are now; addresses are the
// node scripts' job), its exec commands run again, then its health check.
func (l *ClabLab) StartNode(ctx context.Context, node string) error {
	n, err := l.linuxNode(node)
	if err != nil {
		return err
	}
	l.mu.Lock()
	_, killed := l.killed[node]
	delete(l.killed, node)
	l.mu.Unlock()
	if killed { // docker may not have seen the exit yet: stop returns once it has
		if out, err := l.docker(ctx, "stop", "-t", "0", l.Container(node)).CombinedOutput(); err != nil {
			return fmt.Errorf("docker stop %s (killed): %w: %s", node, err, out)
		}
	}
	if out, err := l.docker(ctx, "start", l.Container(node)).CombinedOutput(); err != nil {
		return fmt.Errorf("docker start %s: %w: %s", node, err, out)
	}
	pid, err := l.PID(ctx, node)
	if err != nil {
		return err
	}
	if hold := l.heldNetns(node); hold != "" {
		if err := l.moveLinks(ctx, hold, pid); err != nil {
			return fmt.Errorf("node %s: %w", node, err)
		}
		l.release(node)
	}
	for _, e := range n.Exec {
		ectx, cancel := context.WithTimeout(ctx, l.opts.ExecTimeout)
		out, err := l.Shell(ectx, node, e)
		cancel()
		if err != nil {
			return fmt.Errorf("node %s: exec %q: %w", node, e, err)
		}
		l.log.Debug("exec", "node", node, "cmd", e, "out", string(out))
	}
	return l.waitHealthy(ctx, []*clab.Node{n})
}

func (l *ClabLab) moveLinks(ctx context.Context, hold string, pid int) error {
	out, err := exec.CommandContext(ctx, "nsenter", "--net="+hold, "ip", "-j", "link", "show", "type", "veth").Output()
	if err != nil {
		return fmt.Errorf("listing kept links: %w", err)
	}
	var links []struct {
		Name  string   `json:"ifname"`
		Flags []string `json:"flags"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return fmt.Errorf("listing kept links: %w: %s", err, out)
	}
	for _, ln := range links {
		if ln.Name == "eth0" { // the management interface: Docker makes a new one
			continue
		}
		if out, err := exec.CommandContext(ctx, "nsenter", "--net="+hold, "ip", "link", "set", ln.Name, "netns", strconv.Itoa(pid)).CombinedOutput(); err != nil {
			return fmt.Errorf("moving %s back: %w: %s", ln.Name, err, out)
		}
		up := false
		for _, f := range ln.Flags {
			up = up || f == "UP"
		}
		if up {
			if out, err := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(pid), "-n", "ip", "link", "set", ln.Name, "up").CombinedOutput(); err != nil {
				return fmt.Errorf("%s up: %w: %s", ln.Name, err, out)
			}
		}
	}
	return nil
}

func (l *ClabLab) release(node string) {
	l.mu.Lock()
	hold := l.held[node]
	delete(l.held, node)
	l.mu.Unlock()
	if hold != "" {
		_ = syscall.Unmount(hold, syscall.MNT_DETACH)
		_ = os.Remove(hold)
	}
}

// waitHealthy waits until each node's container runs and its torlab.health
// command exits 0 inside it (as Exec runs it: the container's namespaces
// and environment; `docker exec CONTAINER sh -c CHECK` does the same),
// polling every 250 ms.
func (l *ClabLab) waitHealthy(ctx context.Context, nodes []*clab.Node) error {
	ctx, cancel := context.WithTimeout(ctx, l.opts.HealthTimeout)
	defer cancel()
	errs := make(chan error, len(nodes))
	var wg sync.WaitGroup
	for _, n := range nodes {
		if n.Kind != clab.KindLinux {
			continue
		}
		wg.Go(func() { errs <- l.waitNode(ctx, n) })
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		if err != nil {
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}

func (l *ClabLab) waitNode(ctx context.Context, n *clab.Node) error {
	start := time.Now()
	check := n.Labels[HealthLabel]
	var last []byte
	var lastErr error
	for {
		var err error
		if _, _, err = l.initProc(ctx, n.Name); err == nil && check != "" {
			last, err = l.Shell(ctx, n.Name, check)
		}
		if err == nil {
			return nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s: health check %q not passing after %s: %w\n%s",
				n.Name, check, time.Since(start).Round(time.Second), lastErr, tail(last, 10))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Inspect returns `containerlab inspect` of the lab (its table).
func (l *ClabLab) Inspect(ctx context.Context) ([]byte, error) {
	return l.clab(ctx, "inspect", "--name", l.Name)
}

// Destroy implements Runtime: `containerlab destroy --cleanup` (containers
// and the lab directory), the kept namespaces of stopped nodes and the
// bridge nodes' host bridges. It works on a lab that is not (fully) there.
func (l *ClabLab) Destroy(ctx context.Context) error {
	var errs []error
	// By name: with -t, destroy looks for the file's own lab name.
	if out, err := l.clab(ctx, "destroy", "--name", l.Name, "--cleanup"); err != nil {
		errs = append(errs, fmt.Errorf("containerlab destroy: %w\n%s", err, tail(out, 20)))
	}
	for _, n := range l.Topology.Nodes {
		l.release(n.Name)
		// kept namespaces of an earlier process (a crashed test)
		hold := filepath.Join(heldRoot, l.Container(n.Name))
		if _, err := os.Stat(hold); err == nil {
			_ = syscall.Unmount(hold, syscall.MNT_DETACH)
			_ = os.Remove(hold)
		}
		if n.Kind == clab.KindBridge {
			if _, err := ipIn(ctx, l.opts.Env.Netns, "link", "show", n.Name); err == nil {
				if out, err := ipIn(ctx, l.opts.Env.Netns, "link", "del", n.Name); err != nil {
					errs = append(errs, fmt.Errorf("bridge %s: %w: %s", n.Name, err, out))
				}
			}
		}
	}
	if err := os.RemoveAll(l.LabDir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
