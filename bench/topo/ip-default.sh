#!/usr/bin/env bash
# The default `latlab lab` topology built with iproute2 and nft commands, the
# way people script it by hand. bench/topo times it against latlab's netlink
# builder. Usage: ip-default.sh up|down PREFIX
set -eu
cmd=$1 p=$2
ns() { echo "$p-$1"; }
if [ "$cmd" = down ]; then
  for n in a b c-bridge s-dnat c-routed c-macvlan c-ipvl2 c-ipvl3 c-netkit c-vxlan s-vxlan; do
    ip netns del "$(ns $n)" 2>/dev/null || true
  done
  exit 0
fi
A=$(ns a) B=$(ns b)
for n in a b c-bridge s-dnat c-routed c-macvlan c-ipvl2 c-ipvl3 c-netkit c-vxlan s-vxlan; do
  ip netns add "$(ns $n)"; ip -n "$(ns $n)" link set lo up
done
# base: the wire
ip -n "$A" link add wire0 type veth peer name wire0 netns "$B"
ip -n "$A" addr add 10.77.0.1/24 dev wire0; ip -n "$A" link set wire0 up
ip -n "$B" addr add 10.77.0.2/24 dev wire0; ip -n "$B" link set wire0 up
ip -n "$A" route add default via 10.77.0.2
ip netns exec "$A" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$B" sysctl -qw net.ipv4.ip_forward=1
# bridge-nat
C=$(ns c-bridge)
ip -n "$A" link add docker0 type bridge; ip -n "$A" addr add 172.17.0.1/16 dev docker0; ip -n "$A" link set docker0 up
ip -n "$C" link add eth0 type veth peer name vethbr0 netns "$A"
ip -n "$C" addr add 172.17.0.2/16 dev eth0; ip -n "$C" link set eth0 up
ip -n "$A" link set vethbr0 master docker0 up
ip -n "$C" route add default via 172.17.0.1
ip netns exec "$A" nft add table ip latlab
ip netns exec "$A" nft add chain ip latlab postrouting '{ type nat hook postrouting priority srcnat; }'
ip netns exec "$A" nft add rule ip latlab postrouting ip saddr 172.17.0.0/16 oifname wire0 masquerade
# bridge-nat-dnat
S=$(ns s-dnat)
ip -n "$B" link add docker0 type bridge; ip -n "$B" addr add 172.18.0.1/16 dev docker0; ip -n "$B" link set docker0 up
ip -n "$S" link add eth0 type veth peer name vethbr0 netns "$B"
ip -n "$S" addr add 172.18.0.2/16 dev eth0; ip -n "$S" link set eth0 up
ip -n "$B" link set vethbr0 master docker0 up
ip -n "$S" route add default via 172.18.0.1
ip netns exec "$B" nft add table ip latlab
ip netns exec "$B" nft add chain ip latlab prerouting '{ type nat hook prerouting priority dstnat; }'
ip netns exec "$B" nft add rule ip latlab prerouting iifname wire0 meta l4proto tcp th dport 17707 dnat to 172.18.0.2:7707
ip netns exec "$B" nft add rule ip latlab prerouting iifname wire0 meta l4proto udp th dport 17707 dnat to 172.18.0.2:7707
ip netns exec "$B" nft add chain ip latlab postrouting '{ type nat hook postrouting priority srcnat; }'
ip netns exec "$B" nft add rule ip latlab postrouting ip saddr 172.18.0.0/16 oifname wire0 masquerade
# veth-routed
R=$(ns c-routed)
ip -n "$R" link add eth0 type veth peer name cali0 netns "$A"
ip -n "$R" addr add 10.78.0.2/32 dev eth0; ip -n "$R" link set eth0 up; ip -n "$A" link set cali0 up
ip -n "$R" route add 169.254.1.1 dev eth0 scope link
ip -n "$R" route add default via 169.254.1.1 dev eth0
ip -n "$A" route add 10.78.0.2/32 dev cali0 scope link
ip -n "$B" route add 10.78.0.0/24 via 10.77.0.1
ip netns exec "$A" sysctl -qw net.ipv4.conf.cali0.proxy_arp=1 net.ipv4.neigh.cali0.proxy_delay=0
# macvlan
M=$(ns c-macvlan)
ip -n "$A" link add eth0 link wire0 netns "$M" type macvlan mode bridge
ip -n "$M" addr add 10.77.0.10/24 dev eth0; ip -n "$M" link set eth0 up
# ipvlan, each mode on a NIC of its own (a second wire; the mode belongs to
# the parent); skipped where the kernel lacks it, as latlab does
for m in 2 3; do
  ip -n "$A" link add wire-ipvl$m type veth peer name wire-ipvl$m netns "$B"
  ip -n "$A" addr add 10.77.$m.1/24 dev wire-ipvl$m; ip -n "$A" link set wire-ipvl$m up
  ip -n "$B" addr add 10.77.$m.2/24 dev wire-ipvl$m; ip -n "$B" link set wire-ipvl$m up
done
if ip -n "$A" link add eth0 link wire-ipvl2 netns "$(ns c-ipvl2)" type ipvlan mode l2 2>/dev/null; then
  ip -n "$(ns c-ipvl2)" addr add 10.77.2.11/24 dev eth0; ip -n "$(ns c-ipvl2)" link set eth0 up
fi
if ip -n "$A" link add eth0 link wire-ipvl3 netns "$(ns c-ipvl3)" type ipvlan mode l3 2>/dev/null; then
  ip -n "$(ns c-ipvl3)" addr add 10.79.0.2/32 dev eth0; ip -n "$(ns c-ipvl3)" link set eth0 up
  ip -n "$(ns c-ipvl3)" route add default dev eth0; ip -n "$B" route add 10.79.0.0/24 via 10.77.3.1
fi
# netkit (Linux 6.7+, skipped where the kernel lacks it, as latlab does)
if ip -n "$A" link add nk0 type netkit mode l3 forward peer forward name eth0 netns "$(ns c-netkit)" 2>/dev/null; then
  ip -n "$A" link set nk0 up
  ip -n "$(ns c-netkit)" addr add 10.80.0.2/32 dev eth0; ip -n "$(ns c-netkit)" link set eth0 up
  ip -n "$(ns c-netkit)" route add default dev eth0
  ip -n "$A" route add 10.80.0.2/32 dev nk0; ip -n "$B" route add 10.80.0.0/24 via 10.77.0.1
fi
# vxlan
CV=$(ns c-vxlan) SV=$(ns s-vxlan)
for side in a b; do
  N=$(ns $side)
  if [ $side = a ]; then P=$CV net=0 local=10.77.0.1 remote=10.77.0.2 vt=10.245.0.1; else P=$SV net=1 local=10.77.0.2 remote=10.77.0.1 vt=10.245.0.2; fi
  ip -n "$N" link add cni0 mtu 1450 type bridge; ip -n "$N" addr add 10.244.$net.1/24 dev cni0; ip -n "$N" link set cni0 up
  ip -n "$P" link add eth0 mtu 1450 type veth peer name vethvx0 mtu 1450 netns "$N"
  ip -n "$P" addr add 10.244.$net.2/24 dev eth0; ip -n "$P" link set eth0 up
  ip -n "$N" link set vethvx0 master cni0 up
  ip -n "$N" link add flannel.1 mtu 1450 type vxlan id 1 local $local remote $remote dev wire0 dstport 8472
  ip -n "$N" addr add $vt/24 dev flannel.1; ip -n "$N" link set flannel.1 up
  ip -n "$P" route add default via 10.244.$net.1
done
ip -n "$A" route add 10.244.1.0/24 via 10.245.0.2
ip -n "$B" route add 10.244.0.0/24 via 10.245.0.1
