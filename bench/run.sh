#!/usr/bin/env bash
# Benchmark synrst against tcpdump's filter and tshark's conversation table, interleaved.
#
#   bench/run.sh [RUNS]        (default 5; needs tcpdump, tshark, /usr/bin/time, python3)
#
# Captures are generated deterministically by examples/gen_capture.rs and kept on a RAM disk
# (/dev/shm, tmpfs): these machines drop their page cache within minutes, so a file on disk
# would be partly re-read from disk between runs and the numbers would measure the disk.
# Each round runs every tool once on each capture, in turn, so that drift affects all alike;
# the table gives medians, min-max, peak RSS and the throughput ratios against tcpdump and
# tshark. Timings on shared virtual machines drift by tens of percent from minute to minute:
# compare ratios from one run, not seconds from different runs.
#
# Environment: BENCH_DIR (default /dev/shm/synrst-bench; removed at the end),
# CARGO_TARGET_DIR (where cargo builds, default target/).
set -euo pipefail
export LC_ALL=C # a decimal point in $EPOCHREALTIME and awk
cd "$(dirname "$0")/.."
RUNS=${1:-5}
DIR=${BENCH_DIR:-/dev/shm/synrst-bench}
TARGET=${CARGO_TARGET_DIR:-target}
FILTER='tcp[tcpflags] & (tcp-syn|tcp-rst) != 0 or icmp or icmp6'
for tool in tcpdump tshark python3 /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "bench/run.sh needs $tool" >&2; exit 2; }
done
mkdir -p "$DIR"
trap 'rm -rf "$DIR"' EXIT

echo "== building (release)"
cargo build --release --quiet
cargo build --release --quiet --example gen_capture
BIN=$TARGET/release/synrst
GEN=$TARGET/release/examples/gen_capture
[ -s "$DIR/mix.pcap" ] || "$GEN" mix "$DIR/mix.pcap" 1024
[ -s "$DIR/flood.pcap" ] || "$GEN" flood "$DIR/flood.pcap" 10000000

# A benchmark of a run that failed or read half the file measures nothing: check first.
for cap in mix flood; do
	"$BIN" analyze "$DIR/$cap.pcap" --format json 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
c = r["capture"]
assert c["frames"] == c["decoded"] + sum(c["skipped"].values()), "frames not accounted for"
damage = [w for w in c["warnings"] if "offset" in w]
assert not damage, damage
print("== %s: %d frames, %d attempts (%d listed)" % (sys.argv[1], c["frames"], r["summary"]["attempts"], len(r["attempts"])))
' "$cap"
done

declare -A T R
measure() { # name capture cmd...
	local name=$1 cap=$2; shift 2
	local start end
	# Wall time from bash's microsecond clock (GNU time's %e has only centiseconds, a tenth
	# of the mix's run time); peak RSS from GNU time. -o: the command's own stderr goes to
	# /dev/null, the measurement to a file.
	start=$EPOCHREALTIME
	/usr/bin/time -o "$DIR/time" -f '%M' "$@" >/dev/null 2>/dev/null
	end=$EPOCHREALTIME
	T[$name.$cap]+="$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }') "
	R[$name.$cap]+="$(tail -1 "$DIR/time") "
}

for ((i = 1; i <= RUNS; i++)); do
	echo "== round $i/$RUNS"
	for cap in mix flood; do
		f="$DIR/$cap.pcap"
		measure synrst "$cap" "$BIN" analyze "$f" --format json
		measure tcpdump "$cap" tcpdump -r "$f" -w /dev/null "$FILTER"
		# tshark takes ~8 s and 1.5 GB on the mix: once per round on the mix only.
		[ "$cap" = mix ] && measure tshark "$cap" tshark -r "$f" -q -z conv,tcp
	done
done

stats() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {printf "%s %s %s", a[int((NR+1)/2)], a[1], a[NR]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b > 0) printf "%.2fx", a / b; else print "-" }'; }
printf '\n%-8s %-7s %10s %13s %13s %11s %10s\n' capture tool "median s" "min-max s" "peak RSS MiB" "vs tcpdump" "vs tshark"
for cap in mix flood; do
	read -r tmed _ _ <<<"$(echo "${T[tcpdump.$cap]}" | stats)"
	smed=""
	[ -n "${T[tshark.$cap]:-}" ] && read -r smed _ _ <<<"$(echo "${T[tshark.$cap]}" | stats)"
	for tool in synrst tcpdump tshark; do
		[ -n "${T[$tool.$cap]:-}" ] || continue
		read -r med lo hi <<<"$(echo "${T[$tool.$cap]}" | stats)"
		read -r _ _ rmax <<<"$(echo "${R[$tool.$cap]}" | stats)"
		printf '%-8s %-7s %10s %13s %13d %11s %10s\n' "$cap" "$tool" "$med" "$lo-$hi" "$((rmax / 1024))" \
			"$(ratio "$tmed" "$med")" "$(ratio "$smed" "$med")"
	done
done
# Memory must not grow with the capture's size: the same traffic, half as long.
[ -s "$DIR/mix-half.pcap" ] || "$GEN" mix "$DIR/mix-half.pcap" 512
[ -s "$DIR/flood-half.pcap" ] || "$GEN" flood "$DIR/flood-half.pcap" 5000000
echo
printf '%-8s %18s %18s\n' capture "peak RSS MiB half" "peak RSS MiB full"
for cap in mix flood; do
	/usr/bin/time -o "$DIR/time" -f '%M' "$BIN" analyze "$DIR/$cap-half.pcap" --format json >/dev/null 2>/dev/null
	half=$(tail -1 "$DIR/time")
	read -r _ _ full <<<"$(echo "${R[synrst.$cap]}" | stats)"
	printf '%-8s %18d %18d\n' "$cap" "$((half / 1024))" "$((full / 1024))"
done
rm -f "$DIR/mix-half.pcap" "$DIR/flood-half.pcap"

echo
echo "machine: $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%d GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r); captures on tmpfs ($DIR)"
echo "mix: $(stat -c %s "$DIR/mix.pcap") bytes; flood: $(stat -c %s "$DIR/flood.pcap") bytes"
echo "ratio = the other tool's median time / this tool's median time (above 1: this tool is faster)"
echo "peak RSS = the largest of the runs"
