#!/bin/sh
# ESXi's "Notify Switches" (a port group's teaming default): when the team
# fails over, ESXi sends a RARP for every VM MAC out of the new active
# uplink, so that the physical switches learn at once where the VMs are
# (a VM that only answers would otherwise stay unreachable until it sends
# something itself). OVS's active-backup bond sends nothing, so this
# emulates it: on every uplink link-state change it waits for the bond's
# active member to change, then injects one RARP per MAC learned on a VM
# port as if that port had sent it; OVS's NORMAL forwarding takes it out of
# the active uplink with the port group's VLAN.
#
# Env: UPLINKS ("eth1 eth2"), VDS (vds0). Run in the background by start.sh.
set -u
. /lab/lib.sh
export OVS_RUNDIR=/var/run/openvswitch
: "${UPLINKS:=eth1 eth2}" "${VDS:=vds0}"

active() { ovs-appctl bond/show uplink 2>/dev/null | sed -n 's/^active member.*(\(.*\))$/\1/p'; }

rarp() { # MAC -> a 60-byte RARP request frame in hex
	m=$(printf '%s' "$1" | tr -d :)
	printf 'ffffffffffff%s8035000108000604000%s%s00000000%s00000000%036d' "$m" 3 "$m" "$m" 0
}

notify() {
	# The uplinks' OpenFlow port numbers, to skip MACs learned on them.
	up=" "
	for u in $UPLINKS; do up="$up$(ovs-vsctl get Interface "$u" ofport) "; done
	ovs-appctl fdb/show "$VDS" | awk 'NR > 1 {print $1, $3}' | while read -r port mac; do
		case "$up" in *" $port "*) continue ;; esac
		ovs-ofctl packet-out "$VDS" "in_port=$port packet=$(rarp "$mac") actions=NORMAL" &&
			log "notified switches: $mac (ofport $port) via $1"
	done
}

last=$(active)
ovsdb-client monitor "unix:$OVS_RUNDIR/db.sock" Open_vSwitch Interface link_state --format=csv 2>/dev/null |
	while read -r _; do
		now=$last
		i=0
		while [ "$i" -lt 100 ]; do # the bond follows the carrier within milliseconds
			now=$(active)
			[ "$now" != "$last" ] && break
			sleep 0.02
			i=$((i + 1))
		done
		if [ -n "$now" ] && [ "$now" != "$last" ]; then
			log "team failover ${last:-none} -> $now"
			notify "$now"
		fi
		last=$now
	done
