/* SPDX-License-Identifier: GPL-2.0 */
/*
 * An insane device's state, shared by the datapath (datapath.c), the device
 * itself (device.c), the link type (link.c) and generic netlink (netlink.c).
 */
#ifndef _INSANE_DEVICE_H
#define _INSANE_DEVICE_H

#include <linux/netdevice.h>
#include <linux/spinlock.h>
#include <linux/u64_stats_sync.h>
#include <net/netlink.h>

#include "counters.h"
#include "delay.h"
#include "edge.h"
#include "policy.h"

struct insane_routes;

struct insane_pcpu_drops {
	u64_stats_t drops[INSANE_COUNT_NR];	/* drops, then marks */
	struct u64_stats_sync syncp;
};

/* A snapshot of the counters, summed over CPUs. */
struct insane_counters {
	u64 relayed_packets;
	u64 relayed_bytes;
	u64 rx_relayed_packets;
	u64 rx_relayed_bytes;
	u64 drops[INSANE_COUNT_NR];	/* drops, then marks */
	/* The gauges, never reset: INSANE_GAUGES()'s order. */
	u64 held[INSANE_GAUGE_NR];
};

struct insane_rx_port;

struct insane_dev {
	struct net_device *dev;
	/* Written under RTNL, read under RCU-bh by the datapath. */
	struct net_device __rcu *lower;
	netdevice_tracker lower_tracker;
	struct insane_policy __rcu *policy;
	/* The relay's per-CPU routes (route.c); generation under RTNL. */
	struct insane_routes __percpu *routes;
	unsigned int routes_gen;
	/*
	 * The receive policy, NULL while off. Written under RTNL, read under
	 * RCU by the receive path (rx.c). While it is on and the device is
	 * attached, the device is on its lower's rx_port list (rx_node).
	 */
	struct insane_policy __rcu *rx_policy;
	struct insane_rx_port *rx_port;
	struct list_head rx_node;
	/* When rx_node left its last list: an RCU grace-period cookie. */
	unsigned long rx_left;
	struct insane_pcpu_drops __percpu *drops;
	/* Counters at the last reset; under RTNL. */
	struct insane_counters baseline;
	/*
	 * Under RTNL: the user chose the MTU (IFLA_MTU or a later change),
	 * so it no longer follows the lower's except where it must; and
	 * mtu_following marks the module's own changes while it makes them.
	 */
	bool mtu_user;
	bool mtu_following;
	/*
	 * Carrier flaps (edge.c): the transmit timer and the lower's notifier
	 * both set the carrier, from the lower's and from flap_off (a DOWN
	 * step of a policy with INSANE_POLICY_A_CARRIER), under carrier_lock.
	 */
	spinlock_t carrier_lock;
	bool flap_off;
	/* The edge timers of the transmit and receive policies. */
	struct insane_edge_timer edge[INSANE_DIRECTION_MAX + 1];
	/* The delay stage of each direction (delay.c). */
	struct insane_delayq delayq[INSANE_DIRECTION_MAX + 1];
};

bool netif_is_insane(const struct net_device *dev);
void insane_dev_setup(struct net_device *dev);

int insane_dev_check_lower(struct insane_dev *ins, struct net_device *lower,
			   struct netlink_ext_ack *extack);
int insane_dev_attach(struct insane_dev *ins, struct net_device *lower,
		      struct netlink_ext_ack *extack);
void insane_dev_detach(struct insane_dev *ins);
void insane_dev_follow_lower_tso(struct insane_dev *ins,
				 struct net_device *lower);
void insane_dev_follow_lower_mtu(struct insane_dev *ins,
				 struct net_device *lower);
void insane_dev_replace_policy(struct insane_dev *ins,
			       struct insane_policy *p);
int insane_dev_set_rx_policy(struct insane_dev *ins, struct insane_policy *p,
			     struct netlink_ext_ack *extack);

extern const struct ethtool_ops insane_ethtool_ops;

void insane_dev_count_drop(struct insane_dev *ins, enum insane_drop why);
void insane_dev_count_drops(struct insane_dev *ins, enum insane_drop why,
			    unsigned int packets);
void insane_dev_sum_drops(struct insane_dev *ins, u64 *drops);
void insane_dev_read_counters(struct insane_dev *ins,
			      struct insane_counters *c);
void insane_dev_reset_counters(struct insane_dev *ins);
size_t insane_dev_stats_size(void);
int insane_dev_fill_stats(struct sk_buff *skb, struct insane_dev *ins,
			  int attrtype);

#endif /* _INSANE_DEVICE_H */
