package vteptest

import (
	"slices"
	"strings"
)

// Dump describes the switch's database as vtep-ctl (an independent reader)
// sees it, one fact a line, sorted; UUIDs never appear. Lines:
//
//	ls NAME key=KEY mode=MODE owner=OWNER
//	bind SWITCH PORT VLAN LS
//	ucast LS MAC -> LOCATOR
//	mcast LS MAC -> LOCATOR
//	ipaddr MAC IP
func (s *OVSDB) Dump(sw string) string {
	s.t.Helper()
	var lines []string
	for _, ls := range fields(s.VtepCtl("list-ls")) {
		key := s.VtepCtl("get", "Logical_Switch", ls, "tunnel_key")
		mode := s.VtepCtl("get", "Logical_Switch", ls, "replication_mode")
		owner := strings.Trim(s.VtepCtl("--if-exists", "get", "Logical_Switch", ls, "other_config:managed-by"), `"`)
		lines = append(lines, "ls "+ls+" key="+key+" mode="+mode+" owner="+owner)
		section := ""
		for _, l := range strings.Split(s.VtepCtl("list-remote-macs", ls), "\n") {
			l = strings.TrimSpace(l)
			switch {
			case l == "":
			case l == "ucast-mac-remote":
				section = "ucast"
			case l == "mcast-mac-remote":
				section = "mcast"
			default:
				lines = append(lines, section+" "+ls+" "+l)
			}
		}
	}
	if sw != "" {
		for _, p := range fields(s.VtepCtl("list-ports", sw)) {
			for _, b := range strings.Split(s.VtepCtl("list-bindings", sw, p), "\n") {
				if b = strings.TrimSpace(b); b != "" {
					f := strings.Fields(b)
					vlan := strings.TrimLeft(f[0], "0")
					if vlan == "" {
						vlan = "0"
					}
					lines = append(lines, "bind "+sw+" "+p+" "+vlan+" "+f[1])
				}
			}
		}
	}
	for _, l := range strings.Split(s.VtepCtl("--format=csv", "--data=bare", "--no-headings", "--columns=MAC,ipaddr", "list", "Ucast_Macs_Remote"), "\n") {
		mac, ip, ok := strings.Cut(strings.TrimSpace(l), ",")
		if ok && ip != "" {
			lines = append(lines, "ipaddr "+mac+" "+ip)
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func fields(s string) []string { return strings.Fields(s) }
