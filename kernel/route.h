/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The relay's route out of the lower device, with a small per-CPU cache of
 * the routes it found.
 */
#ifndef _INSANE_ROUTE_H
#define _INSANE_ROUTE_H

#include <linux/in6.h>
#include <linux/skbuff.h>
#include <linux/types.h>
#include <linux/uidgid.h>

struct dst_entry;
struct insane_dev;
struct net;
struct net_device;

/* Slots per family and CPU, direct-mapped by a hash of the addresses. */
#define INSANE_ROUTE_SLOTS 4

/*
 * A route found for one flow key. The slot holds a reference on @dst;
 * @gen is the device's route generation when it was found.
 */
struct insane_route4 {
	struct dst_entry *dst;
	unsigned int gen;
	__be32 daddr;
	__be32 saddr;
	u32 mark;
	kuid_t uid;
	union {
		struct {
			__be16 sport;
			__be16 dport;
		};
		__be32 ports;
	};
	u8 tos;
	u8 proto;
};

struct insane_route6 {
	struct dst_entry *dst;
	unsigned int gen;
	u32 cookie;
	u32 mark;
	kuid_t uid;
	union {
		struct {
			__be16 sport;
			__be16 dport;
		};
		__be32 ports;
	};
	__be32 flowinfo;
	u8 proto;
	struct in6_addr daddr;
	struct in6_addr saddr;
};

struct insane_routes {
	struct insane_route4 v4[INSANE_ROUTE_SLOTS];
	struct insane_route6 v6[INSANE_ROUTE_SLOTS];
};

int insane_routes_alloc(struct insane_dev *ins);
void insane_routes_release(struct insane_dev *ins);
void insane_routes_free(struct insane_dev *ins);
void insane_routes_invalidate(struct insane_dev *ins);

bool insane_route_v4(struct insane_dev *ins, struct net *net,
		     struct sk_buff *skb, struct net_device *lower, kuid_t uid,
		     const void **slotp);
bool insane_route_v6(struct insane_dev *ins, struct net *net,
		     struct sk_buff *skb, struct net_device *lower, kuid_t uid,
		     const void **slotp);
bool insane_route_kept(struct insane_dev *ins, const void *slot,
		       struct dst_entry *dst, bool v4,
		       struct net_device *lower);

#endif /* _INSANE_ROUTE_H */
