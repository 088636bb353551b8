package testbed_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/torstitch/torstitch/testbed/clab"
)

// TestStitchFilesComplete checks, without running anything, that every
// image the stitch topology names has a Dockerfile under
// containerlab/images/ and every /lab/... script it runs exists and is
// executable.
func TestStitchFilesComplete(t *testing.T) {
	topo, err := clab.Load(stitchLab)
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
		df, err := os.ReadFile(filepath.Join(root, "images", img, "Dockerfile"))
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
