#!/bin/sh
# purge also removes the daemons' state (StateDirectory: bindings, vtep.db)
# and the units' enablement links; dpkg removes the configuration files.
set -e
if [ "$1" = purge ]; then
	rm -rf /var/lib/torstitch /var/lib/torswitch
	rm -f /etc/systemd/system/multi-user.target.wants/toragent.service \
		/etc/systemd/system/multi-user.target.wants/torswitch.service
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null || true
fi
