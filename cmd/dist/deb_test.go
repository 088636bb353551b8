package dist

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A clean Debian root: `debootstrap --variant=minbase bookworm` as a tar,
// made by containerlab/setup/clab-env.sh up (make test runs it as root).
func baseTar() string {
	c := os.Getenv("TORSTITCH_CACHE")
	if c == "" {
		c = "/var/cache/torstitch"
	}
	return filepath.Join(c, "debian-bookworm-minbase.tar")
}

// stdPath is the PATH dpkg and the maintainer scripts run with in the root.
const stdPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// sandboxScript runs a unit's command the way systemd would run it, as far as
// the unit's options can be had without systemd: in its own mount and
// network namespace (lo up), with the unit's StateDirectory and
// RuntimeDirectory created and writable, the rest of the root read-only
// (ProtectSystem=strict), a private /tmp, its UMask, and (setpriv, in the
// root) its capability bounding and ambient sets and NoNewPrivileges.
// SANDBOX_ADDRS: addresses to put on lo (the configuration's own).
//
//	sh sandbox.sh ROOT STATEDIR:MODE RUNTIMEDIR:MODE UMASK CAPS NNP(yes|no) COMMAND...
const sandboxScript = `set -e
R=$1 state=$2 runtime=$3 umask=$4 caps=$5 nnp=$6; shift 6
ip link set lo up
for a in $SANDBOX_ADDRS; do ip addr add "$a" dev lo; done
if [ -n "$state" ]; then mkdir -p "$R/var/lib/${state%%:*}"; chmod "${state##*:}" "$R/var/lib/${state%%:*}"; fi
mount --bind "$R" "$R"
mount -o remount,bind,ro "$R"
mount -t proc proc "$R/proc"
mount -t tmpfs -o mode=0755 tmpfs "$R/run"
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
if [ -n "$runtime" ]; then mkdir -m "${runtime##*:}" "$R/run/${runtime%%:*}"; fi
# A bind mount inherits the read-only flag of its source's mount: remount rw.
if [ -n "$state" ]; then mount --bind "$R/var/lib/${state%%:*}" "$R/var/lib/${state%%:*}" &&
	mount -o remount,bind,rw "$R/var/lib/${state%%:*}"; fi
umask "$umask"
nnp_flag=; [ "$nnp" = yes ] && nnp_flag=--no-new-privs
cd "$R"
exec env -i ` + stdPath + ` chroot "$R" setpriv --bounding-set "$caps" --inh-caps "$caps" --ambient-caps "$caps" $nnp_flag "$@"
`

// TestDebInstallsAndStarts builds the Debian package with `make deb` and
// installs it with `dpkg -i` into a clean Debian root (minbase bookworm, see
// baseTar), so its maintainer scripts run and its dependencies are checked.
// There it runs the units' commands with the units' capabilities and
// directories (sandboxScript): toragent's ExecStartPre, then its ExecStart
// with the example configuration until its API (torctl version) and /metrics
// answer, then stops it with SIGTERM; torswitch --version and its ExecStart
// without the recommended openvswitch-common. The unit files pass
// `systemd-analyze verify` when the host has it. Then `dpkg -r` must leave
// only the configuration files and `dpkg --purge` nothing.
// Root only (chroot, namespaces, mounts); skipped without the Debian root.
func TestDebInstallsAndStarts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (dpkg into a chroot, namespaces, mounts); run as root via make test")
	}
	if _, err := os.Stat(baseTar()); err != nil {
		t.Skipf("no clean Debian root %s: containerlab/setup/clab-env.sh up makes it (make test runs it as root unless CONTAINERLAB=0)", baseTar())
	}
	for _, c := range []string{"make", "dpkg-deb", "unshare", "nsenter", "chroot", "tar", "ip"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("%s not found", c)
		}
	}
	start := time.Now()
	out := t.TempDir()
	mk := exec.Command("make", "-C", "../..", "deb", "BIN="+out)
	if b, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, b)
	}
	debs, _ := filepath.Glob(filepath.Join(out, "torstitch_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb made %v", debs)
	}
	info, err := exec.Command("dpkg-deb", "-f", debs[0], "Package", "Version", "Depends", "Recommends").CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb -f: %v\n%s", err, info)
	}
	t.Logf("make deb %v: %s\n%s", time.Since(start).Round(time.Millisecond), filepath.Base(debs[0]), info)

	root := t.TempDir()
	if b, err := exec.Command("tar", "-xf", baseTar(), "-C", root).CombinedOutput(); err != nil {
		t.Fatalf("unpacking the Debian root: %v\n%s", err, b)
	}
	before := tree(t, root)
	// A stand-in systemctl that records its calls, and the directory whose
	// presence tells the maintainer scripts systemd runs.
	if err := os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/local/bin/systemctl"),
		[]byte("#!/bin/sh\necho \"$*\" >>/var/log/fake-systemctl.log\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	deb, err := os.ReadFile(debs[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "tmp/torstitch.deb"), deb, 0o644); err != nil {
		t.Fatal(err)
	}
	// inRoot runs a command chrooted in root, in a mount namespace of its own
	// with /proc, offline.
	inRoot := func(args ...string) (string, error) {
		cmd := exec.Command("unshare", append([]string{"--mount", "--net", "--mount-proc=" + filepath.Join(root, "proc"),
			"chroot", root}, args...)...)
		cmd.Dir = root
		cmd.Env = []string{stdPath, "LC_ALL=C"}
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	systemctlCalls := func() string {
		b, _ := os.ReadFile(filepath.Join(root, "var/log/fake-systemctl.log"))
		os.Remove(filepath.Join(root, "var/log/fake-systemctl.log"))
		return strings.TrimSpace(string(b))
	}
	status := func() string {
		got, _ := inRoot("dpkg-query", "-W", "-f=${Status}", "torstitch")
		return strings.TrimSpace(got)
	}

	// dpkg -i: unpack, dependencies, conffiles, postinst.
	if got, err := inRoot("dpkg", "-i", "/tmp/torstitch.deb"); err != nil {
		t.Fatalf("dpkg -i in a clean Debian root: %v\n%s", err, got)
	} else {
		t.Logf("dpkg -i:\n%s", got)
	}
	if s := status(); s != "install ok installed" {
		t.Fatalf("after dpkg -i: status %q", s)
	}
	if c := systemctlCalls(); c != "daemon-reload" {
		t.Errorf("postinst called systemctl %q, want daemon-reload", c)
	}
	conff, _ := inRoot("dpkg-query", "-W", "-f=${Conffiles}", "torstitch")
	for _, f := range []string{"/etc/torstitch/toragent.yaml", "/etc/default/torswitch"} {
		if !strings.Contains(conff, f+" ") {
			t.Errorf("%s is not a conffile: %q", f, conff)
		}
	}
	for _, f := range []string{"usr/bin/toragent", "usr/bin/torctl", "usr/bin/torswitch", "etc/torstitch/toragent.yaml",
		"etc/default/torswitch", "lib/systemd/system/toragent.service", "lib/systemd/system/torswitch.service",
		"usr/share/man/man8/toragent.8", "usr/share/man/man1/torctl.1", "usr/share/bash-completion/completions/torctl"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("package lacks /%s", f)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "etc/torstitch/toragent.yaml")); err == nil && fi.Mode().Perm() != 0o640 {
		t.Errorf("/etc/torstitch/toragent.yaml mode %v, want 0640", fi.Mode().Perm())
	}

	// Reinstalling (an upgrade's path through the scripts) keeps an edited
	// configuration and restarts the daemons that run.
	conf := filepath.Join(root, "etc/torstitch/toragent.yaml")
	orig, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	edited := append(slices.Clip(orig), "# edited by the operator\n"...)
	if err := os.WriteFile(conf, edited, 0o640); err != nil {
		t.Fatal(err)
	}
	if got, err := inRoot("dpkg", "-i", "/tmp/torstitch.deb"); err != nil {
		t.Fatalf("dpkg -i over the installed package: %v\n%s", err, got)
	}
	if b, _ := os.ReadFile(conf); !bytes.Equal(b, edited) {
		t.Errorf("reinstall replaced the edited /etc/torstitch/toragent.yaml")
	}
	if c := systemctlCalls(); c != "daemon-reload\ndaemon-reload\ntry-restart toragent.service torswitch.service" {
		t.Errorf("reinstall called systemctl %q, want daemon-reload (postrm), daemon-reload and try-restart (postinst)", c)
	}
	if err := os.WriteFile(conf, orig, 0o640); err != nil {
		t.Fatal(err)
	}

	agentUnit := readUnit(t, filepath.Join(root, "lib/systemd/system/toragent.service"))
	switchUnit := readUnit(t, filepath.Join(root, "lib/systemd/system/torswitch.service"))
	verifyUnits(t, root)

	script := filepath.Join(t.TempDir(), "sandbox.sh")
	if err := os.WriteFile(script, []byte(sandboxScript), 0o644); err != nil {
		t.Fatal(err)
	}
	// sandboxed returns the command running argv under u's options.
	sandboxed := func(u map[string]string, argv []string) *exec.Cmd {
		caps := "-all"
		for _, c := range strings.Fields(u["CapabilityBoundingSet"]) {
			caps += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
		}
		if u["AmbientCapabilities"] != u["CapabilityBoundingSet"] {
			t.Errorf("AmbientCapabilities %q differ from CapabilityBoundingSet %q: the sandbox gives both the latter",
				u["AmbientCapabilities"], u["CapabilityBoundingSet"])
		}
		dir := func(name, mode string) string {
			if u[name] == "" {
				return ""
			}
			if mode == "" {
				mode = "0755"
			}
			return u[name] + ":" + mode
		}
		umask := u["UMask"]
		if umask == "" {
			umask = "0022"
		}
		if u["ProtectSystem"] != "strict" || u["PrivateTmp"] != "yes" {
			t.Errorf("unit's ProtectSystem %q PrivateTmp %q: the sandbox emulates strict and yes", u["ProtectSystem"], u["PrivateTmp"])
		}
		args := append([]string{"--mount", "--net", "sh", script, root, dir("StateDirectory", u["StateDirectoryMode"]),
			dir("RuntimeDirectory", u["RuntimeDirectoryMode"]), umask, caps, u["NoNewPrivileges"]}, argv...)
		cmd := exec.Command("unshare", args...)
		cmd.Env = []string{stdPath}
		return cmd
	}

	// toragent: ExecStartPre, then ExecStart until its API and metrics answer.
	pre := sandboxed(agentUnit, strings.Fields(agentUnit["ExecStartPre"]))
	if got, err := pre.CombinedOutput(); err != nil || !strings.Contains(string(got), "configuration OK") {
		t.Errorf("toragent.service ExecStartPre %q: %v\n%s", agentUnit["ExecStartPre"], err, got)
	}
	if !strings.HasPrefix(agentUnit["ExecStart"], "/usr/bin/toragent --config /etc/torstitch/toragent.yaml") {
		t.Errorf("toragent.service ExecStart %q", agentUnit["ExecStart"])
	}
	runAgent(t, sandboxed(agentUnit, strings.Fields(agentUnit["ExecStart"])), agentUnit)

	for _, prog := range []string{"toragent", "torctl", "torswitch"} {
		got, err := inRoot("/usr/bin/"+prog, "--version")
		if err != nil || !strings.HasPrefix(got, prog+" v") {
			t.Errorf("%s --version: %v %q", prog, err, got)
		}
	}
	// torctl without an agent: its own version, the agent's error on stderr.
	if got, err := inRoot("/usr/bin/torctl", "version"); err != nil || !strings.Contains(got, "torctl    v") {
		t.Errorf("torctl version: %v %q", err, got)
	}

	// torswitch: its unit's command with /etc/default/torswitch. The clean
	// root lacks openvswitch-common (only recommended): it must say what it
	// misses and exit, not crash.
	if !strings.HasPrefix(switchUnit["ExecStart"], "/usr/bin/torswitch ") || !strings.Contains(switchUnit["CapabilityBoundingSet"], "CAP_NET_ADMIN") {
		t.Errorf("torswitch.service: %v", switchUnit)
	}
	if got, err := sandboxed(switchUnit, []string{"/usr/bin/torswitch", "--version"}).CombinedOutput(); err != nil || !strings.HasPrefix(string(got), "torswitch v") {
		t.Errorf("torswitch --version under its unit's options: %v %q", err, got)
	}
	argv := expandExec(t, switchUnit["ExecStart"], readEnvFile(t, filepath.Join(root, "etc/default/torswitch")))
	sw := sandboxed(switchUnit, argv)
	for i, a := range argv {
		if a == "--tunnel-ip" && i+1 < len(argv) {
			sw.Env = append(sw.Env, "SANDBOX_ADDRS="+argv[i+1]+"/32")
		}
	}
	got, err := runBounded(sw, 30*time.Second)
	if code := exitCode(err); code != 1 || !strings.Contains(got, "ovsdb-server") || !strings.Contains(got, "openvswitch-common") || strings.Contains(got, "panic") {
		t.Errorf("torswitch.service ExecStart %q without openvswitch-common: exit %d, want 1 naming ovsdb-server and openvswitch-common\n%s", argv, code, got)
	} else {
		t.Logf("torswitch without openvswitch-common: %s", strings.TrimSpace(got))
	}

	// dpkg -r keeps the configuration; --purge leaves nothing of the package.
	if got, err := inRoot("dpkg", "-r", "torstitch"); err != nil {
		t.Fatalf("dpkg -r: %v\n%s", err, got)
	}
	if s := status(); s != "deinstall ok config-files" {
		t.Errorf("after dpkg -r: status %q", s)
	}
	if c := systemctlCalls(); c != "stop toragent.service torswitch.service\ndaemon-reload" {
		t.Errorf("dpkg -r called systemctl %q, want stop of both units and daemon-reload", c)
	}
	for _, f := range []string{"usr/bin/toragent", "usr/bin/torctl", "usr/bin/torswitch", "lib/systemd/system/toragent.service"} {
		if _, err := os.Lstat(filepath.Join(root, f)); err == nil {
			t.Errorf("/%s left after dpkg -r", f)
		}
	}
	for _, f := range []string{"etc/torstitch/toragent.yaml", "etc/default/torswitch", "var/lib/torstitch"} {
		if _, err := os.Lstat(filepath.Join(root, f)); err != nil {
			t.Errorf("/%s gone after dpkg -r (configuration and state stay until purge)", f)
		}
	}
	// An enabled unit's link goes with the purge.
	wants := filepath.Join(root, "etc/systemd/system/multi-user.target.wants")
	if err := os.MkdirAll(wants, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/lib/systemd/system/toragent.service", filepath.Join(wants, "toragent.service")); err != nil {
		t.Fatal(err)
	}
	if got, err := inRoot("dpkg", "--purge", "torstitch"); err != nil {
		t.Fatalf("dpkg --purge: %v\n%s", err, got)
	}
	if s := status(); !strings.Contains(s, "no packages found matching torstitch") && s != "unknown ok not-installed" {
		t.Errorf("after dpkg --purge: status %q", s)
	}
	systemctlCalls()
	for _, p := range []string{"run/systemd", "usr/local/bin/systemctl", "tmp/torstitch.deb"} {
		os.RemoveAll(filepath.Join(root, p))
	}
	after := tree(t, root)
	var left []string
	for p := range after {
		if _, ok := before[p]; ok || strings.HasPrefix(p, "var/lib/dpkg/") || strings.HasPrefix(p, "var/log/") ||
			p == "etc/systemd/system" || strings.HasPrefix(p, "etc/systemd/system/") && !strings.Contains(p, "tor") {
			continue
		}
		left = append(left, p)
	}
	slices.Sort(left)
	if len(left) > 0 {
		t.Errorf("left in the root after dpkg --purge: %v", left)
	}
	t.Logf("whole test %v", time.Since(start).Round(time.Millisecond))
}

// runAgent starts toragent's ExecStart (cmd), waits until torctl in its
// namespaces reaches the agent over the API socket and /metrics answers,
// checks the process holds only the unit's capabilities, then stops it with
// SIGTERM within the unit's TimeoutStopSec.
func runAgent(t *testing.T, cmd *exec.Cmd, unit map[string]string) {
	t.Helper()
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	failedBefore := t.Failed()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() && !failedBefore {
			t.Logf("toragent's log:\n%s", logs.String())
		}
	}()
	pid := strconv.Itoa(cmd.Process.Pid) // unshare, sh, chroot and setpriv exec: this is toragent
	enter := func(args ...string) (string, error) {
		b, err := exec.Command("nsenter", append([]string{"-t", pid, "-m", "-n", "-r", "-w"}, args...)...).CombinedOutput()
		return string(b), err
	}
	var got string
	var err error
	for deadline := time.Now().Add(20 * time.Second); ; {
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("toragent.service ExecStart exited before its API answered: %v", err)
		default:
		}
		got, err = enter("/usr/bin/torctl", "version")
		if err == nil && strings.Contains(got, "toragent  v") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("toragent's API did not answer within 20 s: %v\n%s", err, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("torctl version against the packaged toragent:\n%s", got)
	metrics, err := enter("/usr/bin/bash", "-c",
		`exec 3<>/dev/tcp/127.0.0.1/9464 && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && cat <&3`)
	if err != nil || !strings.HasPrefix(metrics, "HTTP/1.0 200 ") || !strings.Contains(metrics, "torstitch_build_info{") {
		t.Errorf("GET /metrics from the packaged toragent: %v\n%.500s", err, metrics)
	}
	// What the agent may write (ProtectSystem=strict, StateDirectory,
	// RuntimeDirectory), as seen in its mount namespace.
	for p, writable := range map[string]bool{"/var/lib/torstitch/.probe": true, "/run/torstitch/.probe": true,
		"/etc/torstitch/.probe": false, "/usr/.probe": false} {
		got, err := enter("/usr/bin/touch", p)
		if (err == nil) != writable {
			t.Errorf("touch %s in the agent's mount namespace: %v %s (want writable %v)", p, err, got, writable)
		}
		enter("/usr/bin/rm", "-f", p)
	}
	st, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"CapEff": true, "CapBnd": true, "CapAmb": true}
	for _, line := range strings.Split(string(st), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch {
		case want[k] && v != "0000000000000400" && unit["CapabilityBoundingSet"] == "CAP_NET_BIND_SERVICE":
			t.Errorf("toragent %s %s, want CAP_NET_BIND_SERVICE only (0000000000000400)", k, v)
		case k == "NoNewPrivs" && v != "1":
			t.Errorf("toragent NoNewPrivs %s", v)
		}
	}
	for p, mode := range map[string]fs.FileMode{"run/torstitch/toragent.sock": 0o600, "run/torstitch": 0o750, "var/lib/torstitch": 0o700} {
		fi, err := os.Stat(filepath.Join("/proc", pid, "root", p))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("/%s in the agent's view: %v %v, want mode %v", p, fi.Mode(), err, mode)
		}
	}

	stopBy, err := time.ParseDuration(strings.TrimSuffix(unit["TimeoutStopSec"], "ec")) // 15s
	if err != nil {
		stopBy = 90 * time.Second
	}
	begin := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Errorf("toragent after SIGTERM: %v", err)
		}
		t.Logf("toragent stopped %v after SIGTERM", time.Since(begin).Round(time.Millisecond))
	case <-time.After(stopBy):
		t.Errorf("toragent still running %v (TimeoutStopSec) after SIGTERM", stopBy)
	}
}

// verifyUnits runs `systemd-analyze verify` on the installed units, in a root
// holding them, the host's targets and the binaries they start; any message
// fails. Skipped when the host has no systemd-analyze.
func verifyUnits(t *testing.T, root string) {
	t.Helper()
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("no systemd-analyze on this host: units not verified")
		return
	}
	v := t.TempDir()
	for _, d := range []string{"usr/bin", "usr/lib/systemd/system", "etc"} {
		if err := os.MkdirAll(filepath.Join(v, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []string{"lib", "bin"} {
		if err := os.Symlink("usr/"+l, filepath.Join(v, l)); err != nil {
			t.Fatal(err)
		}
	}
	// The host's targets and slices the units refer to (copies: an absolute
	// link would be resolved inside the root).
	targets, _ := filepath.Glob("/usr/lib/systemd/system/*.target")
	slcs, _ := filepath.Glob("/usr/lib/systemd/system/*.slice")
	for _, f := range append(targets, slcs...) {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a dangling link among the host's units
		}
		if err := os.WriteFile(filepath.Join(v, "usr/lib/systemd/system", filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"usr/bin/toragent", "usr/bin/torswitch", "usr/lib/systemd/system/toragent.service", "usr/lib/systemd/system/torswitch.service"} {
		src := filepath.Join(root, strings.Replace(f, "usr/lib/systemd", "lib/systemd", 1))
		if err := os.Link(src, filepath.Join(v, f)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(sa, "verify", "--root="+v, "--man=no", "toragent.service", "torswitch.service")
	b, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(b)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, b)
	} else {
		t.Log("systemd-analyze verify: toragent.service, torswitch.service clean")
	}
}

// tree lists the paths under root (relative), each with its type.
func tree(t *testing.T, root string) map[string]fs.FileMode {
	t.Helper()
	m := map[string]fs.FileMode{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." || rel == "proc" || strings.HasPrefix(rel, "proc/") {
			return nil
		}
		m[rel] = d.Type()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// expandExec splits a unit's command line and expands $VAR (unquoted: split
// at white space, as systemd does) from env.
func expandExec(t *testing.T, line string, env map[string]string) []string {
	t.Helper()
	var argv []string
	for _, w := range strings.Fields(line) {
		if strings.HasPrefix(w, "$") {
			v, ok := env[strings.Trim(w, "${}")]
			if !ok {
				t.Errorf("%s: not set by the unit's EnvironmentFile", w)
			}
			argv = append(argv, strings.Fields(v)...)
			continue
		}
		argv = append(argv, w)
	}
	return argv
}

// readEnvFile reads KEY=VALUE lines (VALUE optionally double-quoted).
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(k, "#") {
			env[k] = strings.Trim(v, `"`)
		}
	}
	return env
}

// runBounded runs cmd, killing it after limit.
func runBounded(cmd *exec.Cmd, limit time.Duration) (string, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		return out.String(), fmt.Errorf("still running after %v", limit)
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// readUnit returns the last value of each key of a systemd unit file.
func readUnit(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kv := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && !strings.HasPrefix(k, "#") {
			kv[k] = v
		}
	}
	return kv
}
