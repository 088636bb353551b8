package testbed

import (
	"testing"

	"github.com/torstitch/torstitch/testbed/clab"
)

func TestNetnsName(t *testing.T) {
	tests := []struct{ prefix, want string }{
		{"clab", "clab-lab1-tor1"},
		{"tb", "tb-lab1-tor1"},
		{"", "tor1"},
		{"__lab-name", "lab1-tor1"},
	}
	for _, tt := range tests {
		if got := NetnsName(tt.prefix, "lab1", "tor1"); got != tt.want {
			t.Errorf("NetnsName(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
}

func TestTempNamesFitAndDiffer(t *testing.T) {
	l1 := &clab.Link{A: clab.Endpoint{Node: "a", Iface: "eth1"}, B: clab.Endpoint{Node: "b", Iface: "eth1"}}
	l2 := &clab.Link{A: clab.Endpoint{Node: "a", Iface: "eth2"}, B: clab.Endpoint{Node: "b", Iface: "eth2"}}
	a1, b1 := tempNames("lab", l1)
	a2, _ := tempNames("lab", l2)
	a3, _ := tempNames("other", l1)
	if len(a1) > 15 || len(b1) > 15 || a1 == b1 || a1 == a2 || a1 == a3 {
		t.Errorf("temp names %q %q %q %q", a1, b1, a2, a3)
	}
	if again, _ := tempNames("lab", l1); again != a1 {
		t.Errorf("temp names not stable: %q %q", a1, again)
	}
}
