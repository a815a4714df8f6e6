#!/usr/bin/env bash
# synrst lab: real captures of TCP SYNs and what answered them, made by real
# Linux kernels in network namespaces, with machine-readable ground truth.
#
#   sudo lab/run.sh [--out DIR] [--no-check] [--live SYNRST] [--probe SYNRST] [SCENARIO...]
#   lab/run.sh --list
#
# Topology (all inside namespaces this script creates; see lab/README.md):
#
#   client --- r1 --- fw --- r2 --- server
#   .1.2   .1.1  .2.1  .2.2 .3.1  .3.2 .4.1  .4.2 (+ .4.3)      198.18.N.x/24
#   :1::2  :1::1 :2::1 :2::2 :3::1 :3::2 :4::1 :4::2 (+ :4::3)  2001:db8:N::x/64
#
# Safety: only 198.18.0.0/15 and 2001:db8::/32, only inside this run's own
# namespaces (named srl<PID>-*), no default routes, no link to the root
# namespace; every wait is bounded; everything is torn down on exit, error,
# Ctrl-C or TERM.
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PFX="srl$$"
NS_CL="$PFX-client" NS_R1="$PFX-r1" NS_FW="$PFX-fw" NS_R2="$PFX-r2" NS_SV="$PFX-server"
ALL_NS=("$NS_CL" "$NS_R1" "$NS_FW" "$NS_R2" "$NS_SV")
CL4=198.18.1.2 CL6=2001:db8:1::2
SV4=198.18.4.2 SV6=2001:db8:4::2
SERVER_PORTS=80,82,83,84,85,86,87,88,89,90,443
BUDGET=230          # seconds; the whole run must stay under ~4 minutes (more with --probe)

# --------------------------------------------------------------------------
# Attempts: one connection attempt each (a 4-tuple once the source port is
# assigned by the capture that runs it).
#   id | destination | dport | expected client errno | outcome | verdict | notes
# notes end with "answered by ADDR (who, hop N, ttl T)" when something
# answers; lab/check_captures.py checks that (and any "ICMP t/c") on the wire.
ATTEMPTS=$(cat <<'EOF'
synack|198.18.4.2|80|-|accepted|accepted|open port: the python listener in the server ns accepts, a few bytes are exchanged and both sides close with FIN; answered by 198.18.4.2 (server, hop 4, ttl 61)
synack-alt|198.18.4.3|443|-|accepted|accepted|open port on the server's second address; answered by 198.18.4.3 (server, hop 4, ttl 61)
rst-host|198.18.4.2|81|ECONNREFUSED|refused|closed-port|closed port, no firewall anywhere: the server kernel's own RST+ACK (seq 0, ack ISN+1); answered by 198.18.4.2 (server, hop 4, ttl 61)
rst-path|198.18.4.2|82|ECONNREFUSED|refused|path-firewall|path firewall fw: nft forward 'reject with tcp reset'; the RST+ACK carries the server's address but fw made it (the server does listen on 82); answered by 198.18.4.2 (forged by fw, hop 2, ttl 63)
icmp-port-path|198.18.4.2|83|ECONNREFUSED|unreachable|path-firewall|path firewall fw: nft forward 'reject with icmp type port-unreachable' (what iptables' plain REJECT sends): ICMP 3/3 from a router, not from the destination; answered by 198.18.2.2 (fw, hop 2, ttl 63)
icmp-admin-path|198.18.4.2|84|EHOSTUNREACH|unreachable|path-firewall|path firewall fw: nft forward 'reject with icmpx type admin-prohibited': ICMP 3/13 communication administratively prohibited; answered by 198.18.2.2 (fw, hop 2, ttl 63)
icmp-hostprohib-path|198.18.4.2|85|EHOSTUNREACH|unreachable|path-firewall|path firewall fw: nft forward 'reject with icmp type host-prohibited': ICMP 3/10 host administratively prohibited; answered by 198.18.2.2 (fw, hop 2, ttl 63)
drop-path|198.18.4.2|86|ETIMEDOUT|no-answer|filtered-or-down|path firewall fw: nft forward 'drop': SYN and 2 retransmissions (client TCP_SYNCNT=2, at about 0/1/3 s), no answer at all; the kernel gives up with ETIMEDOUT after about 7 s
icmp-port-hostfw|198.18.4.2|87|ECONNREFUSED|unreachable|host-firewall|the server's own firewall: nft input 'reject with icmpx type port-unreachable' (the server listens on 87): ICMP 3/3 from the destination itself, which a TCP stack never sends for TCP; answered by 198.18.4.2 (server, hop 4, ttl 61)
drop-hostfw|198.18.4.2|88|ETIMEDOUT|no-answer|filtered-or-down|the server's own firewall: nft input 'drop' (the server listens on 88): SYN and 2 retransmissions, no answer; kernel ETIMEDOUT after about 7 s; indistinguishable on the wire from the path drop
rst-hostfw|198.18.4.2|89|ECONNREFUSED|refused|closed-port|really the server's own firewall: nft input 'reject with tcp reset' (the server listens on 89), but its RST+ACK is wire-identical to a closed port's, so closed-port is the best any tool can say; answered by 198.18.4.2 (server, hop 4, ttl 61)
rst-injected|198.18.4.2|90|ECONNREFUSED|refused|path-firewall|on-path injector in fw (lab/inject.py) forges a RST+ACK (ack ISN+1, own IP ID, no DF) and holds the genuine SYN back 0.3 s; the server's genuine SYN-ACK (ttl 61) arrives after the forged RST and the client, already aborted, answers it with its own RST; answered by 198.18.4.2 (injected by fw, hop 2, ttl 63)
icmp-host-unreach|198.18.4.99|80|EHOSTUNREACH|unreachable|host-unreachable|nobody owns 198.18.4.99 on the server's subnet: the last router r2 gives up ARP after about 3 s and sends ICMP 3/1 for every queued SYN (the first one and its retransmission); answered by 198.18.3.2 (r2, hop 3, ttl 62)
icmp-net-unreach|198.18.99.1|80|ENETUNREACH|unreachable|net-unreachable|r1 has no route to 198.18.99.0/24 (and no default route): ICMP 3/0 network unreachable at once; answered by 198.18.1.1 (r1, hop 1, ttl 64)
v6-synack|2001:db8:4::2|80|-|accepted|accepted|IPv6 open port; answered by 2001:db8:4::2 (server, hop 4, ttl 61)
v6-rst-host|2001:db8:4::2|81|ECONNREFUSED|refused|closed-port|IPv6 closed port: the server kernel's own RST+ACK; answered by 2001:db8:4::2 (server, hop 4, ttl 61)
v6-rst-path|2001:db8:4::2|82|ECONNREFUSED|refused|path-firewall|IPv6 path firewall fw: nft forward 'reject with tcp reset'; answered by 2001:db8:4::2 (forged by fw, hop 2, ttl 63)
v6-icmp-port-path|2001:db8:4::2|83|ECONNREFUSED|unreachable|path-firewall|IPv6 path firewall fw: nft forward 'reject with icmpv6 type port-unreachable': ICMPv6 1/4 from a router; answered by 2001:db8:2::2 (fw, hop 2, ttl 63)
v6-icmp-admin-path|2001:db8:4::2|84|EACCES|unreachable|path-firewall|IPv6 path firewall fw: nft forward 'reject with icmpx type admin-prohibited': ICMPv6 1/1 communication administratively prohibited (Linux maps it to EACCES); answered by 2001:db8:2::2 (fw, hop 2, ttl 63)
v6-drop-path|2001:db8:4::2|86|ETIMEDOUT|no-answer|filtered-or-down|IPv6 path firewall fw: nft forward 'drop': SYN and 2 retransmissions, no answer; kernel ETIMEDOUT after about 7 s
v6-icmp-addr-unreach|2001:db8:4::99|80|EHOSTUNREACH|unreachable|host-unreachable|nobody owns 2001:db8:4::99: the last router r2 gives up neighbour discovery after about 3 s and sends ICMPv6 1/3 address unreachable; answered by 2001:db8:3::2 (r2, hop 3, ttl 62)
v6-icmp-noroute|2001:db8:99::1|80|ENETUNREACH|unreachable|net-unreachable|r1 has no route to 2001:db8:99::/64 (and no default route): ICMPv6 1/0 no route to destination at once; answered by 2001:db8:1::1 (r1, hop 1, ttl 64)
EOF
)

# Captures: one output file each; SCENARIO names on the command line are ids.
#   id | file | first source port | flags | linger s | attempt ids (concurrent)
# linger: how long the capture keeps running after the last client returned
# (late packets: the FIN exchange, the injector's delayed SYN-ACK and the
# client's RST for it, the ICMP for a SYN retransmitted while ARP/ND failed).
# flags: offload = leave veth TX checksum offload ON during this capture,
#        inject  = run lab/inject.py in fw during this capture,
#        sll2    = capture with `tcpdump -i any -y LINUX_SLL2`, save as pcapng.
CAPTURES=$(cat <<'EOF'
synack|syn-synack.pcap|40001|-|0.6|synack
synack-offload|syn-synack-csum-offload.pcap|40002|offload|0.6|synack
rst-host|syn-rst-host.pcap|40003|-|0.6|synack,rst-host
rst-path|syn-rst-path.pcap|40004|-|0.6|synack,rst-path
icmp-port-path|syn-icmp-port-unreach-path.pcap|40005|-|0.6|icmp-port-path
icmp-admin-path|syn-icmp-admin-prohibited.pcap|40006|-|0.6|icmp-admin-path
icmp-hostprohib-path|syn-icmp-host-prohibited.pcap|40007|-|0.6|icmp-hostprohib-path
drop-path|syn-drop-path.pcap|40008|-|0.6|drop-path
icmp-port-hostfw|syn-icmp-port-unreach-host.pcap|40009|-|0.6|icmp-port-hostfw
drop-hostfw|syn-drop-host.pcap|40010|-|0.6|drop-hostfw
rst-hostfw|syn-rst-hostfw.pcap|40011|-|0.6|synack,rst-hostfw
rst-injected|syn-rst-injected.pcap|40012|inject|1.2|rst-injected
icmp-host-unreach|syn-icmp-host-unreach.pcap|40013|-|3.6|icmp-host-unreach
icmp-net-unreach|syn-icmp-net-unreach.pcap|40014|-|0.6|icmp-net-unreach
v6-synack|v6-syn-synack.pcap|40021|-|0.6|v6-synack
v6-rst-host|v6-syn-rst-host.pcap|40022|-|0.6|v6-synack,v6-rst-host
v6-rst-path|v6-syn-rst-path.pcap|40023|-|0.6|v6-synack,v6-rst-path
v6-icmp-port-path|v6-syn-icmp-port-unreach-path.pcap|40024|-|0.6|v6-icmp-port-path
v6-icmp-admin-path|v6-syn-icmp-admin-prohibited.pcap|40025|-|0.6|v6-icmp-admin-path
v6-drop-path|v6-syn-drop-path.pcap|40026|-|0.6|v6-drop-path
v6-icmp-addr-unreach|v6-syn-icmp-addr-unreach.pcap|40027|-|3.6|v6-icmp-addr-unreach
v6-icmp-noroute|v6-syn-icmp-noroute.pcap|40028|-|0.6|v6-icmp-noroute
mixed|lab-mixed.pcap|41001|-|3.6|synack,rst-host,rst-path,icmp-port-path,icmp-admin-path,drop-path,icmp-host-unreach,synack-alt,v6-synack,v6-rst-host,v6-icmp-admin-path
any-sll2|any-sll2.pcapng|42001|sll2|0.6|synack,rst-host,rst-path,icmp-port-path,drop-path,v6-synack,v6-rst-host,v6-icmp-admin-path
EOF
)

# nft rulesets (documented verbatim in captures/README.md).
FW_RULES=$(cat <<'EOF'
table inet synrst_lab_fw {
	chain forward {
		type filter hook forward priority filter; policy accept;
		ip daddr 198.18.4.2 tcp dport 82 reject with tcp reset
		ip daddr 198.18.4.2 tcp dport 83 reject with icmp type port-unreachable
		ip daddr 198.18.4.2 tcp dport 84 reject with icmpx type admin-prohibited
		ip daddr 198.18.4.2 tcp dport 85 reject with icmp type host-prohibited
		ip daddr 198.18.4.2 tcp dport 86 drop
		ip daddr 198.18.4.2 tcp dport 90 tcp flags & (syn | ack) == syn drop
		ip6 daddr 2001:db8:4::2 tcp dport 82 reject with tcp reset
		ip6 daddr 2001:db8:4::2 tcp dport 83 reject with icmpv6 type port-unreachable
		ip6 daddr 2001:db8:4::2 tcp dport 84 reject with icmpx type admin-prohibited
		ip6 daddr 2001:db8:4::2 tcp dport 86 drop
	}
}
EOF
)
HOST_RULES=$(cat <<'EOF'
table inet synrst_lab_host {
	chain input {
		type filter hook input priority filter; policy accept;
		tcp dport 87 reject with icmpx type port-unreachable
		tcp dport 88 drop
		tcp dport 89 reject with tcp reset
	}
}
EOF
)

# --------------------------------------------------------------------------
die() { echo "lab: error: $*" >&2; exit 1; }
log() { echo "lab: $*" >&2; }

usage() {
	sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
	echo
	echo "Scenarios (default: all):"
	while IFS='|' read -r id file _; do printf '  %-22s %s\n' "$id" "$file"; done <<<"$CAPTURES"
}

OUT="" CHECK=1 SELECTED=() LIVE_BIN="" PROBE_BIN=""
while (($#)); do
	case "$1" in
	--out) [[ $# -ge 2 ]] || die "--out needs a directory"; OUT=$2; shift 2 ;;
	--out=*) OUT=${1#--out=}; shift ;;
	--no-check) CHECK=0; shift ;;
	--live) [[ $# -ge 2 ]] || die "--live needs the synrst binary"; LIVE_BIN=$2; shift 2 ;;
	--probe) [[ $# -ge 2 ]] || die "--probe needs the synrst binary"; PROBE_BIN=$2; shift 2 ;;
	--list) usage; exit 0 ;;
	-h | --help) usage; exit 0 ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) SELECTED+=("$1"); shift ;;
	esac
done

# Validate scenario names before touching anything.
declare -A CAP_KNOWN=()
while IFS='|' read -r id _; do CAP_KNOWN[$id]=1; done <<<"$CAPTURES"
for s in "${SELECTED[@]}"; do [[ -n ${CAP_KNOWN[$s]:-} ]] || die "unknown scenario '$s' (see --list)"; done

[[ -n $PROBE_BIN ]] && BUDGET=600  # each scenario is probed too
[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, nft, tcpdump): sudo $0 $*"
for tool in ip nft tcpdump ethtool python3 editcap timeout; do
	command -v "$tool" >/dev/null || die "missing tool '$tool' (Debian: iproute2 nftables tcpdump ethtool python3 tshark coreutils)"
done

# --------------------------------------------------------------------------
# Cleanup: always, exactly once; only what this run created.
PIDS=()          # background processes started by this run
CREATED_NS=()    # namespaces created by this run
WORK=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	local pid ns
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
	done
	for ns in "${CREATED_NS[@]}"; do
		# Anything still running inside our own namespace was started by us.
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	[[ -n $WORK && -d $WORK ]] && rm -rf -- "$WORK"
	local left
	left=$(ip netns list 2>/dev/null | awk -v p="$PFX-" 'index($1, p) == 1 {print $1}')
	if [[ -n $left ]]; then
		echo "lab: WARNING: namespaces left behind: $left" >&2
		rc=1
	else
		log "cleaned up (namespaces $PFX-* removed)"
	fi
	exit "$rc"
}
on_signal() { echo "lab: interrupted by SIG$1, cleaning up" >&2; exit 130; }
trap cleanup EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM

WORK=$(mktemp -d /tmp/synrst-lab.XXXXXX)
if [[ -z $OUT ]]; then
	OUT=$(mktemp -d /tmp/synrst-captures.XXXXXX)
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# Foreground helper only: background processes are started with a direct
# `ip netns exec` (which execs, so $! is the real PID we later stop).
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# wait_for FILE PATTERN SECONDS: bounded wait for a line in a log file.
wait_for() {
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# stop_pid PID [SIG]: signal (TERM by default; note that background jobs of a
# non-interactive shell ignore SIGINT), bounded wait, then KILL.
stop_pid() {
	local pid=$1 sig=${2:-TERM} i
	kill "-$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

check_budget() {
	((SECONDS < BUDGET)) || die "time budget of ${BUDGET}s exceeded"
}

# --------------------------------------------------------------------------
# Build the lab.
VETHS=()   # "ns iface" of every veth end
build_lab() {
	local ns
	for ns in "${ALL_NS[@]}"; do
		CREATED_NS+=("$ns")
		ip netns add "$ns"
		in_ns "$ns" ip link set lo up
		# No DAD (addresses usable at once), no router solicitations, no ICMP
		# rate limiting (deterministic answers), no IPv4/IPv6 autoconf noise.
		in_ns "$ns" sysctl -q -w \
			net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
			net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0 \
			net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
			net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0 >/dev/null
	done
	# Classic exponential SYN backoff (1 s, 2 s, ...) as on most deployed
	# kernels; Linux >= 6.17 defaults to 4 linear 1 s retransmissions first.
	if in_ns "$NS_CL" test -e /proc/sys/net/ipv4/tcp_syn_linear_timeouts; then
		in_ns "$NS_CL" sysctl -q -w net.ipv4.tcp_syn_linear_timeouts=0 >/dev/null
	fi
	for ns in "$NS_R1" "$NS_FW" "$NS_R2"; do
		in_ns "$ns" sysctl -q -w net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 >/dev/null
	done

	# link NS_A IF_A NS_B IF_B N: veth pair on link N, A gets .1 unless A is
	# the client (client .2, r1 .1 on link 1).
	link() {
		local nsa=$1 ifa=$2 nsb=$3 ifb=$4 n=$5 ha=$6 hb=$7
		ip -n "$nsa" link add name "$ifa" type veth peer name "$ifb" netns "$nsb"
		ip -n "$nsa" addr add "198.18.$n.$ha/24" dev "$ifa"
		ip -n "$nsa" addr add "2001:db8:$n::$ha/64" dev "$ifa" nodad
		ip -n "$nsb" addr add "198.18.$n.$hb/24" dev "$ifb"
		ip -n "$nsb" addr add "2001:db8:$n::$hb/64" dev "$ifb" nodad
		VETHS+=("$nsa $ifa" "$nsb $ifb")
	}
	link "$NS_CL" cl0 "$NS_R1" r1a 1 2 1
	link "$NS_R1" r1b "$NS_FW" fwa 2 1 2
	link "$NS_FW" fwb "$NS_R2" r2a 3 1 2
	link "$NS_R2" r2b "$NS_SV" sv0 4 1 2
	ip -n "$NS_SV" addr add 198.18.4.3/24 dev sv0
	ip -n "$NS_SV" addr add 2001:db8:4::3/64 dev sv0 nodad

	local v vns vif
	for v in "${VETHS[@]}"; do
		read -r vns vif <<<"$v"
		in_ns "$vns" ethtool -K "$vif" tx off >/dev/null 2>&1 || die "ethtool -K $vif tx off failed in $vns"
		ip -n "$vns" link set "$vif" up
	done

	# Static routes only inside the lab; no default route anywhere.
	ip -n "$NS_CL" route add 198.18.0.0/15 via 198.18.1.1
	ip -n "$NS_CL" -6 route add 2001:db8::/32 via 2001:db8:1::1
	ip -n "$NS_R1" route add 198.18.3.0/24 via 198.18.2.2
	ip -n "$NS_R1" route add 198.18.4.0/24 via 198.18.2.2
	ip -n "$NS_R1" -6 route add 2001:db8:3::/64 via 2001:db8:2::2
	ip -n "$NS_R1" -6 route add 2001:db8:4::/64 via 2001:db8:2::2
	ip -n "$NS_FW" route add 198.18.1.0/24 via 198.18.2.1
	ip -n "$NS_FW" route add 198.18.4.0/24 via 198.18.3.2
	ip -n "$NS_FW" -6 route add 2001:db8:1::/64 via 2001:db8:2::1
	ip -n "$NS_FW" -6 route add 2001:db8:4::/64 via 2001:db8:3::2
	ip -n "$NS_R2" route add 198.18.1.0/24 via 198.18.3.1
	ip -n "$NS_R2" route add 198.18.2.0/24 via 198.18.3.1
	ip -n "$NS_R2" -6 route add 2001:db8:1::/64 via 2001:db8:3::1
	ip -n "$NS_R2" -6 route add 2001:db8:2::/64 via 2001:db8:3::1
	ip -n "$NS_SV" route add 198.18.0.0/15 via 198.18.4.1
	ip -n "$NS_SV" -6 route add 2001:db8::/32 via 2001:db8:4::1

	in_ns "$NS_FW" nft -f - <<<"$FW_RULES"
	in_ns "$NS_SV" nft -f - <<<"$HOST_RULES"

	ip netns exec "$NS_SV" python3 "$LAB_DIR/server.py" --ports "$SERVER_PORTS" --lifetime 300 \
		>"$WORK/server.log" 2>&1 &
	PIDS+=($!)
	wait_for "$WORK/server.log" '^ready' 5 || die "server did not start: $(cat "$WORK/server.log")"

	# Let link-up chatter (IPv6 MLD reports) die down before any capture.
	sleep 2
}

set_offload() {
	local state=$1 v ns ifc
	for v in "${VETHS[@]}"; do
		read -r ns ifc <<<"$v"
		in_ns "$ns" ethtool -K "$ifc" tx "$state" >/dev/null 2>&1 || die "ethtool -K $ifc tx $state failed"
	done
}

# --------------------------------------------------------------------------
declare -A A_DST A_DPORT A_ERRNO A_OUTCOME A_VERDICT A_NOTES
while IFS='|' read -r id dst dport errno outcome verdict notes; do
	A_DST[$id]=$dst A_DPORT[$id]=$dport A_ERRNO[$id]=$errno
	A_OUTCOME[$id]=$outcome A_VERDICT[$id]=$verdict A_NOTES[$id]=$notes
done <<<"$ATTEMPTS"

FAILURES=() PASSED=0 FAILED=0
TRUTH_HEADER=$'file\tclient_ip\tclient_port\tserver_ip\tserver_port\toutcome\tverdict\tclient_errno\tnotes'
mkdir -p "$WORK/rows"

run_capture() {
	local cid=$1 file=$2 sport=$3 flags=$4 linger=$5 attempts=$6
	local iface=cl0 extra=() raw="$OUT/$file" inj_pid="" cap_pid i
	check_budget
	[[ $flags == *sll2* ]] && { iface=any; extra=(-y LINUX_SLL2); raw="$WORK/${file%.pcapng}.pcap"; }
	[[ $flags == *offload* ]] && set_offload on

	if [[ $flags == *inject* ]]; then
		ip netns exec "$NS_FW" python3 "$LAB_DIR/inject.py" --iface fwa --dst "$SV4" --dport 90 \
			--delay 0.3 --ttl 64 --max 4 --lifetime 30 >"$WORK/inject.log" 2>&1 &
		inj_pid=$!
		PIDS+=("$inj_pid")
		wait_for "$WORK/inject.log" '^ready' 5 || die "injector did not start: $(cat "$WORK/inject.log")"
	fi

	rm -f "$raw" "$OUT/$file" "$WORK/tcpdump.log"
	ip netns exec "$NS_CL" tcpdump -Z root -U --immediate-mode -n -i "$iface" "${extra[@]}" -w "$raw" >"$WORK/tcpdump.log" 2>&1 &
	cap_pid=$!
	PIDS+=("$cap_pid")
	wait_for "$WORK/tcpdump.log" 'listening on' 5 || die "tcpdump did not start: $(cat "$WORK/tcpdump.log")"
	# --live BIN: synrst live captures the same traffic on the same interface; its final
	# report goes next to the capture as FILE.live.json (tests/live.rs compares the two).
	local live_pid=""
	if [[ -n $LIVE_BIN ]]; then
		ip netns exec "$NS_CL" "$LIVE_BIN" live -i "$iface" --json -o "$OUT/$file.live.json" \
			--duration 60 >"$WORK/live.log" 2>&1 &
		live_pid=$!
		PIDS+=("$live_pid")
		wait_for "$WORK/live.log" 'capturing on' 5 || die "synrst live did not start: $(cat "$WORK/live.log")"
	fi
	sleep 0.2

	# Start every attempt of this capture (concurrently, staggered a little).
	local ids=() pids=() id k=0
	IFS=',' read -r -a ids <<<"$attempts"
	for id in "${ids[@]}"; do
		local dst=${A_DST[$id]} src=$CL4 port=$((sport + k))
		[[ $dst == *:* ]] && src=$CL6
		timeout 20 ip netns exec "$NS_CL" python3 "$LAB_DIR/client.py" \
			--src "$src" --sport "$port" --dst "$dst" --dport "${A_DPORT[$id]}" \
			--syncnt 2 --timeout 10 >"$WORK/client.$cid.$k" 2>&1 &
		pids+=($!)
		PIDS+=($!)
		k=$((k + 1))
		((${#ids[@]} > 1)) && sleep 0.15
	done
	for i in "${pids[@]}"; do wait "$i" || true; done

	sleep "$linger"  # late packets, see CAPTURES
	stop_pid "$cap_pid" TERM
	if [[ -n $live_pid ]]; then
		stop_pid "$live_pid" INT
		[[ -s $OUT/$file.live.json ]] || die "synrst live wrote no report for $file: $(cat "$WORK/live.log")"
	fi
	# --probe BIN: after the capture (so that it holds only the scenario), synrst probe asks the
	# same network the same question; its report goes to FILE.probe.K.json for attempt K of the
	# capture (tests/probe.rs compares it with the truth). Single-scenario captures only.
	if [[ -n $PROBE_BIN && $cid != mixed && $flags != *sll2* ]]; then
		k=0
		for id in "${ids[@]}"; do
			local pdst=${A_DST[$id]} target baseline=()
			target="$pdst:${A_DPORT[$id]}"
			[[ $pdst == *:* ]] && target="[$pdst]:${A_DPORT[$id]}"
			[[ $pdst == "$SV4" || $pdst == "$SV6" ]] && baseline=(--baseline-port 80)
			timeout 60 ip netns exec "$NS_CL" "$PROBE_BIN" probe "$target" "${baseline[@]}" --timeout 4 \
				--json -o "$OUT/$file.probe.$k.json" >"$WORK/probe.log" 2>&1 || true
			[[ -s $OUT/$file.probe.$k.json ]] || die "synrst probe wrote no report for $file ($target): $(cat "$WORK/probe.log")"
			k=$((k + 1))
		done
	fi
	[[ -n $inj_pid ]] && stop_pid "$inj_pid" TERM
	[[ $flags == *offload* ]] && set_offload off
	if [[ $flags == *sll2* ]]; then
		editcap -F pcapng "$raw" "$OUT/$file" || die "editcap failed for $file"
	fi
	[[ -s $OUT/$file ]] || die "capture $file is empty"

	# Compare what each client got with the expectation; write truth rows.
	local note_extra=""
	[[ $flags == *offload* ]] && note_extra="; captured with veth TX checksum offload ON: every TCP segment in this file (the server's too, since veths hand the unfinished checksum along) carries an unfinished, wrong TCP checksum"
	[[ $flags == *sll2* ]] && note_extra="; captured with tcpdump -i any -y LINUX_SLL2 in the client ns, saved as pcapng"
	k=0
	: >"$WORK/rows/$file"
	for id in "${ids[@]}"; do
		local dst=${A_DST[$id]} src=$CL4 port=$((sport + k)) got elapsed want=${A_ERRNO[$id]}
		[[ $dst == *:* ]] && src=$CL6
		got=$(sed -n 's/^RESULT errno=\([^ ]*\) .*/\1/p' "$WORK/client.$cid.$k")
		elapsed=$(sed -n 's/^RESULT .*elapsed=\([^ ]*\).*/\1/p' "$WORK/client.$cid.$k")
		[[ -n $got ]] || got="NO-RESULT"
		local status=ok
		if [[ $got != "$want" ]]; then
			status=FAIL
			FAILED=$((FAILED + 1))
			FAILURES+=("$file $src:$port -> $dst:${A_DPORT[$id]} ($id): expected errno $want, client got $got: $(tr '\n' ' ' <"$WORK/client.$cid.$k")")
		else
			PASSED=$((PASSED + 1))
		fi
		local show_dst=$dst show_src=$src
		[[ $dst == *:* ]] && show_dst="[$dst]" show_src="[$src]"
		printf '[%-4s] %-20s %-36s %s:%s -> %s:%s errno=%s (want %s) %ss\n' \
			"$status" "$cid" "$file" "$show_src" "$port" "$show_dst" "${A_DPORT[$id]}" \
			"$got" "$want" "${elapsed:-?}"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$file" "$src" "$port" "$dst" \
			"${A_DPORT[$id]}" "${A_OUTCOME[$id]}" "${A_VERDICT[$id]}" "$got" \
			"${A_NOTES[$id]}$note_extra" >>"$WORK/rows/$file"
		k=$((k + 1))
	done
}

# --------------------------------------------------------------------------
log "run $PFX: output in $OUT"
build_lab
log "lab built in ${SECONDS}s (namespaces ${PFX}-{client,r1,fw,r2,server})"

RAN_FILES=()
while IFS='|' read -r cid file sport flags linger attempts; do
	if ((${#SELECTED[@]})); then
		want=0
		for s in "${SELECTED[@]}"; do [[ $s == "$cid" ]] && want=1; done
		((want)) || continue
	fi
	run_capture "$cid" "$file" "$sport" "$flags" "$linger" "$attempts"
	RAN_FILES+=("$file")
done <<<"$CAPTURES"

# truth.tsv: rows of this run, plus rows of files not re-made this run that an
# earlier run left in DIR (so a partial re-run keeps the truth complete).
{
	echo "$TRUTH_HEADER"
	while IFS='|' read -r cid file _; do
		if [[ -f $WORK/rows/$file ]]; then
			cat "$WORK/rows/$file"
		elif [[ -f $OUT/truth.tsv && -f $OUT/$file ]]; then
			awk -F'\t' -v f="$file" 'NR > 1 && $1 == f' "$OUT/truth.tsv"
		fi
	done <<<"$CAPTURES"
} >"$WORK/truth.tsv"
mv "$WORK/truth.tsv" "$OUT/truth.tsv"

if ((CHECK)); then
	if python3 "$LAB_DIR/check_captures.py" "$OUT" "${RAN_FILES[@]}" >"$WORK/check.log" 2>&1; then
		log "wire check: $(tail -n 1 "$WORK/check.log")"
	else
		cat "$WORK/check.log" >&2
		FAILURES+=("wire check (lab/check_captures.py) failed: the captures do not match truth.tsv")
		FAILED=$((FAILED + 1))
	fi
fi

echo "lab: ${#RAN_FILES[@]} captures and truth.tsv in $OUT (${SECONDS}s)"
echo "lab: $PASSED passed, $FAILED failed"
if ((${#FAILURES[@]})); then
	for f in "${FAILURES[@]}"; do echo "lab: FAIL: $f" >&2; done
	exit 1
fi
