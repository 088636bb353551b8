#!/bin/bash
# clab-env.sh: a Docker engine and containerlab for the lab, on a machine
# that has neither (Debian 12, root). Used by `make images`, `make demo
# RUNTIME=containerlab` and the containerlab end-to-end tests; on a machine
# that already has a working Docker engine and containerlab it installs and
# starts nothing and only reports them.
#
#   containerlab/setup/clab-env.sh up      # install/build what is missing, start dockerd; prints the env file
#   containerlab/setup/clab-env.sh status  # exit 0 when an engine + containerlab are usable; prints the env file
#   containerlab/setup/clab-env.sh down    # stop the dockerd started by `up` (its containers too); caches stay
#   . /run/torstitch-clab/env               # DOCKER_HOST, CLAB (a containerlab command to run), CLAB_NETNS
#
# The workarounds (measured on these machines, ../shared/notes/environment.md
# "Docker and containerlab"):
#  - Debian's docker.io, containerd, runc; services are not started by apt, so
#    dockerd is started here, in its own network namespace ($NETNS, via
#    nsenter: `ip netns exec` remounts /sys and hides the cgroup mounts), so
#    the host's iptables and links stay untouched. containerlab runs in the
#    same namespace (the wrapper $CLAB) with DOCKER_HOST pointing at it.
#  - The capability bounding set here lacks CAP_SYS_RESOURCE, so privileged
#    containers fail ("unable to apply caps"): dockerd's default runtime is a
#    runc wrapper that drops that capability from the OCI spec.
#  - containerlab is built from its Go module ($CLAB_VERSION) as the main
#    module (the proxy gives no version list, `go install` refuses its
#    replace lines). Its kernel-module check reads /proc/modules, which a
#    kernel without module support lacks: the build patches that one check to
#    treat a missing /proc/modules as "built in" (sed below, not committed).
#  - No registry is reachable: the base image local/debian:bookworm is made
#    with debootstrap from the configured Debian mirror and imported.
# Everything lands in $CACHE (binary, Docker data root with the images,
# rootfs tarball, .deb cache), so a second run only starts dockerd.
set -euo pipefail

CACHE=${TORSTITCH_CACHE:-/var/cache/torstitch}
NETNS=${CLAB_NETNS_NAME:-torclab}
RUN=/run/torstitch-clab          # env file, wrappers
XR=/run/tsd                      # dockerd exec root (short: socket paths)
SOCK=$XR/docker.sock
CLAB_VERSION=v0.69.3
CLAB_BIN=$CACHE/containerlab-$CLAB_VERSION/containerlab
BASE_IMAGE=local/debian:bookworm
APT_PKGS="docker.io containerd runc iptables debootstrap jq"
export PATH=/usr/local/go/bin:$PATH

log() { echo "clab-env: $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

# native: a Docker engine that answers and a containerlab on PATH, not ours.
native() {
	[ "${CLAB_ENV_FORCE:-}" = 1 ] && return 1
	command -v containerlab >/dev/null 2>&1 || return 1
	[ "${DOCKER_HOST:-}" = "unix://$SOCK" ] && return 1
	timeout 10 docker info >/dev/null 2>&1
}

write_env() { # $1 DOCKER_HOST, $2 CLAB command, $3 netns ("" for none)
	mkdir -p "$RUN"
	{
		echo "export DOCKER_HOST=$1"
		echo "export CLAB=$2"
		echo "export CLAB_NETNS=$3"
		echo "export DOCKER_BUILDKIT=0"
	} >"$RUN/env.tmp"
	mv "$RUN/env.tmp" "$RUN/env"
	cat "$RUN/env"
}

ours_running() {
	[ -S "$SOCK" ] && DOCKER_HOST=unix://$SOCK timeout 10 docker info >/dev/null 2>&1
}

apt_deps() {
	local missing="" p
	for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
	[ -z "$missing" ] && return 0
	local t; t=$(now)
	log "installing Debian packages:$missing"
	apt-get update -q >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
	log "packages installed in $(since "$t") s"
}

runc_wrapper() {
	mkdir -p "$CACHE/bin"
	cat >"$CACHE/bin/runc-nosysres.tmp" <<'W'
#!/bin/sh
# runc without CAP_SYS_RESOURCE (absent from this machine's bounding set):
# drops it from the bundle's config.json and from `exec --process` files.
bundle= proc= prev=
for a in "$@"; do
	case $prev in --bundle|-b) bundle=$a ;; --process|-p) proc=$a ;; esac
	case $a in --bundle=*) bundle=${a#--bundle=} ;; --process=*) proc=${a#--process=} ;; esac
	prev=$a
done
drop='with_entries(.value |= (if type == "array" then map(select(. != "CAP_SYS_RESOURCE")) else . end))'
strip() { # FILE PATH-EXPR
	[ -f "$1" ] || return 0
	grep -q CAP_SYS_RESOURCE "$1" || return 0
	jq -c "if $2 then $2 |= $drop else . end" "$1" >"$1.nosysres" && cat "$1.nosysres" >"$1" && rm -f "$1.nosysres"
}
[ -n "$bundle" ] && strip "$bundle/config.json" .process.capabilities
[ -n "$proc" ] && strip "$proc" .capabilities
exec /usr/sbin/runc "$@"
W
	chmod 755 "$CACHE/bin/runc-nosysres.tmp"
	mv "$CACHE/bin/runc-nosysres.tmp" "$CACHE/bin/runc-nosysres"
}

build_containerlab() {
	[ -x "$CLAB_BIN" ] && return 0
	local t; t=$(now)
	log "building containerlab $CLAB_VERSION from its Go module (minutes on 2 cores)"
	local dir
	dir=$(go mod download -json "github.com/srl-labs/containerlab@$CLAB_VERSION" | jq -r .Dir)
	local src=$CACHE/containerlab-$CLAB_VERSION/src
	rm -rf "$src" && mkdir -p "$src" && cp -r "$dir/." "$src/" && chmod -R u+w "$src"
	# The one change: no /proc/modules (kernel without module support) means
	# every module containerlab asks about is built in.
	sed -i '0,/^\t\treturn false, err$/s//\t\tif os.IsNotExist(err) {\n\t\t\treturn true, nil \/\/ no module support: built in\n\t\t}\n\t\treturn false, err/' \
		"$src/utils/kernel_module.go"
	grep -q 'no module support' "$src/utils/kernel_module.go" || { log "patching utils/kernel_module.go failed"; exit 1; }
	(cd "$src" && CGO_ENABLED=0 nice -n 10 go build -trimpath -o "$CLAB_BIN.tmp" .) >"$CACHE/containerlab-build.log" 2>&1 ||
		{ tail -20 "$CACHE/containerlab-build.log" >&2; exit 1; }
	mv "$CLAB_BIN.tmp" "$CLAB_BIN"
	rm -rf "$src"
	log "containerlab built in $(since "$t") s"
}

start_dockerd() {
	ours_running && return 0
	local t; t=$(now)
	[ -e "/run/netns/$NETNS" ] || ip netns add "$NETNS"
	ip -n "$NETNS" link set lo up
	# containerlab edits /etc/hosts; under `ip netns exec` this file is the one it sees.
	mkdir -p "/etc/netns/$NETNS" "$XR" "$CACHE/docker"
	[ -f "/etc/netns/$NETNS/hosts" ] || cp /etc/hosts "/etc/netns/$NETNS/hosts"
	if [ -f "$XR/dockerd.pid" ] && kill -0 "$(cat "$XR/dockerd.pid")" 2>/dev/null; then
		log "dockerd $(cat "$XR/dockerd.pid") runs but does not answer; stopping it"
		kill "$(cat "$XR/dockerd.pid")"; sleep 3
	fi
	rm -f "$SOCK"
	nsenter --net="/run/netns/$NETNS" setsid dockerd \
		--data-root "$CACHE/docker" --exec-root "$XR" --pidfile "$XR/dockerd.pid" \
		-H "unix://$SOCK" --storage-driver overlay2 \
		--add-runtime "nosysres=$CACHE/bin/runc-nosysres" --default-runtime nosysres \
		>"$XR/dockerd.log" 2>&1 </dev/null &
	local i
	for i in $(seq 1 600); do
		ours_running && break
		[ "$i" = 600 ] && { tail -20 "$XR/dockerd.log" >&2; log "dockerd did not come up"; exit 1; }
		sleep 0.1
	done
	log "dockerd ready in $(since "$t") s (netns $NETNS, $SOCK, log $XR/dockerd.log)"
}

# cpu_weight: dockerd puts every container in a cgroup under "docker", and
# that group competes for CPU like a single process: a 16-node lab got one
# process's share on a busy 2-core machine (ovs-vtep took 40 s to learn a
# MAC) while torlab's nodes compete process by process. Weight the group as
# 16 processes.
cpu_weight() {
	if [ -d /sys/fs/cgroup/cpu ] && [ ! -e /sys/fs/cgroup/cgroup.controllers ]; then # v1
		mkdir -p /sys/fs/cgroup/cpu/docker && echo 16384 >/sys/fs/cgroup/cpu/docker/cpu.shares
	elif [ -e /sys/fs/cgroup/cgroup.controllers ]; then # v2 (cgroupfs driver: /docker)
		mkdir -p /sys/fs/cgroup/docker && echo 1600 >/sys/fs/cgroup/docker/cpu.weight
	fi 2>/dev/null || log "could not raise the docker cgroup's CPU weight (lab nodes may starve under load)"
}

base_image() {
	DOCKER_HOST=unix://$SOCK docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return 0
	local t; t=$(now)
	local tar=$CACHE/debian-bookworm-minbase.tar
	if [ ! -f "$tar" ]; then
		local mirror
		mirror=$(awk '/^URIs:/ && !/security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
		[ -n "$mirror" ] || mirror=$(awk '$1=="deb" && !/security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
		[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
		log "debootstrap --variant=minbase bookworm from $mirror (minutes)"
		local root=$CACHE/rootfs.tmp
		rm -rf "$root"
		debootstrap --variant=minbase bookworm "$root" "$mirror" >"$CACHE/debootstrap.log" 2>&1 ||
			{ tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
		# Services never start on package installs in images.
		printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod 755 "$root/usr/sbin/policy-rc.d"
		rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
		tar -C "$root" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
		rm -rf "$root"
	fi
	DOCKER_HOST=unix://$SOCK docker import "$tar" "$BASE_IMAGE" >/dev/null
	log "base image $BASE_IMAGE in $(since "$t") s"
}

clab_wrapper() {
	mkdir -p "$RUN"
	cat >"$RUN/containerlab.tmp" <<W
#!/bin/sh
# containerlab in dockerd's network namespace ($NETNS), talking to that dockerd.
export DOCKER_HOST=unix://$SOCK
exec ip netns exec $NETNS $CLAB_BIN "\$@"
W
	chmod 755 "$RUN/containerlab.tmp" && mv "$RUN/containerlab.tmp" "$RUN/containerlab"
}

up() {
	if native; then
		log "using the Docker engine and containerlab already here ($(command -v containerlab))"
		write_env "${DOCKER_HOST:-unix:///var/run/docker.sock}" "$(command -v containerlab)" ""
		return 0
	fi
	[ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }
	local t; t=$(now)
	apt_deps
	runc_wrapper
	build_containerlab
	start_dockerd
	cpu_weight
	base_image
	clab_wrapper
	write_env "unix://$SOCK" "$RUN/containerlab" "$NETNS"
	log "ready in $(since "$t") s"
}

status() {
	if native; then write_env "${DOCKER_HOST:-unix:///var/run/docker.sock}" "$(command -v containerlab)" ""; return 0; fi
	ours_running && [ -x "$CLAB_BIN" ] && [ -x "$RUN/containerlab" ] || return 1
	write_env "unix://$SOCK" "$RUN/containerlab" "$NETNS"
}

down() {
	native && { log "not ours: nothing to stop"; return 0; }
	if ours_running; then
		local ids
		ids=$(DOCKER_HOST=unix://$SOCK docker ps -aq)
		[ -z "$ids" ] || DOCKER_HOST=unix://$SOCK docker rm -f $ids >/dev/null
	fi
	if [ -f "$XR/dockerd.pid" ]; then
		local p; p=$(cat "$XR/dockerd.pid")
		if kill "$p" 2>/dev/null; then
			local i
			for i in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		fi
	fi
	[ -e "/run/netns/$NETNS" ] && ip netns del "$NETNS" || true
	rm -rf "$RUN"
	log "stopped (caches in $CACHE kept)"
}

case ${1:-up} in
up) up ;;
status) status ;;
down) down ;;
*) echo "usage: $0 up|status|down" >&2; exit 2 ;;
esac
