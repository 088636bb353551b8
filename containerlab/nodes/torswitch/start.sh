#!/bin/sh
# A ToR switch run by torswitch (the Linux software hardware-VTEP) instead of
# ovs-vtep: address the underlay, then run torswitch, which starts and
# supervises the switch's ovsdb-server (database in /var/lib/torswitch, a
# bind of the node's own directory) serving hardware_vtep on
# ptcp:$OVSDB_PORT for the agent.
#
# Env: TUNNEL_IP (CIDR), UNDERLAY_IF (eth3), ACCESS_PORTS ("eth1 eth2"),
#      OVSDB_PORT (6640), PS_NAME (default: node name).
set -eu
. /lab/lib.sh
PS=${PS_NAME:-${TORLAB_NODE:-$(hostname)}}
: "${TUNNEL_IP:?}" "${UNDERLAY_IF:=eth3}" "${ACCESS_PORTS:=eth1 eth2}" "${OVSDB_PORT:=6640}"
own_cpu
wait_ifaces "$UNDERLAY_IF"
ip addr replace "$TUNNEL_IP" dev "$UNDERLAY_IF"
ip link set "$UNDERLAY_IF" mtu 1600 up
ports=""
await_ifaces 10 $ACCESS_PORTS
for p in $ACCESS_PORTS; do
	[ -e "/sys/class/net/$p" ] || { log "access port $p absent, skipped"; continue; }
	# The ESXi VDS at the other end is an OVS userspace port.
	tx_off "$p"
	ports="${ports:+$ports,}$p"
done
log "torswitch $PS: tunnel ${TUNNEL_IP%/*}, ports $ports, ovsdb ptcp:$OVSDB_PORT"
exec torswitch --name "$PS" --tunnel-ip "${TUNNEL_IP%/*}" --ports "$ports" \
	--db-dir /var/lib/torswitch --listen "ptcp:$OVSDB_PORT"
