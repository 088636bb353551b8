package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFromBuild(t *testing.T) {
	stamped := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"}, {Key: "vcs.modified", Value: "true"}}}, true
	}
	module := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}}, true
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	tests := []struct {
		name          string
		ldVer, ldRev  string
		read          func() (*debug.BuildInfo, bool)
		want          Info
		wantFormatted string
	}{
		{"linker wins", "v0.3.0-2-gabc", "feedbeef", stamped,
			Info{Version: "v0.3.0-2-gabc", GoVersion: "go1.26.8", Revision: "feedbeef", Modified: true},
			"v0.3.0-2-gabc (go1.26.8, revision feedbeef+dirty)"},
		{"vcs stamp", "", "", stamped,
			Info{Version: "devel", GoVersion: "go1.26.8", Revision: "0123456789abcdef0123456789abcdef01234567", Modified: true},
			"devel (go1.26.8, revision 0123456789ab+dirty)"},
		{"go install @version", "", "", module, Info{Version: "v1.2.3", GoVersion: "go1.26.8"}, "v1.2.3 (go1.26.8)"},
		{"nothing", "", "", none, Info{Version: "devel", GoVersion: "goX"}, "devel (goX)"},
	}
	for _, tc := range tests {
		got := fromBuild(tc.ldVer, tc.ldRev, "goX", tc.read)
		if got != tc.want || got.String() != tc.wantFormatted {
			t.Errorf("%s: got %+v %q, want %+v %q", tc.name, got, got.String(), tc.want, tc.wantFormatted)
		}
	}
}
