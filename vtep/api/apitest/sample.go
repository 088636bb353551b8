package apitest

import (
	"net/netip"
	"time"

	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/l2"
)

// Sample returns a Fake holding a small, fixed picture of a switch pair:
// bindings from every source, local and remote MACs, one faulty switch, two
// BGP peers and a connected vCenter. Its output is deterministic.
func Sample() *Fake {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ip := netip.MustParseAddr
	return &Fake{
		VersionInfo: api.Version{Version: "v0.1.0-test", Agent: "pair1"},
		BindingList: []api.Binding{
			{VLAN: 200, VNI: 10200, Source: api.SourceVCenter, Ports: []l2.PortRef{{Switch: "tor1", Port: "eth2"}}},
			{VLAN: 100, VNI: 10100, Source: api.SourceConfig, Ports: []l2.PortRef{{Switch: "tor1", Port: "eth1"}, {Switch: "tor2", Port: "eth1"}}},
			{VLAN: 0, VNI: 10000, Source: api.SourceTorctl, Ports: []l2.PortRef{{Switch: "tor2", Port: "eth3"}}},
		},
		MACTable: api.MACs{
			Local: []l2.LocalMAC{
				{Switch: "tor1", VNI: 10100, MAC: l2.MustMAC("00:50:56:00:00:01"), IP: ip("192.168.100.11"), VTEP: ip("10.0.0.11")},
				{Switch: "tor2", VNI: 10200, MAC: l2.MustMAC("00:50:56:00:00:02"), VTEP: ip("10.0.0.12")},
			},
			Remote: []l2.RemoteMAC{
				{VNI: 10100, MAC: l2.MustMAC("52:54:00:aa:bb:01"), IP: ip("192.168.100.21"), VTEP: ip("10.0.0.21"), Seq: 2},
				{VNI: 10200, MAC: l2.MustMAC("52:54:00:aa:bb:02"), VTEP: ip("10.0.0.21")},
			},
		},
		SwitchList: []api.Switch{
			{Name: "tor1", Endpoint: "tcp:10.0.0.11:6640", Connected: true, Since: at, TunnelIPs: []string{"10.0.0.11"},
				Ports: 48, LogicalSws: 2, LocalMACs: 1, RemoteMACs: 2, Replication: "source_node", LastReconcile: at,
				BFDDown:   []string{"10.0.0.21"},
				Conflicts: []string{`VNI 10300: logical switch "theirs", which torstitch does not manage, uses this VNI; VNI not applied on this switch`}},
			{Name: "tor2", Endpoint: "tcp:10.0.0.12:6640", Connected: false, TunnelIPs: []string{"10.0.0.12"},
				Faults:     []string{"unsupported_source_node_replication"},
				PortFaults: map[string][]string{"eth3": {"link_down"}},
				Ports:      48, LogicalSws: 2, LocalMACs: 1, RemoteMACs: 2, Replication: "service_node",
				LastError: "connection refused"},
		},
		PeerList: []api.Peer{
			{Address: ip("10.0.0.1"), ASN: 65000, State: "established", Uptime: 90 * time.Minute, Received: 12, Accepted: 12, Advertised: 5, EndOfRIB: true},
			{Address: ip("10.0.0.2"), ASN: 65000, State: "active"},
		},
		VCenterState: api.VCenter{Configured: true, URL: "https://vc.example/sdk", State: "connected", LastSync: at,
			Valid: true, Bindings: 1, VMMACs: 7, Conflicts: []string{"port group pg-300: VLAN 300 has no VNI tag"}},
		NetworkState: api.Networks{Configured: true, Switch: "DSwitch", Pool: "3000-3099", State: "connected", LastPass: at,
			Networks: []api.Network{
				{VNI: 10300, Name: "web", VLAN: 3000, PortGroup: "dvportgroup-61", VMs: []string{"web-1", "web-2"}, State: api.NetworkReady,
					Source: api.NetworkSourceConfig},
				{VNI: 10301, Name: "app", VLAN: 3001, PortGroup: "dvportgroup-62", VMs: []string{}, State: api.NetworkReady,
					Drift: `changed in vCenter: renamed to "app-old" (undone)`, Source: api.NetworkSourceTorctl},
				{VNI: 10302, Name: "db", State: api.NetworkError, VMs: []string{},
					Error: `name "db" is taken by port group dvportgroup-41 on switch DSwitch, which torstitch does not own`, Source: api.NetworkSourceTorctl},
			}},
	}
}
