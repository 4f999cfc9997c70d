// SPDX-License-Identifier: GPL-2.0
/*
 * The relay's route: a lookup in the lower's network namespace with the
 * lower as output interface, as ipvlan's L3 mode does, remembered per CPU.
 *
 * Each CPU keeps, per family, a few routes found for recent flow keys
 * (addresses, mark, TOS or flow label, protocol: everything the lookup
 * reads). A remembered route is used again only while dst_check() accepts
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
		.daddr = key->daddr,
		.saddr = key->saddr,
	};
	struct rtable *rt;

	/* With an output interface and no matching route, on-link is assumed. */
	rt = ip_route_output_flow(net, &fl4, NULL);
	if (IS_ERR(rt))
		return NULL;
	/* Unicast only, and out of the lower: not local, not another port. */
	if (rt->rt_type != RTN_UNICAST || rt->dst.dev != lower) {
		ip_rt_put(rt);
		return NULL;
	}
	return &rt->dst;
}

/*
 * Routes @skb out of @lower in @net and attaches the route.
 * Return: false if there is no such route.
 */
static bool __insane_route_v4(struct insane_dev *ins, struct net *net,
			      struct sk_buff *skb, struct net_device *lower)
{
	const struct iphdr *iph = ip_hdr(skb);
	unsigned int gen = READ_ONCE(ins->routes_gen);
	struct insane_route4 *slot;
	struct dst_entry *dst;
	u8 tos = RT_TOS(iph->tos);

	slot = &this_cpu_ptr(ins->routes)->v4[insane_route_slot((__force u32)
					     (iph->daddr ^ iph->saddr))];
	dst = slot->dst;
	if (likely(dst && slot->gen == gen && slot->daddr == iph->daddr &&
		   slot->saddr == iph->saddr && slot->mark == skb->mark &&
		   slot->tos == tos && slot->proto == iph->protocol &&
		   dst->dev == lower && dst_check(dst, 0)))
		goto found;

	slot->daddr = iph->daddr;
	slot->saddr = iph->saddr;
	slot->mark = skb->mark;
	slot->tos = tos;
	slot->proto = iph->protocol;
	slot->gen = gen;
	dst = insane_lookup_v4(net, slot, lower);
	insane_route_replace(&slot->dst, dst);
	if (!dst)
		return false;
found:
	insane_route_attach(skb, dst);
	memset(IPCB(skb), 0, sizeof(*IPCB(skb)));
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
		.flowlabel = key->flowinfo,
		.daddr = key->daddr,
		.saddr = key->saddr,
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
	return dst;
}

static bool __insane_route_v6(struct insane_dev *ins, struct net *net,
			      struct sk_buff *skb, struct net_device *lower)
{
	const struct ipv6hdr *ip6h = ipv6_hdr(skb);
	/* __in6_dev_get() wants RCU or RTNL; the datapath holds RCU-bh. */
	struct inet6_dev *idev = rcu_dereference_bh(lower->ip6_ptr);
	unsigned int gen = READ_ONCE(ins->routes_gen);
	__be32 flowinfo = ip6_flowinfo(ip6h);
	struct insane_route6 *slot;
	struct dst_entry *dst;
	u32 h;

	/* ip6_output() would drop it and still report success. */
	if (!idev || READ_ONCE(idev->cnf.disable_ipv6))
		return false;
	if (ipv6_addr_is_multicast(&ip6h->daddr))
		return false;

	h = ipv6_addr_hash(&ip6h->daddr) ^ ipv6_addr_hash(&ip6h->saddr);
	slot = &this_cpu_ptr(ins->routes)->v6[insane_route_slot(h)];
	dst = slot->dst;
	if (likely(dst && slot->gen == gen &&
		   ipv6_addr_equal(&slot->daddr, &ip6h->daddr) &&
		   ipv6_addr_equal(&slot->saddr, &ip6h->saddr) &&
		   slot->mark == skb->mark && slot->flowinfo == flowinfo &&
		   slot->proto == ip6h->nexthdr && dst->dev == lower &&
		   dst_check(dst, slot->cookie)))
		goto found;

	slot->daddr = ip6h->daddr;
	slot->saddr = ip6h->saddr;
	slot->mark = skb->mark;
	slot->flowinfo = flowinfo;
	slot->proto = ip6h->nexthdr;
	slot->gen = gen;
	dst = insane_lookup_v6(net, slot, lower, &slot->cookie);
	insane_route_replace(&slot->dst, dst);
	if (!dst)
		return false;
found:
	insane_route_attach(skb, dst);
	memset(IP6CB(skb), 0, sizeof(*IP6CB(skb)));
	return true;
}
#else
static bool __insane_route_v6(struct insane_dev *ins, struct net *net,
			      struct sk_buff *skb, struct net_device *lower)
{
	return false;
}
#endif

/*
 * The datapath holds only rcu_read_lock_bh(); the IPv6 lookup and the
 * route checks dereference RCU pointers that lockdep wants under
 * rcu_read_lock() as well; nesting it costs a few instructions.
 */
bool insane_route_v4(struct insane_dev *ins, struct net *net,
		     struct sk_buff *skb, struct net_device *lower)
{
	bool ok;

	rcu_read_lock();
	ok = __insane_route_v4(ins, net, skb, lower);
	rcu_read_unlock();
	return ok;
}

bool insane_route_v6(struct insane_dev *ins, struct net *net,
		     struct sk_buff *skb, struct net_device *lower)
{
	bool ok;

	rcu_read_lock();
	ok = __insane_route_v6(ins, net, skb, lower);
	rcu_read_unlock();
	return ok;
}
