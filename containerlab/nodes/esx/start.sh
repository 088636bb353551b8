#!/bin/sh
# An ESXi host: an OVS userspace (netdev) bridge plays the distributed
# switch. VM ports are access ports tagged with their port group's VLAN
# (VST); the uplinks to the two ToRs form an active-backup team (the first
# uplink is primary), trunking all VLANs.
#
# Env: UPLINKS ("eth1 eth2"), VM_PORTS ("vm11:100 vm12:200": port:VLAN),
#      VDS (bridge name, default vds0).
set -eu
. /lab/lib.sh
DIR=/var/run/openvswitch
: "${UPLINKS:=eth1 eth2}" "${VM_PORTS:=}" "${VDS:=vds0}"

own_cpu
start_ovs "$DIR"
ovs-vsctl --may-exist add-br "$VDS" -- set bridge "$VDS" datapath_type=netdev

# Uplinks that exist (a lab may deploy only some of the ToRs).
up=""
for u in $UPLINKS; do [ -e "/sys/class/net/$u" ] && up="$up $u"; done
set -- $up
case $# in
0) die "no uplink among $UPLINKS" ;;
1) ovs-vsctl --may-exist add-port "$VDS" "$1" ;;
*) ovs-vsctl --may-exist add-bond "$VDS" uplink "$@" bond_mode=active-backup \
	other_config:bond-primary="$1" other_config:bond-detect-mode=carrier ;;
esac

for vp in $VM_PORTS; do
	[ -e "/sys/class/net/${vp%%:*}" ] || { log "VM port ${vp%%:*} absent, skipped"; continue; }
	ovs-vsctl --may-exist add-port "$VDS" "${vp%%:*}" tag="${vp##*:}"
done
# ESXi's Notify Switches on team failover (notify.sh); one per host.
if [ $# -gt 1 ] && ! pid_alive "$DIR/notify.pid"; then
	setsid /lab/esx/notify.sh >>"$DIR/notify.log" 2>&1 </dev/null &
	echo $! >"$DIR/notify.pid"
fi
log "VDS $VDS up: uplinks$up, VM ports $VM_PORTS"
