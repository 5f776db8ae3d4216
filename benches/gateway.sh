#!/usr/bin/env bash
# Inline-gateway throughput, as edgetap is placed on a customer network: a
# client namespace, a gateway namespace, a server namespace, veth pairs. The
# same iperf3 transfer is measured routed by the gateway's kernel (edgetap not
# in the path) and through edgetap in transparent passthrough mode (iptables
# REDIRECT, SO_ORIGINAL_DST), first at veth speed, then with the gateway's
# server-facing link shaped to 1 Gbit/s (tbf), a field laptop's wire.
# Usage: benches/gateway.sh PATH/TO/edgetap   (root, iproute2, iptables, iperf3)
# Prints "gateway <link> routed <Mbit/s> edgetap <Mbit/s> ratio <x>" lines.
set -euo pipefail
et=$1
id=$$
c=etbc$id g=etbg$id s=etbs$id
cleanup() {
    [[ -n ${pid:-} ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    for n in $c $g $s; do ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null; ip netns del "$n" 2>/dev/null; done
    true
}
trap cleanup EXIT
for n in $c $g $s; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip link add vc$id netns $c type veth peer name vgc$id netns $g
ip link add vs$id netns $s type veth peer name vgs$id netns $g
ip -n $c addr add 10.78.1.2/24 dev vc$id
ip -n $g addr add 10.78.1.1/24 dev vgc$id
ip -n $g addr add 10.78.2.1/24 dev vgs$id
ip -n $s addr add 10.78.2.2/24 dev vs$id
for pair in "$c vc$id" "$g vgc$id" "$g vgs$id" "$s vs$id"; do set -- $pair; ip -n "$1" link set "$2" up; done
ip -n $c route add default via 10.78.1.1
ip -n $s route add default via 10.78.2.1
ip netns exec $g sysctl -qw net.ipv4.ip_forward=1
# Port 5202 is redirected to edgetap; 5201 is only routed.
ip netns exec $g iptables -t nat -A PREROUTING -i vgc$id -p tcp --dport 5202 -j REDIRECT --to-ports 15202
ip netns exec $s iperf3 -s -D -B 10.78.2.2 -p 5201
ip netns exec $s iperf3 -s -D -B 10.78.2.2 -p 5202
ip netns exec $g "$et" proxy --listen 10.78.1.1:15202 --upstream original --service http >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do ip netns exec $g bash -c "exec 3<>/dev/tcp/10.78.1.1/15202" 2>/dev/null && break; sleep 0.05; done
sleep 0.3

rate() { # port -> Mbit/s received
    ip netns exec $c iperf3 -c 10.78.2.2 -p "$1" -t 4 -f m | awk '/receiver/ {print $7}'
}
measure() {
    local routed proxied
    routed=$(rate 5201)
    proxied=$(rate 5202)
    echo "gateway $1 routed $routed edgetap $proxied ratio $(awk -v a="$proxied" -v b="$routed" 'BEGIN {printf "%.2f", a / b}')"
}
measure veth
ip netns exec $g tc qdisc add dev vgs$id root tbf rate 1gbit burst 512kb latency 20ms
measure 1gbit
