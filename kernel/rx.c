// SPDX-License-Identifier: GPL-2.0
/*
 * The receive direction. While an insane device's receive policy is on and
 * it is attached, its lower device's rx_handler is insane_rx_lower(),
 * shared by every insane device on that lower through a struct
 * insane_rx_port (the macvlan and ipvlan pattern). It reads the header of
 * each IPv4 or IPv6 packet, looks up the route back to the packet's source
 * in each insane device's network namespace, and hands the packets routed
 * through an insane device over to it: skb->dev becomes the insane device
 * and the core runs its receive loop again (RX_HANDLER_ANOTHER). On that
 * round the insane device's taps and tc ingress see the packet, then its
 * own rx_handler, insane_rx_decide(), applies the receive policy.
 *
 * Why rx_handler, not a netfilter netdev ingress hook, which could coexist
 * with a bridge or bond on the lower: RX_HANDLER_ANOTHER re-enters the
 * receive loop with the new device without recursion, so tcpdump -i
 * insane0, tc ingress, the protocol handlers, rp_filter and netfilter's iif
 * all see the insane device exactly as for any stacked device; an ingress
 * hook would have to steal the packet and re-inject it with
 * netif_receive_skb() from inside the lower's receive (recursion), would
 * need CONFIG_NETFILTER_INGRESS, and would take packets away from under a
 * bridge or bond that owns the port, whose forwarding decides where they
 * go. The cost of the choice, one holder per lower, is made explicit: a
 * lower whose rx_handler is held refuses a receive policy with EBUSY and
 * says by whom. When no receive policy is on, no handler is installed, so
 * the receive path does not pass through insane at all.
 *
 * Datapath: RCU only (the core holds rcu_read_lock()), no allocation except
 * skb_share_check()'s copy of a shared packet, per-cpu counters.
 * Control: RTNL.
 */

#include "datapath.h"
#include "device.h"
#include "policy.h"
#include "rx.h"

#include <linux/error-injection.h>
#include <linux/if_vlan.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/ipv6_route.h>
#include <linux/netdevice.h>
#include <linux/rculist.h>
#include <linux/route.h>
#include <linux/rtnetlink.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <net/addrconf.h>
#include <net/ip_fib.h>
#include <net/ip6_fib.h>
#include <net/ipv6.h>
#include <net/ipv6_stubs.h>
#include <net/ndisc.h>
#include <net/route.h>

#include <linux/capability.h>
#include <linux/netlink.h>
#include <linux/rcupdate.h>
#include <linux/u64_stats_sync.h>
#include <linux/user_namespace.h>

/*
 * The lower's side: the insane devices whose receive policy is on and that
 * are attached to it. It lives while the list is not empty, as the lower's
 * rx_handler_data; freed after the handler is unregistered.
 */
struct insane_rx_port {
	struct net_device *lower;
	struct list_head devs;		/* of insane_dev.rx_node, RCU */
};

static rx_handler_result_t insane_rx_lower(struct sk_buff **pskb);
static rx_handler_result_t insane_rx_decide(struct sk_buff **pskb);

/* The header fields the reverse lookup needs. */
struct insane_rx_key {
	bool v4;
	union {
		struct iphdr ip4;
		struct ipv6hdr ip6;
	};
};

/*
 * Neighbour discovery (RFC 4861) belongs to the lower, as ARP does: its
 * messages carry no extension header before the ICMPv6 one.
 */
static bool insane_rx_is_ndisc(struct sk_buff *skb, const struct ipv6hdr *h)
{
	u8 type, *t;

	if (h->nexthdr != IPPROTO_ICMPV6)
		return false;
	t = skb_header_pointer(skb, sizeof(*h), sizeof(type), &type);
	return !t || (*t >= NDISC_ROUTER_SOLICITATION && *t <= NDISC_REDIRECT);
}

/*
 * Reads the network header without changing @skb: a packet that is not
 * taken over must stay untouched. False for anything insane leaves alone.
 */
static bool insane_rx_read(struct sk_buff *skb, struct insane_rx_key *k)
{
	if (skb->protocol == htons(ETH_P_IP)) {
		const struct iphdr *h;

		/* A pointer into the packet, or to the copy in k. */
		h = skb_header_pointer(skb, 0, sizeof(k->ip4), &k->ip4);
		if (!h || h->version != 4 || h->ihl < 5 ||
		    ipv4_is_multicast(h->daddr) || ipv4_is_lbcast(h->daddr))
			return false;
		k->ip4 = *h;
		k->v4 = true;
		return true;
	}
	if (IS_ENABLED(CONFIG_IPV6) && skb->protocol == htons(ETH_P_IPV6)) {
		const struct ipv6hdr *h;

		if (!ipv6_mod_enabled())
			return false;
		h = skb_header_pointer(skb, 0, sizeof(k->ip6), &k->ip6);
		if (!h || h->version != 6 || ipv6_addr_is_multicast(&h->daddr))
			return false;
		k->ip6 = *h;
		k->v4 = false;
		/* Link-local belongs to the lower's link, as ND does. */
		if ((ipv6_addr_type(&k->ip6.saddr) & IPV6_ADDR_LINKLOCAL) ||
		    (ipv6_addr_type(&k->ip6.daddr) & IPV6_ADDR_LINKLOCAL))
			return false;
		return !insane_rx_is_ndisc(skb, &k->ip6);
	}
	return false;
}

/*
 * The device by which @net routes a reply to the packet of @k: a unicast
 * route to its source, from its destination. NULL if there is none. The
 * lookup takes no reference and writes nothing shared.
 */
static struct net_device *insane_rx_route(struct net *net,
					  const struct insane_rx_key *k,
					  u32 mark)
{
	if (k->v4) {
		struct flowi4 fl4 = {
			.flowi4_iif = LOOPBACK_IFINDEX,
			.flowi4_mark = mark,
			.flowi4_tos = k->ip4.tos & IPTOS_RT_MASK,
			.flowi4_scope = RT_SCOPE_UNIVERSE,
			.daddr = k->ip4.saddr,
			.saddr = k->ip4.daddr,
		};
		struct fib_result res;

		if (fib_lookup(net, &fl4, &res, 0) || res.type != RTN_UNICAST)
			return NULL;
		return FIB_RES_DEV(res);
	}
#if IS_ENABLED(CONFIG_IPV6)
	{
		struct flowi6 fl6 = {
			.flowi6_iif = LOOPBACK_IFINDEX,
			.flowi6_mark = mark,
			.flowlabel = ip6_flowinfo(&k->ip6),
			.daddr = k->ip6.saddr,
			.saddr = k->ip6.daddr,
		};
		struct fib6_result res = {};

		if (ipv6_stub->fib6_lookup(net, 0, &fl6, &res, 0) || !res.f6i ||
		    res.f6i == net->ipv6.fib6_null_entry || !res.nh ||
		    res.fib6_type != RTN_UNICAST ||
		    (res.fib6_flags & (RTF_REJECT | RTF_LOCAL | RTF_ANYCAST)))
			return NULL;
		return res.nh->fib_nh_dev;
	}
#else
	return NULL;
#endif
}

/*
 * Whether the destination of @k is an address of @net: across namespaces
 * only such packets are taken (ipvlan's rule), so that the namespace of an
 * insane device cannot take what its lower's namespace is sent. Both
 * lookups take no reference and write nothing shared.
 */
static bool insane_rx_local(struct net *net, const struct insane_rx_key *k)
{
	if (k->v4)
		return inet_addr_type(net, k->ip4.daddr) == RTN_LOCAL;
#if IS_ENABLED(CONFIG_IPV6)
	{
		struct net_device *dev;

		dev = ipv6_stub->ipv6_dev_find(net, &k->ip6.daddr, NULL);
		return !IS_ERR_OR_NULL(dev);
	}
#else
	return false;
#endif
}

/* A GSO packet stands for gso_segs wire packets in the counters. */
static unsigned int insane_rx_wire_packets(const struct sk_buff *skb)
{
	return skb_is_gso(skb) ? max_t(u16, skb_shinfo(skb)->gso_segs, 1) : 1;
}

/**
 * insane_rx_deliver - receive a packet on the insane device
 * @ins: the device
 * @skb: a wire packet taken over, at its departure from the delay stage
 *	(or taken over now, without one), its data at the network header
 *
 * Duplicated or corrupted first if the action of the receive policy in
 * force now says so ("Rate, duplication and corruption" in the uapi
 * header); then received on @ins, the copy right behind: each goes once
 * through its taps, tc ingress and insane_rx_decide(). In softirq context.
 */
void insane_rx_deliver(struct insane_dev *ins, struct sk_buff *skb)
{
	const struct insane_action *a = NULL;
	struct sk_buff *copy = NULL;
	struct insane_policy *p;
	struct insane_extra x;
	int err;

	rcu_read_lock();
	p = rcu_dereference(ins->rx_policy);
	if (p && unlikely(p->extras) && !skb_is_gso(skb))
		a = insane_policy_action_now(p);
	if (likely(!a || !insane_action_extras(a))) {
		rcu_read_unlock();
		netif_receive_skb(skb);
		return;
	}
	insane_policy_extra(p, a, true, &x);
	if (x.duplicate) {
		insane_dev_count_drop(ins, INSANE_RX_DUPLICATED);
		copy = pskb_copy(skb, GFP_ATOMIC);
		if (unlikely(!copy))
			insane_dev_count_drop(ins, INSANE_RX_DROP_NO_MEMORY);
	}
	if (x.corrupt) {
		err = insane_corrupt(skb, x.y, x.header,
				     skb->protocol == htons(ETH_P_IP));
		if (unlikely(err < 0)) {
			insane_dev_count_drop(ins, INSANE_RX_DROP_NO_MEMORY);
			kfree_skb_reason(skb, SKB_DROP_REASON_NOMEM);
			skb = NULL;
		} else if (err) {
			insane_dev_count_drop(ins, INSANE_RX_CORRUPTED);
		}
	}
	rcu_read_unlock();
	if (skb)
		netif_receive_skb(skb);
	if (copy)
		netif_receive_skb(copy);
}

/*
 * Cuts the GSO packet @skb taken over by @ins into its wire packets and
 * receives each, in order, on @ins (recursion depth 1, as the bridge's
 * br_pass_frame_up()), so that each goes once through its taps, tc ingress
 * and insane_rx_decide().
 */
static rx_handler_result_t insane_rx_segment(struct sk_buff *skb,
					     struct insane_dev *ins,
					     struct insane_policy *p,
					     const struct insane_delay *d,
					     u64 arrival)
{
	struct sk_buff *segs, *next;

	/* skb_gso_segment() starts at the MAC header, as openvswitch's. */
	skb_push_rcsum(skb, skb->mac_len);
	segs = __skb_gso_segment(skb, NETIF_F_SG | NETIF_F_HW_CSUM, false);
	if (IS_ERR(segs)) {
		/* As on transmit: its GSO fields are not to be trusted. */
		insane_dev_count_drop(ins, PTR_ERR(segs) == -ENOMEM ?
				      INSANE_RX_DROP_NO_MEMORY :
				      INSANE_RX_DROP_MALFORMED);
		kfree_skb_reason(skb, SKB_DROP_REASON_SKB_GSO_SEG);
		return RX_HANDLER_CONSUMED;
	}
	/* NULL: the packet is one wire packet already. */
	if (segs)
		consume_skb(skb);
	else
		segs = skb;
	skb_list_walk_safe(segs, skb, next) {
		skb_mark_not_on_list(skb);
		skb_pull_rcsum(skb, skb_network_offset(skb));
		skb->dev = ins->dev;
		if (d)
			insane_delay_hold(ins, INSANE_DIRECTION_RX, skb, p, d,
					  arrival, true);
		else
			insane_rx_deliver(ins, skb);
	}
	return RX_HANDLER_CONSUMED;
}

/*
 * Hands @skb over to @ins: the core runs its receive loop again, or, for
 * a GSO packet that the receive policy decides per wire packet, each of
 * its pieces goes through that loop. With a delay in the step in force
 * now, each is held first (delay.c), and received on @ins at its
 * departure: nothing held references the lower.
 */
static rx_handler_result_t insane_rx_take(struct sk_buff **pskb,
					  struct insane_dev *ins, bool xnet)
{
	const struct insane_delay *d = NULL;
	struct insane_policy *p;
	struct sk_buff *skb;
	u64 arrival = 0;

	/* Another holder of a shared packet must not see skb->dev change. */
	skb = skb_share_check(*pskb, GFP_ATOMIC);
	if (unlikely(!skb)) {
		insane_dev_count_drop(ins, INSANE_RX_DROP_NO_MEMORY);
		return RX_HANDLER_CONSUMED;
	}
	/* Crossing into the insane device's netns forgets the lower's. */
	if (unlikely(xnet))
		skb_scrub_packet(skb, true);
	skb->dev = ins->dev;
	/*
	 * A DODGY packet's GSO fields come from user space: cut it whatever
	 * the policy, as the transmit direction does.
	 */
	p = rcu_dereference(ins->rx_policy);
	if (p)
		d = insane_policy_delay_now(p);
	/* Held, its delay counts from here (every piece of a GSO packet). */
	if (d)
		arrival = ktime_get_ns();
	if (unlikely(skb_is_gso(skb)) && p &&
	    (p->mode != INSANE_MODE_PASS || p->cuts ||
	     (skb_shinfo(skb)->gso_type & SKB_GSO_DODGY)))
		return insane_rx_segment(skb, ins, p, d, arrival);
	if (d) {
		insane_delay_hold(ins, INSANE_DIRECTION_RX, skb, p, d, arrival,
				  true);
		return RX_HANDLER_CONSUMED;
	}
	if (p && unlikely(p->extras)) {
		insane_rx_deliver(ins, skb);
		return RX_HANDLER_CONSUMED;
	}
	*pskb = skb;
	return RX_HANDLER_ANOTHER;
}

/* The lower's rx_handler, under rcu_read_lock() in softirq context. */
static rx_handler_result_t insane_rx_lower(struct sk_buff **pskb)
{
	struct sk_buff *skb = *pskb;
	struct net_device *route_dev = NULL;
	const struct net *looked = NULL;
	struct insane_rx_port *port;
	struct insane_rx_key key;
	struct insane_dev *ins;

	if (skb->pkt_type != PACKET_HOST || skb_vlan_tag_present(skb) ||
	    !insane_rx_read(skb, &key))
		return RX_HANDLER_PASS;

	port = rcu_dereference(skb->dev->rx_handler_data);
	/* Devices of one netns share a lookup; most lowers have one device. */
	list_for_each_entry_rcu(ins, &port->devs, rx_node) {
		struct net *net = dev_net(ins->dev);
		bool xnet = !net_eq(net, dev_net(skb->dev));

		if (unlikely(!netif_running(ins->dev)))
			continue;
		if (!net_eq(net, looked)) {
			/*
			 * Across namespaces, only what is addressed to the
			 * insane device's; a mark is the lower's netns's, it
			 * means nothing there.
			 */
			if (xnet && !insane_rx_local(net, &key))
				route_dev = NULL;
			else
				route_dev = insane_rx_route(net, &key,
							    xnet ? 0 : skb->mark);
			looked = net;
		}
		if (route_dev == ins->dev)
			return insane_rx_take(pskb, ins, xnet);
	}
	return RX_HANDLER_PASS;
}

/* Counts @packets wire packets of @len bytes passed up on @dev. */
static void insane_rx_count_relayed(struct net_device *dev,
				    unsigned int packets, unsigned int len)
{
	struct pcpu_sw_netstats *tstats = this_cpu_ptr(dev->tstats);

	u64_stats_update_begin(&tstats->syncp);
	u64_stats_add(&tstats->rx_bytes, len);
	u64_stats_add(&tstats->rx_packets, packets);
	u64_stats_update_end(&tstats->syncp);
}

/*
 * The insane device's own rx_handler, after its taps and tc ingress: the
 * receive policy passes the packet up the stack or drops it. A GSO packet
 * reaches it whole only under a pass policy (or one that replaced a pass
 * policy since insane_rx_take()): it counts as its gso_segs wire packets.
 */
static rx_handler_result_t insane_rx_decide(struct sk_buff **pskb)
{
	struct sk_buff *skb = *pskb;
	struct insane_dev *ins = rcu_dereference(skb->dev->rx_handler_data);
	struct insane_policy *p = rcu_dereference(ins->rx_policy);
	unsigned int packets = insane_rx_wire_packets(skb);

	/* The handler is gone before the policy is: p is never NULL here. */
	if (unlikely(!p) || insane_policy_relays(p)) {
		insane_rx_count_relayed(skb->dev, packets, skb->len);
		return RX_HANDLER_PASS;
	}
	insane_dev_count_drops(ins, INSANE_RX_DROP_POLICY, packets);
	kfree_skb_reason(skb, SKB_DROP_REASON_NOT_SPECIFIED);
	return RX_HANDLER_CONSUMED;
}

/*
 * Says in @extack what holds the rx_handler of @dev. Each message is a
 * literal, so that it also reaches the netlink:netlink_extack tracepoint.
 */
static int insane_rx_busy(struct net_device *dev, bool lower,
			  struct netlink_ext_ack *extack)
{
	rx_handler_func_t *h = rtnl_dereference(dev->rx_handler);

	if (!lower && h == insane_rx_lower)
		NL_SET_ERR_MSG(extack,
			       "the insane device is the lower of an insane device whose receive policy is on, which holds its rx_handler");
	else if (!lower)
		NL_SET_ERR_MSG(extack,
			       "the insane device's own rx_handler is held by another driver (a bond or team port?): no receive policy can be set");
	else if (dev->priv_flags & IFF_NO_RX_HANDLER)
		NL_SET_ERR_MSG(extack,
			       "the lower device accepts no rx_handler (IFF_NO_RX_HANDLER): no receive policy can be set on it");
	else if (netif_is_bridge_port(dev))
		NL_SET_ERR_MSG(extack,
			       "the lower device is a bridge port: the bridge holds its rx_handler, so no receive policy can be set on it");
	else if (netif_is_bond_slave(dev))
		NL_SET_ERR_MSG(extack,
			       "the lower device is a bond slave: the bond holds its rx_handler, so no receive policy can be set on it");
	else if (netif_is_team_port(dev))
		NL_SET_ERR_MSG(extack,
			       "the lower device is a team port: the team holds its rx_handler, so no receive policy can be set on it");
	else if (netif_is_ovs_port(dev))
		NL_SET_ERR_MSG(extack,
			       "the lower device is an Open vSwitch port: openvswitch holds its rx_handler, so no receive policy can be set on it");
	else if (netif_is_macvlan_port(dev))
		NL_SET_ERR_MSG(extack,
			       "the lower device has macvlan devices: macvlan holds its rx_handler, so no receive policy can be set on it");
	else if (h == insane_rx_decide)
		NL_SET_ERR_MSG(extack,
			       "the lower device is an insane device whose receive policy is on: it holds its own rx_handler");
	else
		NL_SET_ERR_MSG(extack,
			       "another driver (ipvlan, macsec, ...) holds the lower device's rx_handler, so no receive policy can be set on it");
	return -EBUSY;
}

/* Whether @lower's hook is insane's or free. */
static bool insane_rx_lower_free(struct net_device *lower)
{
	if (rtnl_dereference(lower->rx_handler) == insane_rx_lower)
		return true;
	return !netdev_is_rx_handler_busy(lower) &&
	       !(lower->priv_flags & IFF_NO_RX_HANDLER);
}

/**
 * insane_rx_check - whether a receive policy can be turned on
 * @ins: the insane device, whose receive policy is off
 * @lower: the lower it will have, or NULL
 * @extack: where to say what holds a hook
 *
 * Caller holds RTNL.
 *
 * Return: 0, or -EBUSY with a message that names the holder.
 */
int insane_rx_check(struct insane_dev *ins, struct net_device *lower,
		    struct netlink_ext_ack *extack)
{
	ASSERT_RTNL();
	if (netdev_is_rx_handler_busy(ins->dev))
		return insane_rx_busy(ins->dev, false, extack);
	if (lower && !insane_rx_lower_free(lower))
		return insane_rx_busy(lower, true, extack);
	return 0;
}

/*
 * A port's one allocation, out of line so that fail_function can fail it
 * too (the tests fail it through failslab): a change that fails here
 * changes nothing.
 */
static noinline struct insane_rx_port *insane_rx_port_alloc(void)
{
	return kzalloc(sizeof(struct insane_rx_port), GFP_KERNEL);
}

ALLOW_ERROR_INJECTION(insane_rx_port_alloc, NULL);

/**
 * insane_rx_capable - whether the sender may hold @lower's receive path
 * @ins: the insane device
 * @lower: the lower it has or will have, or NULL
 * @skb: the generic netlink request, or NULL in an rtnetlink handler,
 *	which runs in the sender's context
 * @extack: where to say what is missing
 *
 * A receive policy takes packets off @lower: when @lower is in another
 * network namespace than @ins, setting one (or attaching a device whose
 * receive policy is on) needs CAP_NET_ADMIN over @lower's namespace too,
 * not only over the device's, which the netlink core checked.
 *
 * Return: 0, or -EPERM with a message.
 */
int insane_rx_capable(const struct insane_dev *ins,
		      const struct net_device *lower,
		      const struct sk_buff *skb,
		      struct netlink_ext_ack *extack)
{
	struct user_namespace *ns;

	if (!lower || net_eq(dev_net(lower), dev_net(ins->dev)))
		return 0;
	ns = dev_net(lower)->user_ns;
	if (skb ? netlink_ns_capable(skb, ns, CAP_NET_ADMIN) :
		  ns_capable(ns, CAP_NET_ADMIN))
		return 0;
	NL_SET_ERR_MSG(extack,
		       "a receive policy takes packets off the lower device, which is in another network namespace: it needs CAP_NET_ADMIN over that namespace too");
	return -EPERM;
}

/**
 * insane_rx_port_get - the insane receive hook of @lower, installed if need be
 * @lower: the lower device
 * @extack: where to say what holds the hook instead
 *
 * A new port has no device yet: pass it to insane_rx_move(), or give it
 * back with insane_rx_port_put(). Caller holds RTNL.
 *
 * Return: the port, ERR_PTR(-EBUSY) if another handler holds @lower's
 * rx_handler, or ERR_PTR(-ENOMEM).
 */
struct insane_rx_port *insane_rx_port_get(struct net_device *lower,
					  struct netlink_ext_ack *extack)
{
	struct insane_rx_port *port;
	int err;

	ASSERT_RTNL();
	if (rtnl_dereference(lower->rx_handler) == insane_rx_lower)
		return rtnl_dereference(lower->rx_handler_data);
	if (!insane_rx_lower_free(lower))
		return ERR_PTR(insane_rx_busy(lower, true, extack));

	port = insane_rx_port_alloc();
	if (!port)
		return ERR_PTR(-ENOMEM);
	port->lower = lower;
	INIT_LIST_HEAD(&port->devs);
	err = netdev_rx_handler_register(lower, insane_rx_lower, port);
	if (err) {
		kfree(port);
		return ERR_PTR(insane_rx_busy(lower, true, extack));
	}
	return port;
}

/* Removes the hook of @port's lower once no device uses it. RTNL. */
void insane_rx_port_put(struct insane_rx_port *port)
{
	ASSERT_RTNL();
	if (!list_empty(&port->devs))
		return;
	/* Waits for every reader of the port: it can be freed at once. */
	netdev_rx_handler_unregister(port->lower);
	kfree(port);
}

/*
 * Takes @ins off its lower's port, if it is on one. A reader of the port's
 * list may still stand on rx_node until a grace period has passed:
 * rx_left records when, and insane_rx_move() waits for it before rx_node
 * goes on any list again. Caller holds RTNL.
 */
void insane_rx_leave(struct insane_dev *ins)
{
	struct insane_rx_port *port = ins->rx_port;

	ASSERT_RTNL();
	if (!port)
		return;
	list_del_rcu(&ins->rx_node);
	ins->rx_left = get_state_synchronize_rcu();
	ins->rx_port = NULL;
	insane_rx_port_put(port);
}

/*
 * Puts @ins on @port, leaving its current port first. rx_node joins the
 * new list only once no reader of the old one can stand on it: else a
 * reader would follow it from the old list into the new one, and never
 * meet the old list's head again. Mostly that grace period has passed
 * already (the old port emptied, or a request came in between). RTNL.
 */
void insane_rx_move(struct insane_dev *ins, struct insane_rx_port *port)
{
	ASSERT_RTNL();
	if (ins->rx_port == port)
		return;
	insane_rx_leave(ins);
	cond_synchronize_rcu_expedited(ins->rx_left);
	list_add_tail_rcu(&ins->rx_node, &port->devs);
	ins->rx_port = port;
}

/**
 * insane_rx_set_policy - set or turn off the receive policy of @ins
 * @ins: the insane device
 * @p: the new receive policy, which this function owns from now on, or
 *	NULL to turn the receive direction off
 * @extack: where to say why the hook cannot be had
 *
 * Turning it on installs the decision on @ins and, while @ins is attached,
 * the hook on its lower; each can be refused with EBUSY, and then nothing
 * has changed (and @p is freed). The caller, insane_dev_set_rx_policy(),
 * has stopped the receive edge timer, which reads the old policy, and
 * starts it after. Caller holds RTNL.
 *
 * Return: 0 or a negative errno.
 */
int insane_rx_set_policy(struct insane_dev *ins, struct insane_policy *p,
			 struct netlink_ext_ack *extack)
{
	struct insane_policy *old = rtnl_dereference(ins->rx_policy);
	struct net_device *lower = rtnl_dereference(ins->lower);
	struct insane_rx_port *port = NULL;
	int err;

	ASSERT_RTNL();
	if (!p) {
		if (!old)
			return 0;
		insane_rx_leave(ins);
		/*
		 * A packet taken over before the leave is still decided and
		 * counted: wait for it before the decision goes, and for
		 * insane_rx_decide() before the policy goes, so that it never
		 * sees NULL.
		 */
		synchronize_net();
		netdev_rx_handler_unregister(ins->dev);
		RCU_INIT_POINTER(ins->rx_policy, NULL);
		insane_policy_free_rcu(old);
		return 0;
	}
	insane_delay_adopt(ins, INSANE_DIRECTION_RX, p);
	if (old) {
		rcu_assign_pointer(ins->rx_policy, p);
		insane_policy_free_rcu(old);
		return 0;
	}

	if (lower) {
		port = insane_rx_port_get(lower, extack);
		if (IS_ERR(port)) {
			err = PTR_ERR(port);
			goto err_free;
		}
	}
	rcu_assign_pointer(ins->rx_policy, p);
	err = netdev_rx_handler_register(ins->dev, insane_rx_decide, ins);
	if (err) {
		RCU_INIT_POINTER(ins->rx_policy, NULL);
		err = insane_rx_busy(ins->dev, false, extack);
		if (port)
			insane_rx_port_put(port);
		/* No reader could see @p: it was never reachable. */
		goto err_free;
	}
	if (port)
		insane_rx_move(ins, port);
	return 0;

err_free:
	insane_policy_free(p);
	return err;
}

/* ndo_uninit, after the device was detached: the decision goes. RTNL. */
void insane_rx_uninit(struct insane_dev *ins)
{
	ASSERT_RTNL();
	if (rtnl_dereference(ins->rx_policy))
		netdev_rx_handler_unregister(ins->dev);
}
