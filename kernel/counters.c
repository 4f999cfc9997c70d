// SPDX-License-Identifier: GPL-2.0
/*
 * An insane device's counters: per-cpu drop counters beside the core's
 * tstats, their sums, resets, netlink and ethtool views. The list of
 * counters is kernel/counters.h.
 */

#include "delay.h"
#include "device.h"
#include "version.h"

#include <linux/ethtool.h>
#include <linux/netdevice.h>
#include <linux/rtnetlink.h>
#include <net/netlink.h>

/* The attribute of each drop cause. */
#define INSANE_DROP_ATTR(attr, name, reason) \
	[INSANE_##attr] = INSANE_STATS_A_##attr,
static const u16 insane_drop_attrs[INSANE_COUNT_NR] = {
	INSANE_DROP_CAUSES(INSANE_DROP_ATTR)
	INSANE_RX_DROP_CAUSES(INSANE_DROP_ATTR)
	INSANE_MARKS(INSANE_DROP_ATTR)
};

/* The attribute of each gauge, in the order of struct insane_counters. */
#define INSANE_GAUGE_ATTR(attr, name, reason) INSANE_STATS_A_##attr,
static const u16 insane_gauge_attrs[INSANE_GAUGE_NR] = {
	INSANE_GAUGES(INSANE_GAUGE_ATTR)
};

#undef INSANE_GAUGE_ATTR
#undef INSANE_DROP_ATTR

/* The counters' list matches the uapi enum, in order and in number. */
#define INSANE_COUNTER_ONE(attr, name, reason) + 1
static_assert(0 INSANE_COUNTERS(INSANE_COUNTER_ONE) ==
	      INSANE_STATS_A_MAX - INSANE_STATS_A_PAD);
#undef INSANE_COUNTER_ONE
#define INSANE_COUNTER_ORDER(attr, name, reason) INSANE_STATS_A_##attr,
static const u16 insane_counter_attrs[] = {
	INSANE_COUNTERS(INSANE_COUNTER_ORDER)
};

#undef INSANE_COUNTER_ORDER

/* Counters */

void insane_dev_count_drops(struct insane_dev *ins, enum insane_drop why,
			    unsigned int packets)
{
	struct insane_pcpu_drops *d = this_cpu_ptr(ins->drops);

	u64_stats_update_begin(&d->syncp);
	u64_stats_add(&d->drops[why], packets);
	u64_stats_update_end(&d->syncp);
}

void insane_dev_count_drop(struct insane_dev *ins, enum insane_drop why)
{
	insane_dev_count_drops(ins, why, 1);
}

/* Sums every CPU's drops and marks into @drops[INSANE_COUNT_NR]. */
void insane_dev_sum_drops(struct insane_dev *ins, u64 *drops)
{
	int cpu, i;

	memset(drops, 0, sizeof(u64) * INSANE_COUNT_NR);
	for_each_possible_cpu(cpu) {
		const struct insane_pcpu_drops *d = per_cpu_ptr(ins->drops, cpu);
		u64 v[INSANE_COUNT_NR];
		unsigned int start;

		do {
			start = u64_stats_fetch_begin(&d->syncp);
			for (i = 0; i < INSANE_COUNT_NR; i++)
				v[i] = u64_stats_read(&d->drops[i]);
		} while (u64_stats_fetch_retry(&d->syncp, start));

		for (i = 0; i < INSANE_COUNT_NR; i++)
			drops[i] += v[i];
	}
}

static void insane_read_raw(struct insane_dev *ins, struct insane_counters *c)
{
	struct rtnl_link_stats64 s = {};

	dev_fetch_sw_netstats(&s, ins->dev->tstats);
	c->relayed_packets = s.tx_packets;
	c->relayed_bytes = s.tx_bytes;
	c->rx_relayed_packets = s.rx_packets;
	c->rx_relayed_bytes = s.rx_bytes;
	insane_dev_sum_drops(ins, c->drops);
	insane_delay_held(ins, c->held);
}

/* Counters since creation or the last reset. Caller holds RTNL. */
void insane_dev_read_counters(struct insane_dev *ins, struct insane_counters *c)
{
	int i;

	ASSERT_RTNL();
	insane_read_raw(ins, c);
	c->relayed_packets -= ins->baseline.relayed_packets;
	c->relayed_bytes -= ins->baseline.relayed_bytes;
	c->rx_relayed_packets -= ins->baseline.rx_relayed_packets;
	c->rx_relayed_bytes -= ins->baseline.rx_relayed_bytes;
	for (i = 0; i < INSANE_COUNT_NR; i++)
		c->drops[i] -= ins->baseline.drops[i];
	/* The gauges say what is held now: never reset. */
}

/*
 * Per-cpu counters cannot be zeroed from another CPU without racing the
 * writers, so a reset records a baseline instead. The interface statistics
 * of ndo_get_stats64 stay monotonic, as users of ip -s link expect.
 */
void insane_dev_reset_counters(struct insane_dev *ins)
{
	ASSERT_RTNL();
	insane_read_raw(ins, &ins->baseline);
}

/* The size of what insane_dev_fill_stats() puts, nest included. */
size_t insane_dev_stats_size(void)
{
	return nla_total_size(nla_total_size_64bit(sizeof(u64)) *
			      ARRAY_SIZE(insane_counter_attrs));
}

/*
 * Puts the counters since the last reset as a nest of INSANE_STATS_A_*
 * attributes of type @attrtype. Caller holds RTNL.
 */
int insane_dev_fill_stats(struct sk_buff *skb, struct insane_dev *ins,
			  int attrtype)
{
	struct insane_counters c;
	struct nlattr *nest;
	int i;

	insane_dev_read_counters(ins, &c);
	nest = nla_nest_start(skb, attrtype);
	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u64_64bit(skb, INSANE_STATS_A_RELAYED_PACKETS,
			      c.relayed_packets, INSANE_STATS_A_PAD) ||
	    nla_put_u64_64bit(skb, INSANE_STATS_A_RELAYED_BYTES,
			      c.relayed_bytes, INSANE_STATS_A_PAD) ||
	    nla_put_u64_64bit(skb, INSANE_STATS_A_RX_RELAYED_PACKETS,
			      c.rx_relayed_packets, INSANE_STATS_A_PAD) ||
	    nla_put_u64_64bit(skb, INSANE_STATS_A_RX_RELAYED_BYTES,
			      c.rx_relayed_bytes, INSANE_STATS_A_PAD))
		goto cancel;
	for (i = 0; i < INSANE_COUNT_NR; i++)
		if (nla_put_u64_64bit(skb, insane_drop_attrs[i], c.drops[i],
				      INSANE_STATS_A_PAD))
			goto cancel;
	for (i = 0; i < INSANE_GAUGE_NR; i++)
		if (nla_put_u64_64bit(skb, insane_gauge_attrs[i], c.held[i],
				      INSANE_STATS_A_PAD))
			goto cancel;
	nla_nest_end(skb, nest);
	return 0;

cancel:
	nla_nest_cancel(skb, nest);
	return -EMSGSIZE;
}

/* The counter of attribute @attr in @c. */
static u64 insane_counter_value(const struct insane_counters *c, u16 attr)
{
	int i;

	switch (attr) {
	case INSANE_STATS_A_RELAYED_PACKETS:
		return c->relayed_packets;
	case INSANE_STATS_A_RELAYED_BYTES:
		return c->relayed_bytes;
	case INSANE_STATS_A_RX_RELAYED_PACKETS:
		return c->rx_relayed_packets;
	case INSANE_STATS_A_RX_RELAYED_BYTES:
		return c->rx_relayed_bytes;
	}
	for (i = 0; i < INSANE_GAUGE_NR; i++)
		if (insane_gauge_attrs[i] == attr)
			return c->held[i];
	for (i = 0; i < INSANE_COUNT_NR; i++)
		if (insane_drop_attrs[i] == attr)
			return c->drops[i];
	return 0;
}

/* ethtool */

#define INSANE_GSTRING(attr, name, reason) #name,
static const char insane_gstrings[][ETH_GSTRING_LEN] = {
	INSANE_COUNTERS(INSANE_GSTRING)
};

#undef INSANE_GSTRING
static_assert(ARRAY_SIZE(insane_gstrings) ==
	      4 + INSANE_COUNT_NR + INSANE_GAUGE_NR);

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

	/* In the order of INSANE_COUNTERS(): that of the uapi enum. */
	insane_dev_read_counters(netdev_priv(dev), &c);
	for (i = 0; i < ARRAY_SIZE(insane_counter_attrs); i++)
		data[i] = insane_counter_value(&c, insane_counter_attrs[i]);
}

const struct ethtool_ops insane_ethtool_ops = {
	.get_drvinfo		= insane_get_drvinfo,
	.get_link		= ethtool_op_get_link,
	.get_sset_count		= insane_get_sset_count,
	.get_strings		= insane_get_strings,
	.get_ethtool_stats	= insane_get_ethtool_stats,
};
