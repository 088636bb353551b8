#!/bin/sh
# A hardware-VTEP ToR switch: the ovs-vtep emulator on an OVS userspace
# (netdev) datapath, with its own ovsdb-server serving conf.db and vtep.db
# (hardware_vtep) on a unix socket and on ptcp:$OVSDB_PORT for the agent.
#
# Env: TUNNEL_IP (CIDR, e.g. 10.0.0.11/24), UNDERLAY_IF (eth3),
#      ACCESS_PORTS ("eth1 eth2"), OVSDB_PORT (6640), PS_NAME (default: node name).
# State: /var/run/openvswitch (per node: a bind of the node's own directory).
set -eu
. /lab/lib.sh
PS=${PS_NAME:-${TORLAB_NODE:-$(hostname)}}
DIR=/var/run/openvswitch
: "${TUNNEL_IP:?}" "${UNDERLAY_IF:=eth3}" "${ACCESS_PORTS:=eth1 eth2}" "${OVSDB_PORT:=6640}"

own_cpu
wait_ifaces "$UNDERLAY_IF"
[ -f "$DIR/vtep.db" ] || ovsdb-tool create "$DIR/vtep.db" /usr/share/openvswitch/vtep.ovsschema
start_ovs "$DIR" --remote=db:hardware_vtep,Global,managers --remote="ptcp:$OVSDB_PORT" "$DIR/vtep.db"

# Underlay: the tunnel IP sits on the internal port of a netdev bridge that
# holds the underlay interface (no tnl/route commands needed).
ovs-vsctl --may-exist add-br br-ul -- set bridge br-ul datapath_type=netdev \
	-- --may-exist add-port br-ul "$UNDERLAY_IF"
ip addr replace "$TUNNEL_IP" dev br-ul
ip link set br-ul mtu 1600 up

# The physical switch: a netdev bridge (ovs-vtep copies its datapath type to
# the per-logical-switch bridges it creates) with the access ports.
ovs-vsctl --may-exist add-br "$PS" -- set bridge "$PS" datapath_type=netdev
vtep-ctl --may-exist add-ps "$PS"
vtep-ctl set Physical_Switch "$PS" tunnel_ips="${TUNNEL_IP%/*}" \
	description="torstitch-lab-$PS"
await_ifaces 10 $ACCESS_PORTS
for p in $ACCESS_PORTS; do
	# A lab may deploy only some hosts: skip ports that are not cabled.
	[ -e "/sys/class/net/$p" ] || { log "access port $p absent, skipped"; continue; }
	ovs-vsctl --may-exist add-port "$PS" "$p"
	# Add the port to vtep.db ourselves before anyone binds it (race with
	# ovs-vtep's own add).
	vtep-ctl --may-exist add-port "$PS" "$p"
done

pid_alive "$DIR/ovs-vtep.pid" ovs-vtep ||
	/usr/share/openvswitch/scripts/ovs-vtep --log-file --pidfile --detach "$PS"
log "ToR $PS up: tunnel ${TUNNEL_IP%/*}, ports $ACCESS_PORTS, ovsdb ptcp:$OVSDB_PORT"
