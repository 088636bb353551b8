// Package buildinfo is the one source of the torstitch binaries' version:
// `--version` of every command, `torctl version`, the agent's API
// (GET /v1/version) and the torstitch_build_info metric read it.
//
// Releases and `make build` set the version with the linker:
//
//	go build -ldflags "-X github.com/torstitch/torstitch/vtep/buildinfo.version=$(git describe --tags --always --dirty)" ./cmd/...
//
// and may set the revision the same way (buildinfo.revision) where the Go
// toolchain does not stamp it (GOFLAGS=-buildvcs=false, builds outside a
// checkout). Without them, the module version and VCS stamps that the Go
// toolchain embeds (runtime/debug.ReadBuildInfo) are used: a `go install
// ...@v1.2.3` reports v1.2.3, a plain `go build` in a checkout reports
// "devel" with the revision.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Set by the linker (-ldflags -X); empty in plain builds.
var (
	version  string
	revision string
)

// Info describes the running binary.
type Info struct {
	Version   string `json:"version"`    // "v1.2.3", "v1.2.3-4-gabcdef0-dirty" or "devel"
	GoVersion string `json:"go_version"` // runtime.Version(), e.g. "go1.26.8"
	Revision  string `json:"revision"`   // VCS commit, "" when unknown
	Modified  bool   `json:"modified"`   // the work tree had uncommitted changes (VCS stamp)
}

// Get returns the build information of the running binary.
func Get() Info {
	return fromBuild(version, revision, runtime.Version(), readBuildInfo)
}

// Version is Get().Version.
func Version() string { return Get().Version }

// String is the one-line form `--version` prints after the program name:
// "v1.2.3 (go1.26.8, revision 0123456789ab)".
func (i Info) String() string {
	s := i.Version + " (" + i.GoVersion
	if i.Revision != "" {
		rev := i.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		s += ", revision " + rev
		if i.Modified {
			s += "+dirty"
		}
	}
	return s + ")"
}

var readBuildInfo = debug.ReadBuildInfo

// fromBuild merges the linker-set values (which win) with the toolchain's
// embedded build information.
func fromBuild(ldVersion, ldRevision, goVersion string, read func() (*debug.BuildInfo, bool)) Info {
	info := Info{Version: ldVersion, Revision: ldRevision, GoVersion: goVersion}
	if bi, ok := read(); ok {
		if info.Version == "" {
			if v := bi.Main.Version; v != "" && v != "(devel)" {
				info.Version = v
			}
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if info.Revision == "" {
					info.Revision = s.Value
				}
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
	}
	if info.Version == "" {
		info.Version = "devel"
	}
	return info
}
