// SPDX-License-Identifier: GPL-2.0
/*
 * The relay's route: a lookup in the lower's network namespace with the
 * lower as output interface, as ipvlan's L3 mode does, remembered per CPU.
 *
 * Each CPU keeps, per family, a few routes found for recent flow keys
 * (addresses, mark, TOS or flow label, protocol, the sender's uid and the
 * transport ports: everything the lookup reads, so that ip rule's uidrange,
 * sport and dport and the selectors of IPsec policies apply). The route
 * found goes through xfrm_lookup_route() as a socket's does: an outbound
 * IPsec policy of the lower's netns turns it into a bundle, which must
 * still leave by the lower. A remembered route is used again only while dst_check() accepts
 * it, which is the test a connected socket applies to its cached route: any
 * change to the routing tables, a PMTU or redirect exception, the route's
 * device going away or (IPv6) its fib node changing makes it stale, and the
 * next packet looks the route up again. A change of lower device moves the
 * device's route generation on, which makes every slot stale at once.
 *
 * A slot holds a reference on its route, so packets are given it without
 * one (skb_dst_set_noref()): the datapath runs under rcu_read_lock_bh(),
 * and the core takes a reference (skb_dst_force()) before anything queues
 * the packet. Only the CPU that owns a slot writes it, with BHs off; the
 * device refuses netpoll, the one caller that could enter from a hard IRQ.
 */

#include "device.h"
#include "route.h"

#include <linux/hash.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/netdevice.h>
#include <linux/percpu.h>
#include <net/addrconf.h>
#include <net/dst.h>
#include <net/ip.h>
#include <net/ip6_fib.h>
#include <net/ip6_route.h>
#include <net/ipv6.h>
#include <net/route.h>
#include <net/xfrm.h>

int insane_routes_alloc(struct insane_dev *ins)
{
	ins->routes = alloc_percpu(struct insane_routes);
	return ins->routes ? 0 : -ENOMEM;
}

/* Once no datapath can run on the device (ndo_uninit). */
void insane_routes_release(struct insane_dev *ins)
{
	struct insane_routes *r;
	unsigned int i;
	int cpu;

	if (!ins->routes)
		return;
	for_each_possible_cpu(cpu) {
		r = per_cpu_ptr(ins->routes, cpu);
		for (i = 0; i < INSANE_ROUTE_SLOTS; i++) {
			dst_release(r->v4[i].dst);
			r->v4[i].dst = NULL;
			dst_release(r->v6[i].dst);
			r->v6[i].dst = NULL;
		}
	}
}

void insane_routes_free(struct insane_dev *ins)
{
	free_percpu(ins->routes);
	ins->routes = NULL;
}

/* Makes every remembered route stale. Caller holds RTNL. */
void insane_routes_invalidate(struct insane_dev *ins)
{
	ASSERT_RTNL();
	WRITE_ONCE(ins->routes_gen, ins->routes_gen + 1);
}

static unsigned int insane_route_slot(u32 addrs)
{
	return hash_32(addrs, ilog2(INSANE_ROUTE_SLOTS));
}

/*
 * The source and destination ports, in the flow key's order, of a TCP,
 * UDP, UDP-Lite, SCTP or DCCP packet whose transport header starts at
 * @off; 0 for any other packet (and for fragments: the caller passes no
 * offset, so that every fragment of a datagram takes the same route).
 */
static __be32 insane_route_ports(struct sk_buff *skb, u8 proto, int off)
{
	__be32 _ports, *ports;

	switch (proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
	case IPPROTO_SCTP:
	case IPPROTO_DCCP:
		break;
	default:
		return 0;
	}
	if (off < 0)
		return 0;
	ports = skb_header_pointer(skb, off, sizeof(_ports), &_ports);
	return ports ? *ports : 0;
}

/*
 * Passes @dst, which must leave by @lower, through the IPsec policies of
 * @net as ip_route_output_flow() and ip6_dst_lookup_flow() do; a bundle
 * must leave by @lower too. Return: the route or bundle, or NULL (@dst is
 * released).
 */
static struct dst_entry *insane_route_xfrm(struct net *net,
					   struct dst_entry *dst,
					   struct flowi *fl,
					   struct net_device *lower)
{
	dst = xfrm_lookup_route(net, dst, fl, NULL, 0);
	if (IS_ERR(dst))
		return NULL;
	if (xfrm_dst_path(dst)->dev != lower) {
		dst_release(dst);
		return NULL;
	}
	return dst;
}

/* Gives @skb the route @dst, which the caller's slot holds. */
static void insane_route_attach(struct sk_buff *skb, struct dst_entry *dst)
{
	skb_dst_drop(skb);
	skb_dst_set_noref(skb, dst);
}

/* Puts @dst, which the caller's lookup holds, in place of @old. */
static void insane_route_replace(struct dst_entry **slot,
				 struct dst_entry *dst)
{
	struct dst_entry *old = *slot;

	*slot = dst;
	/* Freed after a grace period: a packet in flight may still use it. */
	dst_release(old);
}

static noinline_for_stack struct dst_entry *
insane_lookup_v4(struct net *net, const struct insane_route4 *key,
		 struct net_device *lower)
{
	struct flowi4 fl4 = {
		.flowi4_oif = lower->ifindex,
		.flowi4_flags = FLOWI_FLAG_ANYSRC,
		.flowi4_mark = key->mark,
		.flowi4_tos = key->tos,
		.flowi4_proto = key->proto,
		.flowi4_uid = key->uid,
		.daddr = key->daddr,
		.saddr = key->saddr,
		.uli.ports.sport = key->sport,
		.uli.ports.dport = key->dport,
	};
	struct rtable *rt;

	/* With an output interface and no matching route, on-link is assumed. */
	rt = ip_route_output_key(net, &fl4);
	if (IS_ERR(rt))
		return NULL;
	/* Unicast only, and out of the lower: not local, not another port. */
	if (rt->rt_type != RTN_UNICAST || rt->dst.dev != lower) {
		ip_rt_put(rt);
		return NULL;
	}
	return insane_route_xfrm(net, &rt->dst, flowi4_to_flowi(&fl4), lower);
}

/*
 * Routes @skb out of @lower in @net and attaches the route. Under
 * rcu_read_lock_bh(), all that a remembered route needs (IPv6's
 * dst_check() takes rcu_read_lock() itself); a lookup runs under
 * rcu_read_lock() too, which the lookups' RCU pointers want for lockdep.
 * Return: false if there is no such route.
 */
bool insane_route_v4(struct insane_dev *ins, struct net *net,
		     struct sk_buff *skb, struct net_device *lower, kuid_t uid,
		     const void **slotp)
{
	const struct iphdr *iph = ip_hdr(skb);
	unsigned int gen = READ_ONCE(ins->routes_gen);
	struct insane_route4 *slot;
	struct dst_entry *dst;
	u8 tos = RT_TOS(iph->tos);
	__be32 ports;

	ports = insane_route_ports(skb, iph->protocol,
				   ip_is_fragment(iph) ? -1 : iph->ihl * 4);
	slot = &this_cpu_ptr(ins->routes)->v4[insane_route_slot((__force u32)
					     (iph->daddr ^ iph->saddr ^
					      ports))];
	dst = slot->dst;
	if (likely(dst && slot->gen == gen && slot->daddr == iph->daddr &&
		   slot->saddr == iph->saddr && slot->mark == skb->mark &&
		   slot->tos == tos && slot->proto == iph->protocol &&
		   slot->ports == ports && uid_eq(slot->uid, uid) &&
		   xfrm_dst_path(dst)->dev == lower && dst_check(dst, 0)))
		goto found;

	slot->daddr = iph->daddr;
	slot->saddr = iph->saddr;
	slot->mark = skb->mark;
	slot->tos = tos;
	slot->proto = iph->protocol;
	slot->ports = ports;
	slot->uid = uid;
	slot->gen = gen;
	rcu_read_lock();
	dst = insane_lookup_v4(net, slot, lower);
	rcu_read_unlock();
	insane_route_replace(&slot->dst, dst);
	if (!dst)
		return false;
found:
	insane_route_attach(skb, dst);
	memset(IPCB(skb), 0, sizeof(*IPCB(skb)));
	if (slotp)
		*slotp = slot;
	return true;
}

#if IS_ENABLED(CONFIG_IPV6)
static noinline_for_stack struct dst_entry *
insane_lookup_v6(struct net *net, const struct insane_route6 *key,
		 struct net_device *lower, u32 *cookie)
{
	struct flowi6 fl6 = {
		.flowi6_oif = lower->ifindex,
		.flowi6_flags = FLOWI_FLAG_ANYSRC,
		.flowi6_mark = key->mark,
		.flowi6_proto = key->proto,
		.flowi6_uid = key->uid,
		.flowlabel = key->flowinfo,
		.daddr = key->daddr,
		.saddr = key->saddr,
		.uli.ports.sport = key->sport,
		.uli.ports.dport = key->dport,
	};
	struct dst_entry *dst;
	struct rt6_info *rt;

	/*
	 * With a source address, ip6_route_output() takes the output
	 * interface as a mere preference and may pick a route through this
	 * very device: insist on the lower.
	 */
	dst = ip6_route_output_flags(net, NULL, &fl6, RT6_LOOKUP_F_IFACE);
	rt = container_of(dst, struct rt6_info, dst);
	if (dst->error || dst->dev != lower ||
	    (rt->rt6i_flags & (RTF_LOCAL | RTF_ANYCAST))) {
		dst_release(dst);
		return NULL;
	}
	*cookie = rt6_get_cookie(rt);
	return insane_route_xfrm(net, dst, flowi6_to_flowi(&fl6), lower);
}

bool insane_route_v6(struct insane_dev *ins, struct net *net,
		     struct sk_buff *skb, struct net_device *lower, kuid_t uid,
		     const void **slotp)
{
	const struct ipv6hdr *ip6h = ipv6_hdr(skb);
	/* __in6_dev_get() wants RCU or RTNL; the datapath holds RCU-bh. */
	struct inet6_dev *idev = rcu_dereference_bh(lower->ip6_ptr);
	unsigned int gen = READ_ONCE(ins->routes_gen);
	__be32 flowinfo = ip6_flowinfo(ip6h);
	struct insane_route6 *slot;
	struct dst_entry *dst;
	__be32 ports;
	u32 h;

	/* ip6_output() would drop it and still report success. */
	if (!idev || READ_ONCE(idev->cnf.disable_ipv6))
		return false;
	if (ipv6_addr_is_multicast(&ip6h->daddr))
		return false;

	/* Ports right after the fixed header only: no extension header. */
	ports = insane_route_ports(skb, ip6h->nexthdr, sizeof(*ip6h));
	h = ipv6_addr_hash(&ip6h->daddr) ^ ipv6_addr_hash(&ip6h->saddr) ^
	    (__force u32)ports;
	slot = &this_cpu_ptr(ins->routes)->v6[insane_route_slot(h)];
	dst = slot->dst;
	if (likely(dst && slot->gen == gen &&
		   ipv6_addr_equal(&slot->daddr, &ip6h->daddr) &&
		   ipv6_addr_equal(&slot->saddr, &ip6h->saddr) &&
		   slot->mark == skb->mark && slot->flowinfo == flowinfo &&
		   slot->proto == ip6h->nexthdr && slot->ports == ports &&
		   uid_eq(slot->uid, uid) &&
		   xfrm_dst_path(dst)->dev == lower &&
		   dst_check(dst, slot->cookie)))
		goto found;

	slot->daddr = ip6h->daddr;
	slot->saddr = ip6h->saddr;
	slot->mark = skb->mark;
	slot->flowinfo = flowinfo;
	slot->proto = ip6h->nexthdr;
	slot->ports = ports;
	slot->uid = uid;
	slot->gen = gen;
	rcu_read_lock();
	dst = insane_lookup_v6(net, slot, lower, &slot->cookie);
	rcu_read_unlock();
	insane_route_replace(&slot->dst, dst);
	if (!dst)
		return false;
found:
	insane_route_attach(skb, dst);
	memset(IP6CB(skb), 0, sizeof(*IP6CB(skb)));
	if (slotp)
		*slotp = slot;
	return true;
}
#else
bool insane_route_v6(struct insane_dev *ins, struct net *net,
		     struct sk_buff *skb, struct net_device *lower, kuid_t uid,
		     const void **slotp)
{
	return false;
}
#endif

/**
 * insane_route_kept - whether a route found earlier is still in force
 * @ins: the device
 * @slot: this CPU's slot that the route was found in (insane_route_v4/6)
 * @dst: the route
 * @v4: an IPv4 slot, else IPv6
 * @lower: the lower in force now
 *
 * True while the slot still holds @dst (so it is alive), found at the
 * device's route generation, out of @lower, and dst_check() accepts it:
 * the test a lookup of the same key would pass without looking again.
 * Under rcu_read_lock_bh(), on the CPU that owns @slot.
 */
bool insane_route_kept(struct insane_dev *ins, const void *slot,
		       struct dst_entry *dst, bool v4,
		       struct net_device *lower)
{
	unsigned int gen = READ_ONCE(ins->routes_gen);
	const struct insane_route4 *r4 = slot;
	const struct insane_route6 *r6 = slot;

	if (v4 ? r4->dst != dst || r4->gen != gen :
		 r6->dst != dst || r6->gen != gen)
		return false;
	return xfrm_dst_path(dst)->dev == lower &&
	       dst_check(dst, v4 ? 0 : r6->cookie);
}
