# Shared helpers for the lab's node scripts (POSIX sh). Sourced, not run.
# Works the same under containerlab (Docker) and torlab (network namespaces).

log() { echo "[$(date -u +%H:%M:%S.%3N)] ${TORLAB_NODE:-$(hostname)}: $*"; }

die() { log "ERROR: $*"; exit 1; }

# own_cpu: this script and everything it starts run at a higher CPU
# priority (nice -10). The node emulates a box with its own CPU (a ToR's
# control plane, an ESXi host); on a shared 2-core machine the emulators
# would otherwise wait behind whatever else runs (compilers, other tests),
# and ovs-vtep's main loop, which reports learned MACs, stretched from ~1.5 s
# to ~5 s under load. Without the privilege (an unprivileged container) it
# changes nothing.
own_cpu() { renice -n -10 -p $$ >/dev/null 2>&1 || log "renice refused: running at normal priority"; }

# wait_ifaces IFACE...: containerlab may attach links after the container
# starts; wait up to 30 s for each interface to appear.
wait_ifaces() {
	for i in "$@"; do
		n=0
		while [ ! -e "/sys/class/net/$i" ]; do
			n=$((n + 1))
			[ "$n" -le 300 ] || die "interface $i did not appear"
			sleep 0.1
		done
	done
}

# await_ifaces SECONDS IFACE...: waits up to SECONDS for the interfaces to
# appear and returns either way (a lab may deploy only some hosts): the
# caller skips the absent ones. containerlab creates a node's links after
# its cmd has started, one link after the other.
await_ifaces() {
	limit=$(($1 * 10))
	shift
	n=0
	for i in "$@"; do
		while [ ! -e "/sys/class/net/$i" ] && [ "$n" -lt "$limit" ]; do
			n=$((n + 1))
			sleep 0.1
		done
	done
}

# tx_off IFACE...: veths whose own end is the kernel stack and whose peer is
# an OVS userspace (netdev) port need TX checksum offload off, or OVS drops
# the frames (torlab and containerlab already do this; repeated for safety).
tx_off() {
	for i in "$@"; do
		ethtool -K "$i" tx off >/dev/null 2>&1 || true
	done
}

# start_ovs DIR [DB...]: ovsdb-server + ovs-vswitchd of this node, all state
# under DIR (its own OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR: one instance per node).
# Extra DB arguments are served by the same ovsdb-server.
start_ovs() {
	dir=$1
	shift
	export OVS_RUNDIR="$dir" OVS_DBDIR="$dir" OVS_LOGDIR="$dir" OVS_SYSCONFDIR="$dir"
	mkdir -p "$dir"
	[ -f "$dir/conf.db" ] || ovsdb-tool create "$dir/conf.db" /usr/share/openvswitch/vswitch.ovsschema
	ovsdb-server --pidfile --detach --log-file \
		--remote="punix:$dir/db.sock" --remote=db:Open_vSwitch,Open_vSwitch,manager_options \
		"$@" "$dir/conf.db"
	ovs-vsctl --no-wait init
	ovs-vswitchd --pidfile --detach --log-file "unix:$dir/db.sock"
}

# pid_alive FILE [COMM]: the pid in FILE runs (a zombie does not count) and,
# with COMM, is that program: pid files live in the node's directory, which
# outlives a container restart, and a new container's small pids soon reuse
# the old numbers.
pid_alive() {
	[ -f "$1" ] || return 1
	p=$(cat "$1")
	kill -0 "$p" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$p/status" 2>/dev/null || return 1
	[ -z "${2:-}" ] || [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$(echo "$2" | cut -c1-15)" ]
}
