package agent

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/torstitch/torstitch/vtep/buildinfo"
)

func TestBuildInfoMetric(t *testing.T) {
	m := newMetrics()
	bi := buildinfo.Get()
	want := `# HELP torstitch_build_info Always 1; the labels identify the running toragent build.
# TYPE torstitch_build_info gauge
torstitch_build_info{goversion="` + bi.GoVersion + `",revision="` + bi.Revision + `",version="` + bi.Version + `"} 1
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "torstitch_build_info"); err != nil {
		t.Error(err)
	}
}
