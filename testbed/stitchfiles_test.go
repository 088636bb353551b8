package testbed_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/torstitch/torstitch/testbed/clab"
)

// TestStitchFilesComplete parses every topology file under containerlab/
// and checks, without running anything, that every image it names has a
// Dockerfile (containerlab/images/NAME/, or containerlab/NAME/ for
// torswitch) and every /lab/... script it runs exists and is executable.
func TestStitchFilesComplete(t *testing.T) {
	files, err := filepath.Glob("../containerlab/*.clab.yml")
	if err != nil || len(files) < 2 {
		t.Fatalf("topology files %v: %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { checkTopologyFiles(t, f) })
	}
}

func checkTopologyFiles(t *testing.T, file string) {
	topo, err := clab.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(topo.File)
	labPath := regexp.MustCompile(`/lab/[A-Za-z0-9_./-]+`)
	for _, n := range topo.Nodes {
		if n.Kind != clab.KindLinux {
			continue
		}
		img, ok := strings.CutPrefix(n.Image, "torstitch/")
		img, _, _ = strings.Cut(img, ":")
		if !ok {
			t.Errorf("node %s: image %q is not one of ours", n.Name, n.Image)
			continue
		}
		dfPath := filepath.Join(root, "images", img, "Dockerfile")
		if img == "torswitch" {
			dfPath = filepath.Join(root, "torswitch", "Dockerfile")
		}
		df, err := os.ReadFile(dfPath)
		if err != nil {
			t.Errorf("node %s: image %s: %v", n.Name, n.Image, err)
		} else if !strings.Contains(string(df), "debian:12") && !strings.Contains(string(df), "bookworm") {
			t.Errorf("image %s is not Debian 12 based", img)
		}
		cmds := append([]string{n.Cmd, n.Labels["torlab.health"]}, n.Exec...)
		for _, v := range n.Env {
			cmds = append(cmds, v)
		}
		for _, c := range cmds {
			for _, p := range labPath.FindAllString(c, -1) {
				fi, err := os.Stat(filepath.Join(root, "nodes", strings.TrimPrefix(p, "/lab/")))
				switch {
				case err != nil:
					t.Errorf("node %s: %s: %v", n.Name, p, err)
				case strings.HasSuffix(p, ".sh") && fi.Mode()&0o111 == 0:
					t.Errorf("node %s: %s is not executable", n.Name, p)
				}
			}
		}
	}
}
