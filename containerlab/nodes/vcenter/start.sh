#!/bin/sh
# The simulated vCenter: torvcsim serving the lab inventory on :443. The
# inventory is copied once into the node's own state directory, where tests
# and operators may edit it; `kill -HUP` makes torvcsim apply the edits
# (port group VLANs, VM hosts) to the running simulator.
set -eu
. /lab/lib.sh
INV=/run/torstitch/inventory.yaml
[ -f "$INV" ] || cp /lab/vcenter/inventory.yaml "$INV"
exec torvcsim --listen 0.0.0.0:443 --inventory "$INV" --out /run/torstitch/vcsim
