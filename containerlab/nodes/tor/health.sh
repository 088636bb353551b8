#!/bin/sh
# Healthy when ovsdb answers, the physical switch is in vtep.db and
# ovs-vswitchd and ovs-vtep run.
. /lab/lib.sh
DIR=/var/run/openvswitch
PS=${PS_NAME:-${TORLAB_NODE:-$(hostname)}}
export OVS_RUNDIR=$DIR
vtep-ctl --timeout=2 list-ps | grep -qx "$PS" &&
	pid_alive "$DIR/ovs-vswitchd.pid" && pid_alive "$DIR/ovs-vtep.pid" ovs-vtep &&
	ovs-vsctl --timeout=2 br-exists "$PS"
