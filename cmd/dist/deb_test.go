package dist

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDebInstallsAndStarts builds the Debian package with `make deb`,
// unpacks it into an empty root and runs, chrooted there in a fresh network
// namespace, the commands of its systemd units: toragent's ExecStartPre
// (--check-config of the example configuration) and torswitch --version.
// Root only (chroot, unshare); skipped otherwise.
func TestDebInstallsAndStarts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (chroot into the unpacked package, network namespace); run as root via make test")
	}
	for _, c := range []string{"make", "dpkg-deb", "unshare", "chroot"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("%s not found", c)
		}
	}
	out := t.TempDir()
	make := exec.Command("make", "-C", "../..", "deb", "BIN="+out)
	if b, err := make.CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, b)
	}
	debs, _ := filepath.Glob(filepath.Join(out, "torstitch_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb made %v", debs)
	}
	info, err := exec.Command("dpkg-deb", "-f", debs[0], "Package", "Version").CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb -f: %v\n%s", err, info)
	}
	t.Logf("%s:\n%s", filepath.Base(debs[0]), info)
	conf, err := exec.Command("dpkg-deb", "--ctrl-tarfile", debs[0]).Output()
	if err != nil || len(conf) == 0 {
		t.Fatalf("control archive: %v", err)
	}

	root := t.TempDir()
	if b, err := exec.Command("dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, b)
	}
	for _, f := range []string{"usr/bin/toragent", "usr/bin/torctl", "usr/bin/torswitch", "etc/torstitch/toragent.yaml",
		"etc/default/torswitch", "lib/systemd/system/toragent.service", "lib/systemd/system/torswitch.service",
		"usr/share/man/man8/toragent.8", "usr/share/man/man1/torctl.1", "usr/share/bash-completion/completions/torctl"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("package lacks /%s", f)
		}
	}

	// The unit's own command lines, run as systemd would (apart from the
	// sandboxing), inside the unpacked root: binaries are static.
	chroot := func(args ...string) (string, error) {
		b, err := exec.Command("unshare", append([]string{"--net", "--mount", "chroot", root}, args...)...).CombinedOutput()
		return string(b), err
	}
	unit := readUnit(t, filepath.Join(root, "lib/systemd/system/toragent.service"))
	if got, err := chroot(strings.Fields(unit["ExecStartPre"])...); err != nil || !strings.Contains(got, "configuration OK") {
		t.Errorf("toragent.service ExecStartPre %q in the package root: %v\n%s", unit["ExecStartPre"], err, got)
	} else {
		t.Logf("%s\n%s", unit["ExecStartPre"], got)
	}
	if !strings.HasPrefix(unit["ExecStart"], "/usr/bin/toragent --config /etc/torstitch/toragent.yaml") {
		t.Errorf("toragent.service ExecStart %q", unit["ExecStart"])
	}
	for _, prog := range []string{"toragent", "torctl", "torswitch"} {
		got, err := chroot("/usr/bin/"+prog, "--version")
		if err != nil || !strings.HasPrefix(got, prog+" v") {
			t.Errorf("%s --version: %v %q", prog, err, got)
		}
	}
	sw := readUnit(t, filepath.Join(root, "lib/systemd/system/torswitch.service"))
	if !strings.HasPrefix(sw["ExecStart"], "/usr/bin/torswitch ") || !strings.Contains(sw["CapabilityBoundingSet"], "CAP_NET_ADMIN") {
		t.Errorf("torswitch.service: %v", sw)
	}
	// torctl without an agent: its own version, the agent's error on stderr.
	if got, err := chroot("/usr/bin/torctl", "version"); err != nil || !strings.Contains(got, "torctl    v") {
		t.Errorf("torctl version: %v %q", err, got)
	}
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
