#!/bin/sh
# Healthy when gobgpd answers and at least $BGP_ESTABLISHED (default 0)
# sessions are Established.
out=$(gobgp -u 127.0.0.1 -p 50051 neighbor 2>/dev/null) || exit 1
want=${BGP_ESTABLISHED:-0}
got=$(printf '%s\n' "$out" | grep -c ' Establ ')
[ "$got" -ge "$want" ]
