#!/bin/sh
# Healthy when the agent answers torctl, both switches of the pair are
# connected, every BGP peer is Established and vCenter delivered a valid
# inventory. Env: SWITCHES (default 2).
want=${SWITCHES:-2}
sw=$(torctl show switches -o json 2>/dev/null) || exit 1
[ "$(printf '%s\n' "$sw" | grep -c '"connected": true')" -ge "$want" ] || exit 1
peers=$(torctl show peers -o json 2>/dev/null) || exit 1
printf '%s\n' "$peers" | grep -q '"state"' || exit 1
printf '%s\n' "$peers" | grep '"state"' | grep -vqi established && exit 1
torctl show vcenter -o json 2>/dev/null | grep -q '"valid": true'
