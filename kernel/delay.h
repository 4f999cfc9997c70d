/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The delay stage ("Delay" in the uapi header): per device, per direction
 * and per CPU, a time-ordered queue of held packets released by a timer
 * pinned to that CPU. The transmit path holds what the policy relays; the
 * receive hook holds what it takes over, before the decision.
 */
#ifndef _INSANE_DELAY_H
#define _INSANE_DELAY_H

#include <linux/atomic.h>
#include <linux/cache.h>
#include <linux/compiler_types.h>
#include <linux/types.h>

#include <uapi/linux/insane.h>

struct insane_delay;
struct insane_delay_cpu;
struct insane_dev;
struct insane_policy;
struct netlink_ext_ack;
struct sk_buff;

/*
 * One bucket of a direction's flow table ("Order"): the last departure
 * given to its packets, and the sequence numbers of the last packet held
 * and of the last released, so that a packet waits for its predecessor
 * held on another CPU; a packet whose predecessor is held on another CPU
 * is handed over to that CPU's queue.
 */
struct insane_delay_flow {
	atomic64_t last;
	atomic_t enq;
	atomic_t rel;
	int cpu;	/* the CPU that holds its packets, while it holds any */
};

/* One direction's stage, in struct insane_dev. */
struct insane_delayq {
	struct insane_delay_cpu __percpu *cpu;
	/*
	 * INSANE_DELAY_FLOWS buckets, from the first policy that keeps
	 * order until the device goes: written once under RTNL, read by
	 * the datapath with READ_ONCE().
	 */
	struct insane_delay_flow *flows;
	struct insane_dev *ins;
	enum insane_direction dir;
	atomic_t kicks;		/* handover IPIs in flight */
	/*
	 * The serialization clock of "Rate": when the last packet charged
	 * at the rate leaves the wire. Shared by every CPU, for the device's
	 * life; the one word a rate writes per packet.
	 */
	atomic64_t clock ____cacheline_aligned_in_smp;
};

int insane_delay_init(struct insane_dev *ins);
void insane_delay_flush(struct insane_dev *ins);
void insane_delay_free(struct insane_dev *ins);
void insane_delay_adopt(struct insane_dev *ins, enum insane_direction dir,
			struct insane_policy *p);
void insane_delay_held(struct insane_dev *ins, u64 *held);

void insane_delay_hold(struct insane_dev *ins, enum insane_direction dir,
		       struct sk_buff *skb, struct insane_policy *p,
		       const struct insane_delay *d, u64 arrival, bool in_seq);

struct insane_delay_flow *insane_delay_flows_alloc(void);
s32 __percpu *insane_delay_dg_alloc(void);
void insane_delay_flows_free(struct insane_delay_flow *flows);
s64 insane_delay_z_min(u32 dist);
s64 insane_delay_z_max(u32 dist);

#endif /* _INSANE_DELAY_H */
