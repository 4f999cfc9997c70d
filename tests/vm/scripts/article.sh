#!/bin/bash
# The article's Listing Four as an administrator would type it today, with
# iproute2, the insane CLI and ping: borea reaches morgana through insane0 in
# pass mode, not at all in percent 0, and again in pass mode.
set -euo pipefail

cleanup() {
	ip netns del borea 2>/dev/null || true
	ip netns del morgana 2>/dev/null || true
}
trap cleanup EXIT

b() { ip netns exec borea "$@"; }

ip netns add borea
ip netns add morgana
ip link add veth0 netns borea type veth peer name veth1 netns morgana
ip -n borea addr add 192.0.2.1/24 dev veth0
ip -n morgana addr add 192.0.2.2/24 dev veth1
for ns in borea morgana; do ip -n "$ns" link set lo up; done
ip -n borea link set veth0 up
ip -n morgana link set veth1 up

b insane link add insane0 slave veth0 mode pass
b sysctl -q -w net.ipv6.conf.insane0.disable_ipv6=1
b ip addr add 192.0.2.1/32 dev insane0
b ip link set insane0 up
b ip route add 192.0.2.2 dev insane0
b ip route get 192.0.2.2 | grep -q 'dev insane0'

b ping -c 3 -W 5 192.0.2.2

b insane link set insane0 mode percent 0 reset-stats
if b ping -c 3 -W 1 192.0.2.2; then
	echo "ping got through insane0 in percent 0 mode" >&2
	exit 1
fi
stats=$(b insane -j -s link show insane0)
if ! grep -q '"relayed_packets":0,' <<<"$stats" || ! grep -q '"drop_policy":3,' <<<"$stats"; then
	echo "after 3 pings in percent 0 mode the counters are: $stats" >&2
	exit 1
fi

b insane link set insane0 mode pass
b ping -c 1 -W 5 192.0.2.2
b insane link del insane0
echo "article.sh: ok"
