// SPDX-License-Identifier: GPL-2.0
/*
 * The insane link type: rtnl_link_ops, the datapath, ethtool and the
 * notifier that follows the lower device.
 *
 * insane is an L3 device. A relayed packet is routed again in the lower
 * device's network namespace with the lower as output interface, as
 * ipvlan's L3 mode does, so neighbour resolution happens on the lower.
 */

#include "compat.h"
#include "device.h"
#include "netlink.h"
#include "version.h"

#include <linux/ethtool.h>
#include <linux/if_arp.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/netdevice.h>
#include <linux/rtnetlink.h>
#include <linux/slab.h>
#include <net/ip.h>
#include <net/ip6_route.h>
#include <net/route.h>
#include <net/rtnetlink.h>

#define INSANE_FEATURES (NETIF_F_SG | NETIF_F_HW_CSUM | NETIF_F_HIGHDMA)

/* The counters' list matches the uapi enum, in order and in number. */
#define INSANE_COUNTER_ORDER(attr, name, reason)			\
	static_assert(INSANE_##attr - INSANE_DROP_POLICY ==		\
		      INSANE_STATS_A_##attr - INSANE_STATS_A_DROP_POLICY);
INSANE_DROP_CAUSES(INSANE_COUNTER_ORDER)
#undef INSANE_COUNTER_ORDER
static_assert(INSANE_STATS_A_DROP_POLICY + INSANE_DROP_NR ==
	      INSANE_STATS_A_MAX + 1);

static const struct net_device_ops insane_netdev_ops;
static struct rtnl_link_ops insane_link_ops;

bool insane_dev_is(const struct net_device *dev)
{
	return dev->netdev_ops == &insane_netdev_ops;
}

/* Datapath */

static void insane_count_drop(struct insane_dev *in, enum insane_drop why)
{
	struct insane_pcpu_drops *d = this_cpu_ptr(in->drops);

	u64_stats_update_begin(&d->syncp);
	u64_stats_inc(&d->drops[why]);
	u64_stats_update_end(&d->syncp);
}

/*
 * Each route function checks the header, looks up the route through @lower
 * in the lower's netns and attaches it to @skb. On failure it sets *@why and
 * the caller still owns @skb, with its old dst.
 */
static bool insane_route_v4(struct sk_buff *skb, struct net_device *lower,
			    enum insane_drop *why)
{
	const struct iphdr *iph;
	struct flowi4 fl4 = {
		.flowi4_oif = lower->ifindex,
		.flowi4_flags = FLOWI_FLAG_ANYSRC,
	};
	struct rtable *rt;

	if (!pskb_network_may_pull(skb, sizeof(*iph)))
		goto not_ip;
	iph = ip_hdr(skb);
	if (iph->version != 4)
		goto not_ip;

	fl4.flowi4_mark = skb->mark;
	fl4.flowi4_tos = RT_TOS(iph->tos);
	fl4.flowi4_proto = iph->protocol;
	fl4.daddr = iph->daddr;
	fl4.saddr = iph->saddr;

	/* With an output interface and no matching route, on-link is assumed. */
	rt = ip_route_output_flow(dev_net(lower), &fl4, NULL);
	if (IS_ERR(rt))
		goto no_route;
	if (rt->rt_type != RTN_UNICAST) {
		ip_rt_put(rt);
		goto no_route;
	}

	skb_dst_drop(skb);
	skb_dst_set(skb, &rt->dst);
	memset(IPCB(skb), 0, sizeof(*IPCB(skb)));
	return true;

not_ip:
	*why = INSANE_DROP_NOT_IP;
	return false;
no_route:
	*why = INSANE_DROP_NO_ROUTE;
	return false;
}

#if IS_ENABLED(CONFIG_IPV6)
static bool insane_route_v6(struct sk_buff *skb, struct net_device *lower,
			    enum insane_drop *why)
{
	const struct ipv6hdr *ip6h;
	struct dst_entry *dst;
	struct flowi6 fl6 = {
		.flowi6_oif = lower->ifindex,
		.flowi6_flags = FLOWI_FLAG_ANYSRC,
	};

	if (!pskb_network_may_pull(skb, sizeof(*ip6h)))
		goto not_ip;
	ip6h = ipv6_hdr(skb);
	if (ip6h->version != 6)
		goto not_ip;

	fl6.flowi6_mark = skb->mark;
	fl6.flowi6_proto = ip6h->nexthdr;
	fl6.flowlabel = ip6_flowinfo(ip6h);
	fl6.daddr = ip6h->daddr;
	fl6.saddr = ip6h->saddr;

	/*
	 * With a source address, ip6_route_output() takes the output
	 * interface as a mere preference and may pick a route through this
	 * very device: insist on the lower.
	 */
	dst = ip6_route_output_flags(dev_net(lower), NULL, &fl6,
				     RT6_LOOKUP_F_IFACE);
	if (dst->error) {
		dst_release(dst);
		*why = INSANE_DROP_NO_ROUTE;
		return false;
	}

	skb_dst_drop(skb);
	skb_dst_set(skb, dst);
	memset(IP6CB(skb), 0, sizeof(*IP6CB(skb)));
	return true;

not_ip:
	*why = INSANE_DROP_NOT_IP;
	return false;
}
#else
static bool insane_route_v6(struct sk_buff *skb, struct net_device *lower,
			    enum insane_drop *why)
{
	*why = INSANE_DROP_NOT_IP;
	return false;
}
#endif

static netdev_tx_t insane_xmit(struct sk_buff *skb, struct net_device *dev)
{
	struct insane_dev *in = netdev_priv(dev);
	unsigned int len = skb->len;
	struct net_device *lower;
	enum insane_drop why;
	struct net *net;
	bool v4;
	int err;

	/* Called with rcu_read_lock_bh() held and BHs off. */
	if (skb->protocol == htons(ETH_P_IP)) {
		v4 = true;
	} else if (IS_ENABLED(CONFIG_IPV6) &&
		   skb->protocol == htons(ETH_P_IPV6)) {
		v4 = false;
	} else {
		why = INSANE_DROP_NOT_IP;
		goto drop;
	}

	if (!insane_policy_relays(rcu_dereference_bh(in->policy))) {
		why = INSANE_DROP_POLICY;
		goto drop;
	}

	lower = rcu_dereference_bh(in->lower);
	if (unlikely(!lower)) {
		why = INSANE_DROP_NO_LOWER;
		goto drop;
	}

	/* Crossing into the lower's netns forgets this one's state. */
	net = dev_net(lower);
	if (unlikely(!net_eq(dev_net(dev), net)))
		skb_scrub_packet(skb, true);

	if (v4) {
		if (!insane_route_v4(skb, lower, &why))
			goto drop;
		err = ip_local_out(net, skb->sk, skb);
	} else {
		if (!insane_route_v6(skb, lower, &why))
			goto drop;
		err = ip6_local_out(net, skb->sk, skb);
	}
	/* From here on @skb belongs to the lower's stack. */
	if (likely(!net_xmit_eval(err)))
		dev_sw_netstats_tx_add(dev, 1, len);
	else
		insane_count_drop(in, INSANE_DROP_LOWER_REFUSED);
	return NETDEV_TX_OK;

drop:
	insane_count_drop(in, why);
	kfree_skb(skb);
	return NETDEV_TX_OK;
}

/* Counters */

static void insane_sum_drops(struct insane_dev *in, u64 *drops)
{
	int cpu, i;

	memset(drops, 0, sizeof(u64) * INSANE_DROP_NR);
	for_each_possible_cpu(cpu) {
		const struct insane_pcpu_drops *d = per_cpu_ptr(in->drops, cpu);
		u64 v[INSANE_DROP_NR];
		unsigned int start;

		do {
			start = u64_stats_fetch_begin(&d->syncp);
			for (i = 0; i < INSANE_DROP_NR; i++)
				v[i] = u64_stats_read(&d->drops[i]);
		} while (u64_stats_fetch_retry(&d->syncp, start));

		for (i = 0; i < INSANE_DROP_NR; i++)
			drops[i] += v[i];
	}
}

static void insane_read_raw(struct insane_dev *in, struct insane_counters *c)
{
	struct rtnl_link_stats64 s = {};

	dev_fetch_sw_netstats(&s, in->dev->tstats);
	c->relayed_packets = s.tx_packets;
	c->relayed_bytes = s.tx_bytes;
	insane_sum_drops(in, c->drops);
}

/* Counters since creation or the last reset. Caller holds RTNL. */
void insane_dev_read_counters(struct insane_dev *in, struct insane_counters *c)
{
	int i;

	ASSERT_RTNL();
	insane_read_raw(in, c);
	c->relayed_packets -= in->baseline.relayed_packets;
	c->relayed_bytes -= in->baseline.relayed_bytes;
	for (i = 0; i < INSANE_DROP_NR; i++)
		c->drops[i] -= in->baseline.drops[i];
}

/*
 * Per-cpu counters cannot be zeroed from another CPU without racing the
 * writers, so a reset records a baseline instead. The interface statistics
 * of ndo_get_stats64 stay monotonic, as users of ip -s link expect.
 */
void insane_dev_reset_counters(struct insane_dev *in)
{
	ASSERT_RTNL();
	insane_read_raw(in, &in->baseline);
}

/* The size of what insane_dev_fill_stats() puts, nest included. */
size_t insane_dev_stats_size(void)
{
	return nla_total_size(nla_total_size_64bit(sizeof(u64)) *
			      (2 + INSANE_DROP_NR));
}

/*
 * Puts the counters since the last reset as a nest of INSANE_STATS_A_*
 * attributes of type @attrtype. Caller holds RTNL.
 */
int insane_dev_fill_stats(struct sk_buff *skb, struct insane_dev *in,
			  int attrtype)
{
	struct insane_counters c;
	struct nlattr *nest;
	int i;

	insane_dev_read_counters(in, &c);
	nest = nla_nest_start(skb, attrtype);
	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u64_64bit(skb, INSANE_STATS_A_RELAYED_PACKETS,
			      c.relayed_packets, INSANE_STATS_A_PAD) ||
	    nla_put_u64_64bit(skb, INSANE_STATS_A_RELAYED_BYTES,
			      c.relayed_bytes, INSANE_STATS_A_PAD))
		goto cancel;
	for (i = 0; i < INSANE_DROP_NR; i++)
		if (nla_put_u64_64bit(skb, INSANE_STATS_A_DROP_POLICY + i,
				      c.drops[i], INSANE_STATS_A_PAD))
			goto cancel;
	nla_nest_end(skb, nest);
	return 0;

cancel:
	nla_nest_cancel(skb, nest);
	return -EMSGSIZE;
}

static void insane_get_stats64(struct net_device *dev,
			       struct rtnl_link_stats64 *s)
{
	struct insane_dev *in = netdev_priv(dev);
	u64 drops[INSANE_DROP_NR];
	int i;

	dev_get_tstats64(dev, s);
	insane_sum_drops(in, drops);
	for (i = 0; i < INSANE_DROP_NR; i++)
		s->tx_dropped += drops[i];
}

/* Lower device */

static int insane_lower_check(struct insane_dev *in, struct net_device *lower,
			      struct netlink_ext_ack *extack)
{
	if (lower == in->dev) {
		NL_SET_ERR_MSG(extack, "an insane device cannot be its own lower device");
		return -EINVAL;
	}
	if (lower->flags & IFF_LOOPBACK) {
		/* EINVAL: EOPNOTSUPP means "not an insane device" in genl. */
		NL_SET_ERR_MSG(extack, "the loopback device cannot be a lower device");
		return -EINVAL;
	}
	if (lower->mtu < in->dev->min_mtu) {
		NL_SET_ERR_MSG(extack, "the lower device's MTU is below the IPv4 minimum of 68");
		return -EINVAL;
	}
	return 0;
}

static void insane_unlink(struct insane_dev *in, struct net_device *lower)
{
	RCU_INIT_POINTER(in->lower, NULL);
	netdev_upper_dev_unlink(lower, in->dev);
	/*
	 * Readers still inside an RCU-bh section may use @lower; its
	 * unregistration waits for them before it frees it.
	 */
	netdev_put(lower, &in->lower_tracker);
}

/**
 * insane_dev_attach - make @lower the lower device of @in
 * @in: the insane device
 * @lower: the new lower device, in any network namespace
 * @extack: where to say what is wrong
 *
 * Replaces any current lower. On failure nothing has changed.
 * Caller holds RTNL.
 *
 * Return: 0 or a negative errno.
 */
int insane_dev_attach(struct insane_dev *in, struct net_device *lower,
		      struct netlink_ext_ack *extack)
{
	struct net_device *old = rtnl_dereference(in->lower);
	struct net_device *dev = in->dev;
	int err;

	ASSERT_RTNL();
	if (old == lower)
		return 0;
	err = insane_lower_check(in, lower, extack);
	if (err)
		return err;

	err = netdev_upper_dev_link(lower, dev, extack);
	if (err)
		return err;
	err = dev_set_mtu(dev, lower->mtu);
	if (err) {
		netdev_upper_dev_unlink(lower, dev);
		NL_SET_ERR_MSG(extack, "cannot take the lower device's MTU");
		return err;
	}

	if (old)
		insane_unlink(in, old);
	netdev_hold(lower, &in->lower_tracker, GFP_KERNEL);
	dev->needed_headroom = lower->hard_header_len + lower->needed_headroom;
	rcu_assign_pointer(in->lower, lower);
	netif_stacked_transfer_operstate(lower, dev);
	return 0;
}

/*
 * A detached device keeps its carrier and goes dormant: its operational
 * state leaves UP, so ip link shows NO-CARRIER and routing daemons see it
 * down, but its noqueue qdisc stays, so what is routed to it still reaches
 * insane_xmit() and is counted as INSANE_DROP_NO_LOWER. Without carrier the
 * core would swap in the noop qdisc, which discards packets uncounted.
 */
static void insane_set_detached_state(struct net_device *dev)
{
	netif_carrier_on(dev);
	netif_dormant_on(dev);
}

/* Drops the lower device, if any, at once. Caller holds RTNL. */
void insane_dev_detach(struct insane_dev *in)
{
	struct net_device *lower = rtnl_dereference(in->lower);

	ASSERT_RTNL();
	if (!lower)
		return;
	insane_unlink(in, lower);
	if (in->dev->reg_state == NETREG_REGISTERED)
		insane_set_detached_state(in->dev);
}

/* Publishes @p and frees the old policy after a grace period. */
void insane_dev_set_policy(struct insane_dev *in, struct insane_policy *p)
{
	struct insane_policy *old;

	old = rcu_replace_pointer(in->policy, p, lockdep_rtnl_is_held());
	if (old)
		kfree_rcu(old, rcu);
}

/* net_device_ops */

static int insane_dev_init(struct net_device *dev)
{
	struct insane_dev *in = netdev_priv(dev);

	dev->tstats = netdev_alloc_pcpu_stats(struct pcpu_sw_netstats);
	if (!dev->tstats)
		return -ENOMEM;
	in->drops = netdev_alloc_pcpu_stats(struct insane_pcpu_drops);
	if (!in->drops) {
		free_percpu(dev->tstats);
		dev->tstats = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void insane_dev_uninit(struct net_device *dev)
{
	/* The core checks right after this that no lower is left. */
	insane_dev_detach(netdev_priv(dev));
}

/* After the last reference: no reader of the policy is left. */
static void insane_dev_destruct(struct net_device *dev)
{
	struct insane_dev *in = netdev_priv(dev);

	kfree(rcu_dereference_protected(in->policy, true));
	free_percpu(in->drops);
	free_percpu(dev->tstats);
}

static int insane_get_iflink(const struct net_device *dev)
{
	struct insane_dev *in = netdev_priv(dev);
	struct net_device *lower;
	int iflink = dev->ifindex;

	rcu_read_lock();
	lower = rcu_dereference(in->lower);
	if (lower)
		iflink = lower->ifindex;
	rcu_read_unlock();
	return iflink;
}

static const struct net_device_ops insane_netdev_ops = {
	.ndo_init		= insane_dev_init,
	.ndo_uninit		= insane_dev_uninit,
	.ndo_start_xmit		= insane_xmit,
	.ndo_get_stats64	= insane_get_stats64,
	.ndo_get_iflink		= insane_get_iflink,
};

/* ethtool */

#define INSANE_GSTRING(attr, name, reason) #name,
static const char insane_gstrings[][ETH_GSTRING_LEN] = {
	INSANE_COUNTERS(INSANE_GSTRING)
};

#undef INSANE_GSTRING

static_assert(ARRAY_SIZE(insane_gstrings) == 2 + INSANE_DROP_NR);

static void insane_get_drvinfo(struct net_device *dev,
			       struct ethtool_drvinfo *info)
{
	strscpy(info->driver, KBUILD_MODNAME, sizeof(info->driver));
	strscpy(info->version, INSANE_VERSION, sizeof(info->version));
}

static int insane_get_sset_count(struct net_device *dev, int sset)
{
	if (sset == ETH_SS_STATS)
		return ARRAY_SIZE(insane_gstrings);
	return -EOPNOTSUPP;
}

static void insane_get_strings(struct net_device *dev, u32 sset, u8 *buf)
{
	if (sset == ETH_SS_STATS)
		memcpy(buf, insane_gstrings, sizeof(insane_gstrings));
}

static void insane_get_ethtool_stats(struct net_device *dev,
				     struct ethtool_stats *stats, u64 *data)
{
	struct insane_counters c;
	int i;

	insane_dev_read_counters(netdev_priv(dev), &c);
	data[0] = c.relayed_packets;
	data[1] = c.relayed_bytes;
	for (i = 0; i < INSANE_DROP_NR; i++)
		data[2 + i] = c.drops[i];
}

static const struct ethtool_ops insane_ethtool_ops = {
	.get_drvinfo		= insane_get_drvinfo,
	.get_link		= ethtool_op_get_link,
	.get_sset_count		= insane_get_sset_count,
	.get_strings		= insane_get_strings,
	.get_ethtool_stats	= insane_get_ethtool_stats,
};

/* rtnl_link_ops */

static void insane_setup(struct net_device *dev)
{
	dev->netdev_ops = &insane_netdev_ops;
	dev->ethtool_ops = &insane_ethtool_ops;
	dev->needs_free_netdev = true;
	dev->priv_destructor = insane_dev_destruct;

	dev->type = ARPHRD_NONE;
	dev->hard_header_len = 0;
	dev->addr_len = 0;
	dev->mtu = ETH_DATA_LEN;
	dev->min_mtu = IPV4_MIN_MTU;
	dev->max_mtu = IP_MAX_MTU;
	dev->flags = IFF_NOARP;
	dev->priv_flags |= IFF_NO_QUEUE;
	insane_set_lltx(dev);
	dev->features |= INSANE_FEATURES;
	dev->hw_features |= INSANE_FEATURES;
}

/*
 * rtnetlink parses IFLA_INFO_DATA liberally, skipping attributes it does
 * not know. Validate it again strictly so that nothing is ignored.
 */
static int insane_validate(struct nlattr *tb[], struct nlattr *data[],
			   struct netlink_ext_ack *extack)
{
	struct nlattr *info_data;
	int err;

	if (!tb[IFLA_LINKINFO])
		return 0;
	info_data = nla_find_nested(tb[IFLA_LINKINFO], IFLA_INFO_DATA);
	if (!info_data)
		return 0;
	err = nla_validate_nested(info_data, INSANE_POLICY_A_MAX,
				  insane_policy_nla, extack);
	if (err)
		return err;
	if (!insane_policy_present(data))
		return 0;
	return insane_policy_check(data, extack);
}

static int insane_newlink(struct net *src_net, struct net_device *dev,
			  struct nlattr *tb[], struct nlattr *data[],
			  struct netlink_ext_ack *extack)
{
	struct insane_dev *in = netdev_priv(dev);
	struct net_device *lower = NULL;
	struct insane_policy *p;
	int err;

	in->dev = dev;
	if (tb[IFLA_LINK]) {
		lower = __dev_get_by_index(src_net, nla_get_u32(tb[IFLA_LINK]));
		if (!lower) {
			NL_SET_ERR_MSG_ATTR(extack, tb[IFLA_LINK],
					    "the lower device (IFLA_LINK) does not exist");
			return -ENODEV;
		}
		err = insane_lower_check(in, lower, extack);
		if (err)
			return err;
	}

	p = insane_policy_build(data, extack);
	if (IS_ERR(p))
		return PTR_ERR(p);

	err = register_netdevice(dev);
	if (err) {
		kfree(p);
		return err;
	}
	/*
	 * The device cannot be up before the caller drops RTNL, so no packet
	 * reaches insane_xmit() before the policy is in place.
	 */
	rcu_assign_pointer(in->policy, p);
	insane_set_detached_state(dev);

	if (lower) {
		err = insane_dev_attach(in, lower, extack);
		if (err) {
			unregister_netdevice(dev);
			return err;
		}
	}
	return 0;
}

static int insane_changelink(struct net_device *dev, struct nlattr *tb[],
			     struct nlattr *data[],
			     struct netlink_ext_ack *extack)
{
	struct insane_dev *in = netdev_priv(dev);
	struct insane_policy *p;

	if (!insane_policy_present(data))
		return 0;
	p = insane_policy_build(data, extack);
	if (IS_ERR(p))
		return PTR_ERR(p);
	insane_dev_set_policy(in, p);
	insane_genl_notify(in, INSANE_EVENT_POLICY);
	return 0;
}

static size_t insane_get_size(const struct net_device *dev)
{
	return insane_policy_nlmsg_size();
}

static int insane_fill_info(struct sk_buff *skb, const struct net_device *dev)
{
	struct insane_dev *in = netdev_priv(dev);

	return insane_policy_fill(skb, rtnl_dereference(in->policy));
}

static size_t insane_get_xstats_size(const struct net_device *dev)
{
	return insane_dev_stats_size();
}

static int insane_fill_xstats(struct sk_buff *skb, const struct net_device *dev)
{
	return insane_dev_fill_stats(skb, netdev_priv(dev), IFLA_INFO_XSTATS);
}

static struct net *insane_get_link_net(const struct net_device *dev)
{
	struct insane_dev *in = netdev_priv(dev);
	struct net_device *lower = rtnl_dereference(in->lower);

	return lower ? dev_net(lower) : dev_net(dev);
}

static struct rtnl_link_ops insane_link_ops __read_mostly = {
	.kind		= INSANE_LINK_KIND,
	.priv_size	= sizeof(struct insane_dev),
	.setup		= insane_setup,
	.maxtype	= INSANE_POLICY_A_MAX,
	.policy		= insane_policy_nla,
	.validate	= insane_validate,
	.newlink	= insane_newlink,
	.changelink	= insane_changelink,
	.get_size	= insane_get_size,
	.fill_info	= insane_fill_info,
	.get_xstats_size = insane_get_xstats_size,
	.fill_xstats	= insane_fill_xstats,
	.get_link_net	= insane_get_link_net,
};

/* Notifier */

static int insane_lower_event(struct notifier_block *nb, unsigned long event,
			      void *ptr)
{
	struct net_device *lower = netdev_notifier_info_to_dev(ptr);
	struct net_device *upper;
	struct list_head *iter;
	struct insane_dev *in;

	switch (event) {
	case NETDEV_UNREGISTER:
		/* A move to another netns unregisters without removing. */
		if (lower->reg_state != NETREG_UNREGISTERING)
			break;
restart:
		/* Detaching unlinks, which changes the list being walked. */
		netdev_for_each_upper_dev_rcu(lower, upper, iter) {
			if (!insane_dev_is(upper))
				continue;
			in = netdev_priv(upper);
			insane_dev_detach(in);
			if (upper->reg_state == NETREG_REGISTERED)
				insane_genl_notify(in, INSANE_EVENT_DETACH);
			goto restart;
		}
		break;
	case NETDEV_CHANGEMTU:
		netdev_for_each_upper_dev_rcu(lower, upper, iter)
			if (insane_dev_is(upper) && upper->mtu != lower->mtu &&
			    dev_set_mtu(upper, lower->mtu))
				netdev_warn(upper, "cannot follow MTU %u of %s\n",
					    lower->mtu, lower->name);
		break;
	case NETDEV_UP:
	case NETDEV_DOWN:
	case NETDEV_CHANGE:
		netdev_for_each_upper_dev_rcu(lower, upper, iter)
			if (insane_dev_is(upper))
				netif_stacked_transfer_operstate(lower, upper);
		break;
	}
	return NOTIFY_DONE;
}

static struct notifier_block insane_notifier = {
	.notifier_call = insane_lower_event,
};

int __init insane_device_init(void)
{
	int err;

	err = register_netdevice_notifier(&insane_notifier);
	if (err)
		return err;
	err = rtnl_link_register(&insane_link_ops);
	if (err)
		goto err_link;
	return 0;

err_link:
	unregister_netdevice_notifier(&insane_notifier);
	return err;
}

void insane_device_uninit(void)
{
	rtnl_link_unregister(&insane_link_ops);
	unregister_netdevice_notifier(&insane_notifier);
}
