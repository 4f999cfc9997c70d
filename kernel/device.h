/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The insane link type: a stacked L3 device that relays or drops.
 */
#ifndef _INSANE_DEVICE_H
#define _INSANE_DEVICE_H

#include <linux/netdevice.h>
#include <linux/u64_stats_sync.h>
#include <net/netlink.h>

#include "counters.h"
#include "policy.h"

/* Drop causes, in the order of INSANE_STATS_A_DROP_* in the uapi header. */
#define INSANE_DROP_ENUM(attr, name, reason) INSANE_##attr,
enum insane_drop {
	INSANE_DROP_CAUSES(INSANE_DROP_ENUM)
	INSANE_DROP_NR
};

#undef INSANE_DROP_ENUM

struct insane_pcpu_drops {
	u64_stats_t drops[INSANE_DROP_NR];
	struct u64_stats_sync syncp;
};

/* A snapshot of the counters, summed over CPUs. */
struct insane_counters {
	u64 relayed_packets;
	u64 relayed_bytes;
	u64 drops[INSANE_DROP_NR];
};

struct insane_dev {
	struct net_device *dev;
	/* Written under RTNL, read under RCU-bh by the datapath. */
	struct net_device __rcu *lower;
	netdevice_tracker lower_tracker;
	struct insane_policy __rcu *policy;
	struct insane_pcpu_drops __percpu *drops;
	/* Counters at the last reset; under RTNL. */
	struct insane_counters baseline;
};

bool insane_dev_is(const struct net_device *dev);
int insane_dev_attach(struct insane_dev *in, struct net_device *lower,
		      struct netlink_ext_ack *extack);
void insane_dev_detach(struct insane_dev *in);
void insane_dev_set_policy(struct insane_dev *in, struct insane_policy *p);
void insane_dev_read_counters(struct insane_dev *in,
			      struct insane_counters *c);
void insane_dev_reset_counters(struct insane_dev *in);
size_t insane_dev_stats_size(void);
int insane_dev_fill_stats(struct sk_buff *skb, struct insane_dev *in,
			  int attrtype);

int insane_device_init(void);
void insane_device_uninit(void);

#endif /* _INSANE_DEVICE_H */
