#!/bin/sh
# Healthy when torswitch's ovsdb-server serves the hardware_vtep database on
# the agent's port with the switch's Physical_Switch row and tunnel IP
# (checked with vtep-ctl, as an operator would).
PS=${PS_NAME:-${TORLAB_NODE:-$(hostname)}}
[ "$(vtep-ctl --db="tcp:127.0.0.1:${OVSDB_PORT:-6640}" --timeout=2 get Physical_Switch "$PS" tunnel_ips 2>/dev/null)" = "[\"${TUNNEL_IP%/*}\"]" ]
