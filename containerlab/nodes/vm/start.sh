#!/bin/sh
# A VM: one NIC (eth1) with a fixed MAC and an address.
# Env: VM_IP (CIDR), VM_MAC, VM_IF (eth1).
set -eu
. /lab/lib.sh
: "${VM_IP:?}" "${VM_MAC:?}" "${VM_IF:=eth1}"
wait_ifaces "$VM_IF"
tx_off "$VM_IF"
ip link set "$VM_IF" down
ip link set "$VM_IF" address "$VM_MAC" mtu 1500
ip addr replace "$VM_IP" dev "$VM_IF"
ip link set "$VM_IF" up
log "VM $VM_MAC $VM_IP on $VM_IF"
