#!/bin/sh
# The units are installed, not enabled: edit /etc/torstitch/toragent.yaml
# (or /etc/default/torswitch) first, then `systemctl enable --now toragent`.
# An upgrade restarts the daemons that run.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null || true
	if [ "$1" = configure ] && [ -n "$2" ]; then
		systemctl try-restart toragent.service torswitch.service >/dev/null 2>&1 || true
	fi
fi
