#!/bin/sh
# Healthy when zebra and bgpd answer vtysh.
vtysh -c "show bgp l2vpn evpn summary" >/dev/null 2>&1 && vtysh -c "show zebra client summary" 2>/dev/null | grep -q bgp
