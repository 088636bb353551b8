#!/bin/sh
# gobgpd as a route reflector (the node's cmd). Env: LOCAL_IP (CIDR),
# UNDERLAY_IF (eth1), GOBGPD_CONF.
set -eu
. /lab/lib.sh
: "${UNDERLAY_IF:=eth1}" "${LOCAL_IP:?}" "${GOBGPD_CONF:=/lab/rr2/gobgpd.toml}"
wait_ifaces "$UNDERLAY_IF"
tx_off "$UNDERLAY_IF"
ip addr replace "$LOCAL_IP" dev "$UNDERLAY_IF"
ip link set "$UNDERLAY_IF" up
log "gobgpd with $GOBGPD_CONF"
exec gobgpd -f "$GOBGPD_CONF" -p --api-hosts 127.0.0.1:50051 --pprof-disable -l info
