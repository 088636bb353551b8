#!/bin/sh
# Healthy when torswitch serves its hardware_vtep database with its
# Physical_Switch row and tunnel IP (ovsdb-client: vtep-ctl needs more of
# the OVSDB protocol than torswitch's in-memory server offers).
PS=${PS_NAME:-${TORLAB_NODE:-$(hostname)}}
ovsdb-client --timeout=2 dump "tcp:127.0.0.1:${OVSDB_PORT:-6640}" hardware_vtep Physical_Switch name tunnel_ips 2>/dev/null |
	grep -q "^$PS \[\"${TUNNEL_IP%/*}\"\]"
