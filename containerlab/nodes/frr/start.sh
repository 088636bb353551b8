#!/bin/sh
# FRR (zebra + bgpd) with BGPD_CONF. Runtime state in /var/run/frr (per node:
# a bind of the node's own directory), so vtysh inside the node just works.
# Env: BGPD_CONF; UNDERLAY_IF and LOCAL_IP (address it when set).
set -eu
. /lab/lib.sh
: "${BGPD_CONF:?}"
if [ -n "${LOCAL_IP:-}" ]; then
	wait_ifaces "${UNDERLAY_IF:=eth1}"
	tx_off "$UNDERLAY_IF"
	ip addr replace "$LOCAL_IP" dev "$UNDERLAY_IF"
	ip link set "$UNDERLAY_IF" up
fi
R=/var/run/frr
mkdir -p "$R"
chown frr:frr "$R"
pid_alive "$R/zebra.pid" zebra ||
	/usr/lib/frr/zebra -d -f /lab/frr/zebra.conf -i "$R/zebra.pid" --log "file:$R/zebra.log"
pid_alive "$R/bgpd.pid" bgpd ||
	/usr/lib/frr/bgpd -d -f "$BGPD_CONF" -i "$R/bgpd.pid" --log "file:$R/bgpd.log"
log "FRR up with $BGPD_CONF"
