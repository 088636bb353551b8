#!/bin/bash
# Builds the images the lab topologies name (torstitch/{ovs,frr,host,torstitch,torswitch}:latest)
# as thin layers on the local Debian base (local/debian:bookworm, made by
# containerlab/setup/clab-env.sh): Debian packages from a local .deb cache,
# project binaries copied from bin/ (`make build`). No registry and no
# network inside the build: seconds per image once the .deb cache is filled.
#
#   make images                       # = make build + this script
#   containerlab/images/build.sh [IMAGE...]
#
# The .deb cache ($CACHE/debs/IMAGE) is filled on the host with
# `apt-get install --download-only` against the base image's dpkg status, so
# it holds exactly what the base lacks; it is kept for the next build.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
CACHE=${TORSTITCH_CACHE:-/var/cache/torstitch}
BASE=${BASE_IMAGE:-local/debian:bookworm}
BIN=${BIN_DIR:-$REPO/bin}

# image -> Debian packages, binaries from bin/, Dockerfile
declare -A PKGS=(
	[ovs]="openvswitch-switch openvswitch-common openvswitch-vtep python3 iproute2 iputils-ping ethtool tcpdump procps tini"
	[frr]="frr gobgpd iproute2 iputils-ping ethtool tcpdump procps tini"
	[host]="iproute2 iputils-ping ethtool iperf3 tcpdump procps tini"
	[torstitch]="ca-certificates iproute2 iputils-ping procps tini"
	[torswitch]="openvswitch-common openvswitch-vtep iproute2 iputils-ping ethtool procps tini"
)
declare -A BINS=([torstitch]="toragent torctl torvcsim" [torswitch]="torswitch")
dockerfile() { [ "$1" = torswitch ] && echo containerlab/torswitch/Dockerfile || echo "containerlab/images/$1/Dockerfile"; }

if [ -z "${DOCKER_HOST:-}" ] || ! docker info >/dev/null 2>&1; then
	eval "$(containerlab/setup/clab-env.sh up)"
fi
export DOCKER_BUILDKIT=0

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

# The base image's dpkg status: what apt must not download again.
status=$CACHE/base-dpkg-status
if [ ! -s "$status" ] || [ "$(docker image inspect -f '{{.Id}}' "$BASE")" != "$(cat "$status.id" 2>/dev/null)" ]; then
	mkdir -p "$CACHE"
	cid=$(docker create "$BASE" /bin/true)
	docker cp "$cid:/var/lib/dpkg/status" "$status.tmp" && mv "$status.tmp" "$status"
	docker rm "$cid" >/dev/null
	docker image inspect -f '{{.Id}}' "$BASE" >"$status.id"
	rm -rf "$CACHE/debs" # filled against another base
fi

fetch_debs() { # IMAGE
	local dir=$CACHE/debs/$1
	[ -f "$dir/.complete" ] && [ "$(cat "$dir/.complete")" = "${PKGS[$1]}" ] && return 0
	rm -rf "$dir" && mkdir -p "$dir/partial"
	ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 || apt-get update -q >/dev/null
	apt-get -q -y --no-install-recommends --download-only \
		-o Dir::State::status="$status" -o Dir::Cache::archives="$dir" -o Debug::NoLocking=1 \
		install ${PKGS[$1]} >"$dir.log" 2>&1 || { tail -20 "$dir.log" >&2; exit 1; }
	rm -rf "$dir/partial" "$dir/lock"
	# A flat repository index, so that apt (not dpkg -i, which cannot order
	# pre-dependencies) installs from the directory inside the build.
	local f
	for f in "$dir"/*.deb; do
		dpkg-deb -f "$f"
		echo "Filename: ./$(basename "$f")"
		echo "Size: $(stat -c %s "$f")"
		echo "SHA256: $(sha256sum "$f" | cut -d' ' -f1)"
		echo
	done >"$dir/Packages"
	echo "${PKGS[$1]}" >"$dir/.complete"
}

images=("$@")
[ ${#images[@]} -gt 0 ] || images=(ovs frr host torstitch torswitch)
for img in "${images[@]}"; do
	[ -n "${PKGS[$img]:-}" ] || { echo "unknown image $img" >&2; exit 2; }
	t=$(now)
	fetch_debs "$img"
	ctx=$CACHE/imgctx/$img
	rm -rf "$ctx" && mkdir -p "$ctx/bin" "$ctx/debs"
	cp -l "$CACHE/debs/$img/"{*.deb,Packages} "$ctx/debs/" 2>/dev/null || cp "$CACHE/debs/$img/"{*.deb,Packages} "$ctx/debs/"
	for b in ${BINS[$img]:-}; do
		[ -x "$BIN/$b" ] || { echo "$BIN/$b missing: run make build first" >&2; exit 1; }
		cp "$BIN/$b" "$ctx/bin/"
	done
	docker build -q --build-arg "BASE=$BASE" -t "torstitch/$img:latest" -f "$REPO/$(dockerfile "$img")" "$ctx" >"$ctx.log" 2>&1 ||
		{ cat "$ctx.log" >&2; exit 1; }
	echo "torstitch/$img:latest built in $(since "$t") s ($(ls "$ctx/debs" | wc -l) debs, bins: ${BINS[$img]:-none})"
done
