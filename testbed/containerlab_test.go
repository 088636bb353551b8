package testbed_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/torstitch/torstitch/testbed"
	"github.com/torstitch/torstitch/testbed/clab"
)

// TestPrepareContainerlab: the pre-step makes the node directories that
// __clabNodeDir__ binds name (containerlab refuses a bind whose source is
// missing, before it creates them itself), for both lab topologies and
// under an overridden lab name, and nothing for nodes without such binds.
func TestPrepareContainerlab(t *testing.T) {
	for _, f := range []string{stitchLab, torswitchLab} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		// Bridge nodes need root (a bridge in this namespace): leave them out.
		topo, err := clab.Parse(src, dir)
		if err != nil {
			t.Fatal(err)
		}
		topo.Name = "prep"
		var nodes []*clab.Node
		for _, n := range topo.Nodes {
			if n.Kind != clab.KindBridge {
				nodes = append(nodes, n)
			}
		}
		topo.Nodes = nodes
		if err := testbed.PrepareContainerlab(context.Background(), topo, ""); err != nil {
			t.Fatal(err)
		}
		for _, n := range topo.Nodes {
			want := false
			for _, b := range n.Binds {
				want = want || b.Host == clab.MagicNodeDir
			}
			_, err := os.Stat(filepath.Join(dir, "clab-prep", n.Name))
			if want != (err == nil) {
				t.Errorf("%s: node %s: dir exists %v, want %v", filepath.Base(f), n.Name, err == nil, want)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "clab-prep", "tor1")); err != nil {
			t.Errorf("%s: tor1 has no node dir: %v", filepath.Base(f), err)
		}
	}
}

// TestLoadClabEnv reads what the set-up script prints, and refuses a
// script that prints no engine.
func TestLoadClabEnv(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.sh")
	os.WriteFile(good, []byte("#!/bin/sh\necho clab-env: ready >&2\necho export DOCKER_HOST=unix:///run/x.sock\necho export CLAB=/run/c\necho export CLAB_NETNS=ns1\n"), 0o755)
	env, err := testbed.LoadClabEnv(context.Background(), good, "status")
	if err != nil {
		t.Fatal(err)
	}
	if env != (testbed.ClabEnv{DockerHost: "unix:///run/x.sock", Clab: "/run/c", Netns: "ns1"}) {
		t.Errorf("env %+v", env)
	}
	bad := filepath.Join(dir, "bad.sh")
	os.WriteFile(bad, []byte("#!/bin/sh\necho no engine >&2\nexit 1\n"), 0o755)
	if _, err := testbed.LoadClabEnv(context.Background(), bad, "status"); err == nil || !strings.Contains(err.Error(), "no engine") {
		t.Errorf("failing script: err %v", err)
	}
}

// TestClabEnvScriptSyntax: the set-up and image scripts parse, and the
// set-up script's containerlab patch applies to the code it targets.
func TestClabEnvScriptSyntax(t *testing.T) {
	for _, s := range []string{clabEnvScript, "../containerlab/images/build.sh"} {
		if out, err := exec.Command("bash", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", s, err, out)
		}
	}
	script, err := os.ReadFile(clabEnvScript)
	if err != nil {
		t.Fatal(err)
	}
	var sedExpr string
	for _, line := range strings.Split(string(script), "\n") {
		if e, ok := strings.CutPrefix(strings.TrimSpace(line), "sed -i '"); ok && strings.Contains(e, "return false, err") {
			sedExpr, _, _ = strings.Cut(e, "' \\")
		}
	}
	if sedExpr == "" {
		t.Fatal("no kernel_module.go sed patch found in the set-up script")
	}
	// containerlab v0.69.3 utils/kernel_module.go, IsKernelModuleLoaded's opening.
	orig := "func IsKernelModuleLoaded(name string) (bool, error) {\n\tf, err := os.Open(\"/proc/modules\")\n\tif err != nil {\n\t\treturn false, err\n\t}\n"
	f := filepath.Join(t.TempDir(), "kernel_module.go")
	os.WriteFile(f, []byte(orig), 0o644)
	if out, err := exec.Command("sed", "-i", sedExpr, f).CombinedOutput(); err != nil {
		t.Fatalf("sed: %v\n%s", err, out)
	}
	got, _ := os.ReadFile(f)
	want := "\tif err != nil {\n\t\tif os.IsNotExist(err) {\n\t\t\treturn true, nil // no module support: built in\n\t\t}\n\t\treturn false, err\n\t}\n"
	if !strings.Contains(string(got), want) {
		t.Errorf("patched:\n%s", got)
	}
}
