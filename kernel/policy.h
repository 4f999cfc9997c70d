/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Drop policies: parsing, reporting and the per-packet decision.
 *
 * A policy is immutable once published. Replacing it allocates a new one,
 * publishes it with RCU and frees the old one after a grace period, so the
 * datapath reads it without any lock.
 */
#ifndef _INSANE_POLICY_H
#define _INSANE_POLICY_H

#include <linux/atomic.h>
#include <linux/cache.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/percpu.h>
#include <linux/random.h>
#include <linux/rcupdate.h>
#include <linux/types.h>
#include <net/netlink.h>

#include <uapi/linux/insane.h>

struct insane_policy {
	struct rcu_head rcu;
	u32 mode;
	u32 percent;		/* INSANE_MODE_PERCENT, in millionths of % */
	/*
	 * A 32-bit draw r relays iff r < threshold: the header's comparison
	 * r * INSANE_PERCENT_MAX < percent << 32, solved once for r.
	 */
	u64 threshold;
	bool seeded;
	u64 seed;
	u64 on_ns;		/* INSANE_MODE_TIME */
	u64 period_ns;		/* on_ns + off_ns */
	u64 epoch_ns;		/* ktime_get_ns() when the policy was built */
	/*
	 * Index of the next packet in seeded percent mode. It is the one
	 * counter that all CPUs write, so it gets a cache line of its own;
	 * unseeded policies never touch it.
	 */
	atomic64_t next ____cacheline_aligned_in_smp;
};

extern const struct nla_policy insane_policy_nla[INSANE_POLICY_A_MAX + 1];

bool insane_policy_present(struct nlattr *const *tb);
int insane_policy_check(struct nlattr *const *tb,
			struct netlink_ext_ack *extack);
struct insane_policy *insane_policy_build(struct nlattr *const *tb,
					  struct netlink_ext_ack *extack);
int insane_policy_fill(struct sk_buff *skb, const struct insane_policy *p);
size_t insane_policy_nlmsg_size(void);

/* The finaliser of the mixing function documented in the uapi header. */
static inline u64 insane_mix64(u64 x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

#define INSANE_GOLDEN_GAMMA 0x9e3779b97f4a7c15ULL

/* The decision value of the k-th packet under seed @seed (uapi header). */
static inline u64 insane_policy_mix(u64 seed, u64 k)
{
	return insane_mix64(seed + (k + 1) * INSANE_GOLDEN_GAMMA);
}

/*
 * Unseeded draws: one SplitMix64 sequence per CPU, started at a random
 * point when the module loads. A fault injector needs uniform, cheap and
 * unpredictable-enough values, not a CSPRNG: get_random_u32() takes a local
 * lock per call and refills a ChaCha batch every few calls.
 */
DECLARE_PER_CPU(u64, insane_rng);
void insane_policy_init(void);

static inline u32 insane_random_u32(void)
{
	return insane_mix64(this_cpu_add_return(insane_rng,
						INSANE_GOLDEN_GAMMA)) >> 32;
}

/* Called for every packet, under rcu_read_lock_bh(). */
static inline bool insane_policy_relays(struct insane_policy *p)
{
	u64 k, rem;

	switch (p->mode) {
	case INSANE_MODE_PASS:
		return true;
	case INSANE_MODE_PERCENT:
		if (!p->seeded)
			return insane_random_u32() < p->threshold;
		k = atomic64_inc_return(&p->next) - 1;
		return (insane_policy_mix(p->seed, k) >> 32) < p->threshold;
	case INSANE_MODE_TIME:
		div64_u64_rem(ktime_get_ns() - p->epoch_ns, p->period_ns, &rem);
		return rem < p->on_ns;
	}
	return false;
}

#endif /* _INSANE_POLICY_H */
