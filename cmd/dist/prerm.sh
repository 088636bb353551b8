#!/bin/sh
# Removing the package stops its daemons (an upgrade leaves them running; the
# new postinst restarts what runs).
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl stop toragent.service torswitch.service >/dev/null 2>&1 || true
fi
