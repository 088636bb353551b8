#!/bin/sh
# A KVM host as an EVPN VTEP: per VNI a Linux bridge holding a kernel VXLAN
# device (no learning: FRR installs remote MACs and flood entries) and the
# VM's tap-like veth; then FRR (zebra + bgpd, advertise-all-vni).
#
# Env: UNDERLAY_IF (eth1), LOCAL_IP (CIDR), VNI_PORTS ("10100:vnet0 10200:vnet1").
set -eu
. /lab/lib.sh
: "${UNDERLAY_IF:=eth1}" "${LOCAL_IP:?}" "${VNI_PORTS:?}"
wait_ifaces "$UNDERLAY_IF"
tx_off "$UNDERLAY_IF"
ip addr replace "$LOCAL_IP" dev "$UNDERLAY_IF"
ip link set "$UNDERLAY_IF" up
for vp in $VNI_PORTS; do
	vni=${vp%%:*} port=${vp##*:}
	ip link show "br$vni" >/dev/null 2>&1 || ip link add "br$vni" type bridge
	ip link show "vxlan$vni" >/dev/null 2>&1 ||
		ip link add "vxlan$vni" type vxlan id "$vni" local "${LOCAL_IP%/*}" dstport 4789 nolearning
	ip link set "vxlan$vni" master "br$vni" mtu 1500 up
	bridge link set dev "vxlan$vni" learning off neigh_suppress off
	if [ -e "/sys/class/net/$port" ]; then
		ip link set "$port" master "br$vni" mtu 1500 up
	else
		log "VM port $port absent, skipped"
	fi
	ip link set "br$vni" up
done
log "VXLAN VTEP ${LOCAL_IP%/*}: $VNI_PORTS"
[ "${START_FRR:-yes}" = no ] || exec /lab/frr/start.sh
