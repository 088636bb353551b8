#!/bin/bash
# bench-evpn.sh — EVPN route intake, toragent against FRR 8.4 in the same run (issue 18).
#
# Runs the shared instrument (../shared/bench/perf-evpn-install.sh: a GoBGP fabric preloads N
# type-2 routes; FRR installs them into its kernel FDB, then toragent built from this checkout
# installs them into Ucast_Macs_Remote of a real ovsdb-server; both timed from Established)
# RUNS times for each size, then prints each run, the median toragent/FRR ratio per size and the
# load average before and after (the machine is shared: compare ratios of one run, not times).
#
# Usage: evpn/bench/bench-evpn.sh [-r RUNS] [SIZE...]   (default: -r 3 1000 10000 100000)
# Environment: EVPN_BENCH (the instrument), root; see the instrument's --help.
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BENCH=${EVPN_BENCH:-$ROOT/../shared/bench/perf-evpn-install.sh}
RUNS=3
if [ "${1:-}" = -r ]; then RUNS=${2:?-r RUNS}; shift 2; fi
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1000 10000 100000)
[ -x "$BENCH" ] || { echo "bench-evpn: instrument $BENCH not found (set EVPN_BENCH)" >&2; exit 2; }

load() { cut -d' ' -f1-3 /proc/loadavg; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p" | head -1; }

ERR=$(mktemp)
trap 'rm -f "$ERR"' EXIT
declare -A RATIOS FRR AGENT
fail=0
for n in "${SIZES[@]}"; do
    for r in $(seq "$RUNS"); do
        before=$(load)
        out=$("$BENCH" "$n" --both --agent "$ROOT" 2>"$ERR") || {
            echo "N=$n run $r: instrument failed:" >&2; tail -5 "$ERR" >&2; fail=1; continue; }
        f=$(grep '^frr ' <<<"$out"); a=$(grep '^torstitch ' <<<"$out"); q=$(grep '^ratio ' <<<"$out")
        printf 'N=%-6s run %d  frr %8ss  toragent %8ss  %s  (load %s -> %s)\n' "$n" "$r" \
            "$(field install_s "$f")" "$(field install_s "$a")" "$q" "$before" "$(load)"
        RATIOS[$n]+=" ${q#ratio torstitch/frr=}"
        FRR[$n]+=" $(field install_s "$f")"; AGENT[$n]+=" $(field install_s "$a")"
    done
done
echo
echo "median of $RUNS (toragent/FRR <= 1.0 is issue 18's target):"
for n in "${SIZES[@]}"; do
    printf 'N=%-6s frr %8ss  toragent %8ss  ratio %s\n' "$n" \
        "$(tr ' ' '\n' <<<"${FRR[$n]:-}" | grep . | median)" \
        "$(tr ' ' '\n' <<<"${AGENT[$n]:-}" | grep . | median)" \
        "$(tr ' ' '\n' <<<"${RATIOS[$n]:-}" | grep . | median)"
done
exit $fail
