#!/bin/sh
. /lab/lib.sh
DIR=/var/run/openvswitch
export OVS_RUNDIR=$DIR
pid_alive "$DIR/ovs-vswitchd.pid" && ovs-vsctl --timeout=2 br-exists "${VDS:-vds0}"
