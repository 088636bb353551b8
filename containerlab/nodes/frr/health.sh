#!/bin/sh
# Healthy when zebra and bgpd answer vtysh, bgpd is zebra's client, and at
# least $BGP_ESTABLISHED (default 0) EVPN sessions are Established.
vtysh -c "show zebra client summary" 2>/dev/null | grep -q bgp || exit 1
want=${BGP_ESTABLISHED:-0}
got=$(vtysh -c "show bgp l2vpn evpn summary json" 2>/dev/null | grep -c '"state":"Established"')
[ "$got" -ge "$want" ]
