/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Drop policies: parsing, reporting and the per-packet decision.
 *
 * A policy is immutable once published, apart from the state its decisions
 * carry (the seeded word, the unseeded per-CPU chain states). Replacing it
 * allocates a new one, publishes it with RCU and frees the old one after a
 * grace period, so the datapath reads it without any lock.
 */
#ifndef _INSANE_POLICY_H
#define _INSANE_POLICY_H

#include <linux/atomic.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/cache.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/percpu.h>
#include <linux/random.h>
#include <linux/rcupdate.h>
#include <linux/types.h>
#include <net/ipv6.h>
#include <net/netlink.h>

#include <uapi/linux/insane.h>

/* The two states of the Gilbert chain, as an index. */
enum insane_chain_state {
	INSANE_CHAIN_GOOD,
	INSANE_CHAIN_BAD,
};

/*
 * The delay stage of a policy or a step ("Delay" in the uapi header): the
 * attributes as set (the has_ flags: given, so that replies print back
 * what was set) and what the draws derive from them once, at build.
 */
struct insane_delay {
	u64 delay_ns;		/* D; 0: no delay stage */
	u64 jitter_ns;		/* J; 0: every packet takes D */
	u32 correlation;	/* as set */
	u32 dist;		/* enum insane_distribution */
	u32 rq;			/* correlation in Q16, 0: uncorrelated */
	u32 s;			/* floor(sqrt(2^32 - rq^2)) */
	/* "Rate, duplication and corruption": the serialization clock */
	u64 rate;		/* R, bits per second; 0: no rate */
	u64 buffer_ns;		/* B; 0: bounded by the limit alone */
	u32 overhead;		/* bytes added to each wire packet */
	bool has_overhead;
	bool has_jitter;
	bool has_correlation;
	bool has_dist;
	bool reorder;
};

/* Whether @d holds packets: a delay, a rate, or both. */
static inline bool insane_delay_on(const struct insane_delay *d)
{
	return d->delay_ns || d->rate;
}

/*
 * What a policy, or one step of a schedule, does with a packet: its mode
 * (pass, drop, percent, burst or gilbert), the attributes as set, and the
 * thresholds of the header's decisions: thr(q) = ceil(q * 2^32), so that a
 * uniform 32-bit u is below thr(q) with probability q.
 */
struct insane_action {
	u32 mode;
	u32 percent;		/* percent and burst */
	u32 burst;		/* burst */
	u32 ge_p, ge_r;		/* gilbert, as set */
	u32 ge_loss_bad, ge_loss_good;
	/* percent: a draw u relays iff u < threshold */
	u64 threshold;
	/* burst and gilbert: state s moves iff u < thr_move[s] */
	u64 thr_move[2];
	/* burst and gilbert: dropped in (new) state s iff w < thr_loss[s] */
	u64 thr_loss[2];
	/* what it relays is held so long first (time mode: both steps) */
	struct insane_delay delay;
	/* duplicate and corrupt, as set (0: not set), and thr() of each */
	u32 duplicate, corrupt;
	u64 thr_dup, thr_corrupt;
	bool corrupt_header;
};

/* Whether @a duplicates or corrupts what it relays. */
static inline bool insane_action_extras(const struct insane_action *a)
{
	return a->duplicate || a->corrupt;
}

/* A step of a schedule; time mode is the steps ON pass, OFF drop. */
struct insane_step {
	u64 end_ns;		/* the sum of the durations up to this step's */
	struct insane_action act;
};

struct insane_policy {
	struct rcu_head rcu;
	u32 mode;
	bool seeded;
	bool once;		/* schedule: the last step holds after the end */
	/* Time and schedule: INSANE_POLICY_A_CARRIER and _EVENTS (edge.c). */
	bool carrier;
	bool events;
	u32 nsteps;		/* time and schedule, else 0 */
	u64 seed;
	u64 epoch_ns;		/* ktime_get_ns() when the policy was built */
	u64 total_ns;		/* time and schedule: the last step's end_ns */
	/* INSANE_POLICY_A_LIMIT, or INSANE_DELAY_LIMIT_DEFAULT (has_limit) */
	u32 limit;
	bool has_limit;
	/* An action with a delay or a rate (that keeps order: flows) */
	bool delays;
	bool flows;
	/* An action that duplicates or corrupts */
	bool extras;
	/* Rate, duplicate or corrupt somewhere: GSO packets are cut first. */
	bool cuts;
	/* Unseeded with a burst or gilbert action: each CPU's chain state. */
	u8 __percpu *state;
	/*
	 * Unseeded with a correlated delay: each CPU's latent g
	 * (INSANE_DELAY_G_NONE before its first correlated draw).
	 */
	s32 __percpu *dg;
	/*
	 * The delay stage's flow table (struct insane_delay_flow), allocated
	 * with the policy when it keeps order, for the device to adopt if it
	 * has none (delay.c); freed with the policy otherwise.
	 */
	void *flows_spare;
	struct insane_action act;	/* percent, burst and gilbert */
	/*
	 * Seeded: (k << 1) | s, where k is the index of the next packet that
	 * draws and s the chain state, so that both advance in one atomic
	 * step. It is the one word that all CPUs write, so it gets a cache
	 * line of its own; unseeded policies never touch it.
	 */
	atomic64_t next ____cacheline_aligned_in_smp;
	/*
	 * Seeded delay draws: (k << 24) | (g & 0xffffff), the index of the
	 * next packet that draws a delay and the latent g of the correlation
	 * (INSANE_DELAY_G_NONE before the first correlated draw).
	 */
	atomic64_t dnext;
	/* Seeded duplication and corruption draws: the next k. */
	atomic64_t xnext;
	/* Time and schedule; read by every packet, so not beside next. */
	struct insane_step steps[] ____cacheline_aligned_in_smp;
};

/*
 * The types of a policy's attributes: insane_policy_nla (policy.c) and the
 * link's IFLA_INFO_DATA table (link.c), which adds INSANE_POLICY_A_RX and
 * _RX_OFF, are both made of this one list.
 */
#define INSANE_POLICY_NLA						\
	[INSANE_POLICY_A_MODE] = { .type = NLA_U32 },	\
	[INSANE_POLICY_A_PERCENT] = { .type = NLA_U32 },	\
	[INSANE_POLICY_A_SEED] = { .type = NLA_U64 },	\
	[INSANE_POLICY_A_ON_NS] = { .type = NLA_U64 },	\
	[INSANE_POLICY_A_OFF_NS] = { .type = NLA_U64 },	\
	[INSANE_POLICY_A_BURST] = { .type = NLA_U32 },	\
	[INSANE_POLICY_A_GE_P] = { .type = NLA_U32 },	\
	[INSANE_POLICY_A_GE_R] = { .type = NLA_U32 },	\
	[INSANE_POLICY_A_GE_LOSS_BAD] = { .type = NLA_U32 },	\
	[INSANE_POLICY_A_GE_LOSS_GOOD] = { .type = NLA_U32 },	\
	[INSANE_POLICY_A_STEPS] = NLA_POLICY_NESTED(insane_steps_nla),	\
	[INSANE_POLICY_A_DURATION_NS] = { .type = NLA_U64 },	\
	[INSANE_POLICY_A_ONCE] = { .type = NLA_FLAG },	\
	[INSANE_POLICY_A_STEP_INDEX] = { .type = NLA_U32 },	\
	[INSANE_POLICY_A_STEP_LEFT_NS] = { .type = NLA_U64 },	\
	[INSANE_POLICY_A_CARRIER] = { .type = NLA_FLAG },	\
	[INSANE_POLICY_A_EVENTS] = { .type = NLA_FLAG },	\
	[INSANE_POLICY_A_STEPS_OMITTED] = { .type = NLA_U32 },	\
	[INSANE_POLICY_A_DELAY_NS] = { .type = NLA_U64 },	\
	[INSANE_POLICY_A_JITTER_NS] = { .type = NLA_U64 },	\
	[INSANE_POLICY_A_CORRELATION] = { .type = NLA_U32 },	\
	[INSANE_POLICY_A_DISTRIBUTION] = { .type = NLA_U32 },	\
	[INSANE_POLICY_A_REORDER] = { .type = NLA_FLAG },	\
	[INSANE_POLICY_A_LIMIT] = { .type = NLA_U32 },	\
	[INSANE_POLICY_A_RATE] = { .type = NLA_U64 },	\
	[INSANE_POLICY_A_OVERHEAD] = { .type = NLA_U32 },	\
	[INSANE_POLICY_A_BUFFER_NS] = { .type = NLA_U64 },	\
	[INSANE_POLICY_A_DUPLICATE] = { .type = NLA_U32 },	\
	[INSANE_POLICY_A_CORRUPT] = { .type = NLA_U32 },	\
	[INSANE_POLICY_A_CORRUPT_HEADER] = { .type = NLA_FLAG },

extern const struct nla_policy insane_policy_nla[INSANE_POLICY_A_MAX + 1];
extern const struct nla_policy insane_steps_nla[INSANE_STEPS_A_MAX + 1];

/*
 * @dir says which policy of a device @tb is: the transmit one
 * (INSANE_DIRECTION_TX) or the receive one, which refuses
 * INSANE_POLICY_A_CARRIER.
 */
bool insane_policy_present(struct nlattr *const *tb);
int insane_nla_refuse_dups(const struct nlattr *head, int len, int maxtype,
			   const char * const *msgs,
			   struct netlink_ext_ack *extack);
int insane_policy_refuse_dups(const struct nlattr *nest,
			      struct netlink_ext_ack *extack);
int insane_policy_check(struct nlattr *const *tb, enum insane_direction dir,
			struct netlink_ext_ack *extack);
/* Between the parser (policy.c) and the builder (policy_build.c). */
int insane_policy_check_count(struct nlattr *const *tb,
			      enum insane_direction dir,
			      struct netlink_ext_ack *extack);
int insane_policy_parse_step(const struct nlattr *step, struct nlattr **stb,
			     struct netlink_ext_ack *extack);
struct insane_policy *insane_policy_build(struct nlattr *const *tb,
					  enum insane_direction dir,
					  struct netlink_ext_ack *extack);
void insane_policy_free(struct insane_policy *p);
void insane_policy_free_rcu(struct insane_policy *p);
int insane_policy_fill(struct sk_buff *skb, const struct insane_policy *p);
int insane_policy_fill_compact(struct sk_buff *skb,
			       const struct insane_policy *p);
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

static inline u64 insane_random_u64(void)
{
	return insane_mix64(this_cpu_add_return(insane_rng,
						INSANE_GOLDEN_GAMMA));
}

static inline u32 insane_random_u32(void)
{
	return insane_random_u64() >> 32;
}

/*
 * The k of the next seeded packet that draws without moving the chain
 * (percent): k goes up by one in the seeded word, the state stays.
 */
static inline u64 insane_policy_next_k(struct insane_policy *p)
{
	return ((u64)atomic64_add_return(2, &p->next) >> 1) - 1;
}

/* The 24-bit g of a seeded word, or per CPU, before any correlated draw. */
#define INSANE_DELAY_G_NONE	0x800000

u32 insane_policy_step_at(const struct insane_policy *p, u64 now,
			  u64 *left);
const struct insane_action *insane_policy_decide(struct insane_policy *p,
						 bool in_seq);

/* The action in force now: the step's, in time and schedule modes. */
static inline const struct insane_action *
insane_policy_action_now(const struct insane_policy *p)
{
	u64 left;

	if (p->nsteps)
		return &p->steps[insane_policy_step_at(p, ktime_get_ns(),
						       &left)].act;
	return &p->act;
}

/*
 * The delay stage of the action in force now (receive: before the
 * decision), or NULL if it holds nothing.
 */
static inline const struct insane_delay *
insane_policy_delay_now(const struct insane_policy *p)
{
	const struct insane_delay *d;

	if (likely(!p->delays))
		return NULL;
	d = &insane_policy_action_now(p)->delay;
	return insane_delay_on(d) ? d : NULL;
}

/* What a packet's duplication and corruption draw says. */
struct insane_extra {
	u32 y;			/* chooses the corrupted bit */
	bool duplicate;
	bool corrupt;
	bool header;		/* the action's CORRUPT_HEADER */
};

/*
 * The duplication and corruption draw of a packet under @p and its action
 * @a ("Rate, duplication and corruption" in the uapi header): x is the
 * next k's of a seeded policy when @in_seq, else this CPU's.
 */
static inline void insane_policy_extra(struct insane_policy *p,
				       const struct insane_action *a,
				       bool in_seq, struct insane_extra *x)
{
	u64 r, k;

	if (!p->seeded || !in_seq) {
		r = insane_random_u64();
	} else {
		k = atomic64_inc_return(&p->xnext) - 1;
		r = insane_mix64((p->seed ^ INSANE_EXTRA_SALT) +
				 (k + 1) * INSANE_GOLDEN_GAMMA);
	}
	x->duplicate = (r >> 32) < a->thr_dup;
	x->corrupt = (u32)r < a->thr_corrupt;
	x->y = insane_mix64(r ^ INSANE_CORRUPT_SALT) >> 32;
	x->header = a->corrupt_header;
}

/*
 * Whether a checked packet of the transmit direction takes the next k of a
 * seeded policy: not if its destination is multicast ("Percent decisions"
 * in the uapi header). One load of the header just checked.
 */
static __always_inline bool insane_policy_in_seq(const struct sk_buff *skb,
						 bool v4)
{
	if (v4)
		return !ipv4_is_multicast(ip_hdr(skb)->daddr);
	return !ipv6_addr_is_multicast(&ipv6_hdr(skb)->daddr);
}

/*
 * The action that relays the packet (whose delay stage it then enters), or
 * NULL when the policy drops it.
 */
static __always_inline const struct insane_action *
__insane_policy_verdict(struct insane_policy *p, const struct sk_buff *skb,
			bool v4)
{
	bool in_seq;

	if (likely(p->mode == INSANE_MODE_PASS))
		return &p->act;
	if (p->mode == INSANE_MODE_DROP)
		return NULL;
	in_seq = p->seeded && (!skb || insane_policy_in_seq(skb, v4));
	if (p->mode == INSANE_MODE_PERCENT) {
		if (!in_seq)
			return insane_random_u32() < p->act.threshold ?
			       &p->act : NULL;
		return (insane_policy_mix(p->seed, insane_policy_next_k(p)) >>
			32) < p->act.threshold ? &p->act : NULL;
	}
	return insane_policy_decide(p, in_seq);
}

/*
 * Called for every packet, under rcu_read_lock_bh() or in the receive
 * path. Pass first, then drop and percent, inline; the other modes out of
 * line. Every packet that a seeded policy decides takes the next k: the
 * receive direction takes only unicast packets.
 */
static inline bool insane_policy_relays(struct insane_policy *p)
{
	return !!__insane_policy_verdict(p, NULL, false);
}

/*
 * The transmit direction's decision of @skb, checked as IPv4 (@v4) or
 * IPv6: a multicast packet (the kernel's own IGMP, MLD and router
 * solicitations; never relayed) takes no k of a seeded policy. Returns the
 * action that relays it, or NULL.
 */
static inline const struct insane_action *
insane_policy_verdict_skb(struct insane_policy *p, const struct sk_buff *skb,
			  bool v4)
{
	return __insane_policy_verdict(p, skb, v4);
}

#endif /* _INSANE_POLICY_H */
