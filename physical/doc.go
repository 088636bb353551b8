// Package physical is torswitch, a Linux software hardware-VTEP switch: the
// switch side of the hardware_vtep OVSDB schema on the kernel data path.
//
//   - shim: eBPF TC VLAN pop/push (cilium/ebpf asm, no clang) for kernels
//     without 802.1Q subinterfaces;
//   - dataplane: bridges, VXLAN devices, binding veths, FDB and neighbour
//     entries through netlink, and MAC learning from FDB notifications;
//   - controller: database ⇄ kernel reconciliation, Ucast_Macs_Local,
//     vlan_stats and fault statuses;
//   - ovsdbserver: the switch's own hardware_vtep database (libovsdb server);
//   - nstest: namespace topologies for the tests.
//
// This package holds the end-to-end namespace tests and benchmarks.
package physical
