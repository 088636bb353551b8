#!/bin/sh
# A VM: one NIC (eth1) with a fixed MAC and an address.
# Env: VM_IP (CIDR), VM_MAC, VM_IF (eth1).
set -eu
. /lab/lib.sh
: "${VM_IP:?}" "${VM_MAC:?}" "${VM_IF:=eth1}"
wait_ifaces "$VM_IF"
tx_off "$VM_IF"
ip link set "$VM_IF" down
# No IPv6: a VM sends nothing until it is spoken to (no DAD, no MLD), so the
# lab starts with no MAC known anywhere and flooding can be tested.
sysctl -qw "net.ipv6.conf.$VM_IF.disable_ipv6=1" 2>/dev/null || true
ip link set "$VM_IF" address "$VM_MAC" mtu 1500
ip addr replace "$VM_IP" dev "$VM_IF"
ip link set "$VM_IF" up
log "VM $VM_MAC $VM_IP on $VM_IF"
