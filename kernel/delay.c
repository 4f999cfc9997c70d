// SPDX-License-Identifier: GPL-2.0
/*
 * The delay stage ("Delay" in the uapi header, docs/design-delay.md).
 *
 * Per device, per direction and per CPU, a queue of held packets in
 * departure order: netem's tfifo made per CPU, a list for the packets that
 * depart no earlier than its tail (every packet, with a constant delay)
 * and an rbtree for the others, ties in arrival order. One hrtimer per
 * queue, HRTIMER_MODE_ABS_PINNED_SOFT: it expires in softirq context on
 * the CPU that queued, where that CPU's datapath also runs with BHs off,
 * so the two never run at once and no lock is needed. The timer is armed
 * only when the queue's head changes; a callback releases at most
 * INSANE_DELAY_BATCH packets and re-arms for the rest.
 *
 * A dense transmit stream (packets held on this CPU less than
 * INSANE_DELAY_DENSE_NS apart, on average) is released as netem's is: each
 * packet held first sends on what is due, so that the packets of a steady
 * stream leave less than one gap late without a timer interrupt each, and
 * the timer, armed up to INSANE_DELAY_SLACK_NS past the head's departure,
 * only takes what no later packet came to release. A sparser stream, and
 * the receive direction, arm the timer at the head's departure exactly.
 *
 * The departure lives in skb->cb, past what IPCB() and IP6CB() use (the
 * relay needs them as the sender left them), never in skb->tstamp, which
 * TCP's EDT owns. The rbtree's node overlays skb->next, prev and dev,
 * which are set again at departure.
 */

#include "datapath.h"
#include "delay.h"
#include "device.h"
#include "dist_tables.h"
#include "frame.h"
#include "policy.h"
#include "rx.h"

#include <linux/hrtimer.h>
#include <linux/llist.h>
#include <linux/math64.h>
#include <linux/netdevice.h>
#include <linux/percpu.h>
#include <linux/rbtree.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <net/ip.h>
#include <net/ipv6.h>

/* The most packets one callback releases before it re-arms. */
#define INSANE_DELAY_BATCH	256
/* How long a packet waits for its flow's predecessor on another CPU. */
#define INSANE_DELAY_WAIT_NS	(10 * NSEC_PER_USEC)
/* How far past the head's departure a dense transmit stream's timer runs. */
#define INSANE_DELAY_SLACK_NS	(20 * NSEC_PER_USEC)
/*
 * The mean gap between holds below which a stream is dense: an EWMA of
 * weight 1/16, each gap counted up to 1 ms. A sparse stream's bursts (the
 * short gaps of a Poisson stream of 10,000 packets/s) do not bring the
 * mean down to it, so that their last packets do not wait for the slack.
 */
#define INSANE_DELAY_DENSE_NS	(10 * NSEC_PER_USEC)
#define INSANE_DELAY_GAP_SHIFT	4
#define INSANE_DELAY_GAP_MAX	NSEC_PER_MSEC

struct insane_delay_cpu {
	struct rb_root_cached tree;	/* earlier than the list's tail */
	struct sk_buff *head, *tail;	/* in departure order */
	struct hrtimer timer;
	/*
	 * Packets another CPU handed over because this one holds their
	 * flow's predecessor, and the IPI that has the timer take them in.
	 */
	struct llist_head inbox;
	call_single_data_t kick;
	struct insane_delayq *q;
	u64 armed;			/* the timer's expiry, 0: not armed */
	u64 last_in;			/* when the last packet was held */
	u32 gap;			/* the mean gap between holds, ns */
	u32 arrivals;			/* ties depart in arrival order */
	unsigned int len;		/* packets (skbs) held */
	/* The gauges: read by any CPU, written by this one. */
	unsigned long packets;		/* wire packets held */
	unsigned long bytes;
	bool running;			/* inside the callback */
};

/* In skb->cb, past the protocols' control blocks. */
struct insane_delay_cb {
	u64 departure;
	u32 arrival;
	u32 seq;			/* in the flow's bucket; 0: none */
};

#define INSANE_DELAY_CB_OFFSET	32

static_assert(sizeof(struct inet_skb_parm) <= INSANE_DELAY_CB_OFFSET);
#if IS_ENABLED(CONFIG_IPV6)
static_assert(sizeof(struct inet6_skb_parm) <= INSANE_DELAY_CB_OFFSET);
#endif
static_assert(INSANE_DELAY_CB_OFFSET + sizeof(struct insane_delay_cb) <=
	      sizeof_field(struct sk_buff, cb));

static struct insane_delay_cb *insane_delay_cb(const struct sk_buff *skb)
{
	return (struct insane_delay_cb *)(skb->cb + INSANE_DELAY_CB_OFFSET);
}

/* Draws ("Delay draws" in the uapi header) */

/* An inverse CDF table at u: T[i] + ((T[i + 1] - T[i]) * f >> 20). */
static s64 insane_dist_at(const s32 *t, u32 u)
{
	u32 i = u >> 20, f = u & 0xfffff;

	return t[i] + (((s64)t[i + 1] - t[i]) * f >> 20);
}

/* Phi(g) * 2^32, g in Q16 within +-8: the CDF table at g + 8 * 65536. */
static u32 insane_dist_phi(s32 g)
{
	u32 v = g + 8 * 65536, i = v >> 8, f = v & 0xff;

	if (i >= INSANE_DIST_KNOTS - 1)
		return insane_dist_normal_cdf[INSANE_DIST_KNOTS - 1];
	return insane_dist_normal_cdf[i] +
	       (u32)(((u64)(insane_dist_normal_cdf[i + 1] -
			    insane_dist_normal_cdf[i]) * f) >> 8);
}

/* z of a non-uniform distribution, u in place of u1. */
static s64 insane_dist_z(u32 dist, u32 u, u32 u2)
{
	switch (dist) {
	case INSANE_DISTRIBUTION_NORMAL:
		return insane_dist_at(insane_dist_normal, u);
	case INSANE_DISTRIBUTION_PARETO:
		return insane_dist_at(insane_dist_pareto, u);
	}
	return (insane_dist_at(insane_dist_normal, u) * 32768 +
		insane_dist_at(insane_dist_pareto, u2) * 56756) >> 16;
}

/* The smallest and largest z each distribution draws (the table ends). */
s64 insane_delay_z_min(u32 dist)
{
	if (dist == INSANE_DISTRIBUTION_UNIFORM)
		return -65536;
	return insane_dist_z(dist, 0, 0);
}

s64 insane_delay_z_max(u32 dist)
{
	if (dist == INSANE_DISTRIBUTION_UNIFORM)
		return 65536;
	/* The last knot, f = 0 past the end: read it directly. */
	switch (dist) {
	case INSANE_DISTRIBUTION_NORMAL:
		return insane_dist_normal[INSANE_DIST_KNOTS - 1];
	case INSANE_DISTRIBUTION_PARETO:
		return insane_dist_pareto[INSANE_DIST_KNOTS - 1];
	}
	return ((s64)insane_dist_normal[INSANE_DIST_KNOTS - 1] * 32768 +
		(s64)insane_dist_pareto[INSANE_DIST_KNOTS - 1] * 56756) >> 16;
}

/* INSANE_DELAY_G_NONE sign-extended: no correlated draw yet. */
#define INSANE_DELAY_G_UNSET	(-(s32)INSANE_DELAY_G_NONE)

/* The 24-bit g of a word, sign-extended. */
static s32 insane_delay_g(u64 word)
{
	return (s32)((u32)word << 8) >> 8;
}

/* The next latent g from @prev (or INSANE_DELAY_G_NONE) and u1. */
static s32 insane_delay_next_g(const struct insane_delay *d, s32 prev, u32 u1)
{
	s64 n = insane_dist_at(insane_dist_normal, u1), g;

	if (prev == INSANE_DELAY_G_UNSET)
		return n;
	g = ((s64)d->rq * prev + (s64)d->s * n) >> 16;
	/* Within the normal table's ends: a correlated normal draws no more. */
	return clamp_t(s64, g, -insane_dist_normal[INSANE_DIST_KNOTS - 1],
		       insane_dist_normal[INSANE_DIST_KNOTS - 1]);
}

/* The seeded x of the k-th draw. */
static u64 insane_delay_mix(u64 seed, u64 k)
{
	return insane_mix64((seed ^ INSANE_DELAY_SALT) +
			    (k + 1) * INSANE_GOLDEN_GAMMA);
}

/*
 * The delay of one packet under @d. Seeded and in the sequence, k and g
 * advance together in one atomic step of p->dnext; out of the sequence (a
 * multicast packet) this CPU's x and a copy of g are used; unseeded, this
 * CPU's x and this CPU's g.
 */
static u64 insane_delay_draw(struct insane_policy *p,
			     const struct insane_delay *d, bool in_seq)
{
	s64 old, new, z, v;
	s32 g = 0;
	u32 u;
	u64 x;

	if (!d->jitter_ns)
		return d->delay_ns;
	if (p->seeded && in_seq && !d->rq) {
		x = atomic64_add_return(1LL << 24, &p->dnext) - (1LL << 24);
		x = insane_delay_mix(p->seed, x >> 24);
	} else if (p->seeded && in_seq) {
		old = atomic64_read(&p->dnext);
		do {
			x = insane_delay_mix(p->seed, (u64)old >> 24);
			g = insane_delay_next_g(d, insane_delay_g(old),
						x >> 32);
			new = (s64)(((((u64)old >> 24) + 1) << 24) |
				    ((u32)g & 0xffffff));
		} while (!atomic64_try_cmpxchg(&p->dnext, &old, new));
	} else {
		x = insane_random_u64();
		if (d->rq && p->seeded) {
			g = insane_delay_next_g(d,
						insane_delay_g(atomic64_read(&p->dnext)),
						x >> 32);
		} else if (d->rq) {
			g = insane_delay_next_g(d, this_cpu_read(*p->dg),
						x >> 32);
			this_cpu_write(*p->dg, g);
		}
	}

	u = x >> 32;
	if (d->rq && d->dist == INSANE_DISTRIBUTION_NORMAL) {
		z = g;
	} else {
		if (d->rq)
			u = insane_dist_phi(g);
		if (d->dist == INSANE_DISTRIBUTION_UNIFORM)
			return d->delay_ns - d->jitter_ns +
			       mul_u64_u32_shr(2 * d->jitter_ns, u, 32);
		z = insane_dist_z(d->dist, u, (u32)x);
	}
	v = (s64)d->delay_ns + (((s64)d->jitter_ns * z) >> 16);
	return v < 0 ? 0 : v;
}

/* The queue */

/* Whether @a departs before @b: by departure, then by arrival. */
static bool insane_delay_before(const struct sk_buff *a,
				const struct sk_buff *b)
{
	const struct insane_delay_cb *ca = insane_delay_cb(a);
	const struct insane_delay_cb *cb = insane_delay_cb(b);

	if (ca->departure != cb->departure)
		return ca->departure < cb->departure;
	return (s32)(ca->arrival - cb->arrival) < 0;
}

static struct sk_buff *insane_delay_tree_first(struct insane_delay_cpu *c)
{
	struct rb_node *n = rb_first_cached(&c->tree);

	return n ? rb_to_skb(n) : NULL;
}

/* The packet that departs first, or NULL. */
static struct sk_buff *insane_delay_peek(struct insane_delay_cpu *c)
{
	struct sk_buff *t = insane_delay_tree_first(c), *l = c->head;

	if (t && (!l || insane_delay_before(t, l)))
		return t;
	return l;
}

static void insane_delay_unlink(struct insane_delay_cpu *c,
				struct sk_buff *skb)
{
	if (skb == c->head) {
		c->head = skb->next;
		if (!c->head)
			c->tail = NULL;
	} else {
		rb_erase_cached(&skb->rbnode, &c->tree);
	}
	c->len--;
}

/* Queues @skb, whose cb is set; true if it is the new head. */
static bool insane_delay_insert(struct insane_delay_cpu *c,
				struct sk_buff *skb)
{
	struct sk_buff *first = insane_delay_peek(c);
	struct rb_node **link, *parent = NULL;
	bool leftmost = true;

	insane_delay_cb(skb)->arrival = c->arrivals++;
	c->len++;
	if (!c->tail || !insane_delay_before(skb, c->tail)) {
		skb->next = NULL;
		if (c->tail)
			c->tail->next = skb;
		else
			c->head = skb;
		c->tail = skb;
	} else {
		link = &c->tree.rb_root.rb_node;
		while (*link) {
			parent = *link;
			if (insane_delay_before(skb, rb_to_skb(parent))) {
				link = &parent->rb_left;
			} else {
				link = &parent->rb_right;
				leftmost = false;
			}
		}
		rb_link_node(&skb->rbnode, parent, link);
		rb_insert_color_cached(&skb->rbnode, &c->tree, leftmost);
	}
	return !first || insane_delay_before(skb, first);
}

/* The departure of @c's head; @c holds a packet. */
static u64 insane_delay_head(struct insane_delay_cpu *c)
{
	return insane_delay_cb(insane_delay_peek(c))->departure;
}

/* Arms @c's timer for its head, on this CPU. */
static void insane_delay_arm(struct insane_delay_cpu *c, u64 at)
{
	c->armed = at;
	hrtimer_start(&c->timer, ns_to_ktime(at),
		      HRTIMER_MODE_ABS_PINNED_SOFT);
}

static unsigned int insane_delay_wire(const struct sk_buff *skb)
{
	return skb_is_gso(skb) ? max_t(u16, skb_shinfo(skb)->gso_segs, 1) : 1;
}

static __always_inline void insane_delay_gauge(struct insane_delay_cpu *c,
					       const struct sk_buff *skb,
					       bool add)
{
	unsigned long packets = insane_delay_wire(skb);
	unsigned long bytes = insane_frame_ip_len(skb);

	if (add) {
		WRITE_ONCE(c->packets, c->packets + packets);
		WRITE_ONCE(c->bytes, c->bytes + bytes);
	} else {
		WRITE_ONCE(c->packets, c->packets - packets);
		WRITE_ONCE(c->bytes, c->bytes - bytes);
	}
}

/* Queues what other CPUs handed over, in the order they did. */
static bool insane_delay_take(struct insane_delay_cpu *c)
{
	struct llist_node *n;
	struct sk_buff *skb, *next;
	bool head = false;

	if (llist_empty(&c->inbox))
		return false;
	n = llist_reverse_order(llist_del_all(&c->inbox));
	llist_for_each_entry_safe(skb, next, n, ll_node)
		head |= insane_delay_insert(c, skb);
	return head;
}

/*
 * Charges @skb at the rate ("Rate" in the uapi header): the end of its
 * serialization in *@end. False if it would wait longer than the buffer
 * before its first bit; then the clock does not move.
 */
static bool insane_delay_serialize(struct insane_delayq *q,
				   const struct insane_delay *d,
				   const struct sk_buff *skb, u64 now, u64 *end)
{
	u64 bytes = (u64)insane_frame_ip_len(skb) +
		    (u64)d->overhead * insane_delay_wire(skb);
	u64 t = div64_u64(bytes * 8 * NSEC_PER_SEC, d->rate);
	s64 f = atomic64_read(&q->clock);
	u64 start;

	do {
		start = max_t(u64, now, f);
		if (d->buffer_ns && start - now > d->buffer_ns)
			return false;
	} while (!atomic64_try_cmpxchg(&q->clock, &f, start + t));
	*end = start + t;
	return true;
}

/* The flow's bucket of @skb, or NULL when it keeps no order. */
static struct insane_delay_flow *insane_delay_bucket(struct insane_delayq *q,
						     struct sk_buff *skb)
{
	struct insane_delay_flow *flows = READ_ONCE(q->flows);

	if (!flows)
		return NULL;
	return &flows[skb_get_hash(skb) & (INSANE_DELAY_FLOWS - 1)];
}

/* Sends @skb on at its departure. */
static void insane_delay_depart(struct insane_delayq *q, struct sk_buff *skb)
{
	struct insane_dev *ins = q->ins;

	skb_mark_not_on_list(skb);
	skb->dev = ins->dev;
	if (q->dir == INSANE_DIRECTION_TX) {
		insane_xmit_depart(ins, skb);
	} else {
		/*
		 * The receive policy was turned off while it was held: no
		 * decision is made on insane0 any more, so it counts here
		 * as passed up, as the decision would have.
		 */
		if (unlikely(!rcu_access_pointer(ins->rx_policy))) {
			struct pcpu_sw_netstats *t = this_cpu_ptr(ins->dev->tstats);

			u64_stats_update_begin(&t->syncp);
			u64_stats_add(&t->rx_bytes, skb->len);
			u64_stats_add(&t->rx_packets, insane_delay_wire(skb));
			u64_stats_update_end(&t->syncp);
		}
		insane_rx_deliver(ins, skb);
	}
}

/*
 * Sends on what is due at @now, at most @budget packets, in departure
 * order; a packet whose flow's predecessor is still held on another CPU
 * waits INSANE_DELAY_WAIT_NS more.
 */
static void insane_delay_release(struct insane_delay_cpu *c, u64 now,
				 int budget)
{
	struct insane_delayq *q = c->q;
	struct insane_delay_flow *f;
	struct insane_delay_cb *cb;
	struct sk_buff *skb;
	u32 seq;

	while (budget-- > 0) {
		skb = insane_delay_peek(c);
		if (!skb)
			break;
		cb = insane_delay_cb(skb);
		if ((s64)(cb->departure - now) > 0)
			break;
		insane_delay_unlink(c, skb);
		f = cb->seq ? insane_delay_bucket(q, skb) : NULL;
		if (f && (u32)atomic_read(&f->rel) + 1 != cb->seq) {
			/* Its flow's predecessor is held on another CPU. */
			cb->departure = now + INSANE_DELAY_WAIT_NS;
			insane_delay_insert(c, skb);
			continue;
		}
		seq = cb->seq;
		insane_delay_gauge(c, skb, false);
		insane_delay_depart(q, skb);
		/*
		 * Only now may its successor leave, from any CPU (@skb and
		 * its cb are gone: the sequence number was read before).
		 */
		if (f)
			atomic_set(&f->rel, seq);
	}
}

/* How far past the head's departure the timer may run (see the top). */
static u64 insane_delay_slack(const struct insane_delay_cpu *c)
{
	return c->q->dir == INSANE_DIRECTION_TX &&
	       c->gap < INSANE_DELAY_DENSE_NS ? INSANE_DELAY_SLACK_NS : 0;
}

/**
 * insane_delay_hold - hold a packet for its delay
 * @ins: the device
 * @dir: the direction
 * @skb: the packet, which this function owns from now on
 * @p: the policy in force, whose draw it takes
 * @d: the delay stage of the action
 * @arrival: ktime_get_ns() when the device took the packet, before its
 *	checks and decision: its delay counts from then
 * @in_seq: whether it takes the next k of a seeded policy
 *
 * With BHs off (the transmit path) or in softirq context (the receive
 * hook), where this CPU's timer callback cannot run. A packet that finds
 * this CPU's queue holding the policy's limit, or that would wait at the
 * rate longer than the buffer, is dropped and counted in
 * [RX_]DROP_QUEUE_FULL. With a rate, its delay starts when its
 * serialization ends.
 */
void insane_delay_hold(struct insane_dev *ins, enum insane_direction dir,
		       struct sk_buff *skb, struct insane_policy *p,
		       const struct insane_delay *d, u64 arrival, bool in_seq)
{
	struct insane_delayq *q = &ins->delayq[dir];
	struct insane_delay_flow *f = NULL;
	struct insane_delay_cpu *c, *owner;
	struct insane_delay_cb *cb;
	int cpu, held_on;
	unsigned long flags;
	u64 now, dep;
	s64 last;
	u32 gap;

	lockdep_assert_in_softirq();
	cpu = smp_processor_id();
	c = this_cpu_ptr(q->cpu);
	if (unlikely(c->len >= p->limit))
		goto full;
	now = arrival;
	dep = now;
	if (d->rate && !insane_delay_serialize(q, d, skb, now, &dep))
		goto full;
	/*
	 * A received packet may still charge its sender's socket (a veth
	 * peer's): ip_rcv() would orphan it anyway; held, it must not pin
	 * the sender's memory.
	 */
	if (dir == INSANE_DIRECTION_RX)
		skb_orphan(skb);
	if (dir == INSANE_DIRECTION_TX) {
		gap = min_t(u64, now - c->last_in, INSANE_DELAY_GAP_MAX);
		c->gap = c->gap - (c->gap >> INSANE_DELAY_GAP_SHIFT) +
			 (gap >> INSANE_DELAY_GAP_SHIFT);
		c->last_in = now;
	}
	/* After its serialization, if it has a rate. */
	dep += insane_delay_draw(p, d, in_seq);
	cb = insane_delay_cb(skb);
	cb->seq = 0;
	if (!d->reorder)
		f = insane_delay_bucket(q, skb);
	if (f) {
		cb->seq = atomic_inc_return(&f->enq);
		last = atomic64_read(&f->last);
		do {
			if ((s64)((u64)last - dep) >= 0) {
				dep = last;
				break;
			}
		} while (!atomic64_try_cmpxchg(&f->last, &last, dep));
		/*
		 * Its predecessor is still held on another CPU (the sender
		 * moved): that CPU sends it on too, after the predecessor,
		 * so that nothing downstream (per-CPU backlogs) reorders
		 * them. A handover is a lockless push and a kick.
		 */
		held_on = READ_ONCE(f->cpu);
		if (cb->seq - 1 != (u32)atomic_read(&f->rel) && held_on != cpu &&
		    cpu_online(held_on)) {
			cb->departure = dep;
			insane_delay_gauge(c, skb, true);
			owner = per_cpu_ptr(q->cpu, held_on);
			if (llist_add(&skb->ll_node, &owner->inbox)) {
				atomic_inc(&q->kicks);
				if (smp_call_function_single_async(held_on,
								   &owner->kick))
					atomic_dec(&q->kicks);	/* one pending */
			}
			return;
		}
		WRITE_ONCE(f->cpu, cpu);
	}
	cb->departure = dep;
	insane_delay_gauge(c, skb, true);
	insane_delay_insert(c, skb);
	if (c->running) {
		/* Its callback runs below on this CPU: it re-arms. */
		return;
	}
	if (dir == INSANE_DIRECTION_TX &&
	    (s64)(insane_delay_head(c) - now) <= 0) {
		/* As netem's enqueue: what is due leaves now. */
		c->running = true;
		insane_delay_release(c, now, INSANE_DELAY_BATCH);
		c->running = false;
	}
	/*
	 * The timer runs at most the slack past the head's departure: an
	 * earlier expiry stays (it finds less due, and re-arms).
	 */
	if (c->len) {
		dep = insane_delay_head(c) + insane_delay_slack(c);
		/* A kick (an IPI on this CPU) must not come in between. */
		local_irq_save(flags);
		if (!c->armed || (s64)(dep - c->armed) < 0)
			insane_delay_arm(c, dep);
		local_irq_restore(flags);
	}
	return;

full:
	/* The CPU's queue holds the limit, or the buffer is full. */
	insane_dev_count_drops(ins, dir == INSANE_DIRECTION_TX ?
			       INSANE_DROP_QUEUE_FULL :
			       INSANE_RX_DROP_QUEUE_FULL,
			       insane_delay_wire(skb));
	kfree_skb_reason(skb, SKB_DROP_REASON_QDISC_DROP);
}

/* An IPI on the queue's CPU: the timer runs now, pinned there. */
static void insane_delay_kick(void *info)
{
	struct insane_delay_cpu *c = info;

	insane_delay_arm(c, ktime_get_ns());
	atomic_dec(&c->q->kicks);
}

static enum hrtimer_restart insane_delay_fire(struct hrtimer *timer)
{
	struct insane_delay_cpu *c =
		container_of(timer, struct insane_delay_cpu, timer);
	enum hrtimer_restart ret = HRTIMER_NORESTART;
	unsigned long flags;
	u64 at = 0;

	c->running = true;
	insane_delay_take(c);
	insane_delay_release(c, ktime_get_ns(), INSANE_DELAY_BATCH);
	c->running = false;
	if (insane_delay_peek(c))
		at = insane_delay_head(c) + insane_delay_slack(c);
	/*
	 * Restarted in place, unless a kick (an IPI on this CPU) started
	 * the timer meanwhile: with IRQs off, none can come in between.
	 */
	local_irq_save(flags);
	if (!hrtimer_is_queued(timer)) {
		c->armed = at;
		if (at) {
			hrtimer_set_expires(timer, ns_to_ktime(at));
			ret = HRTIMER_RESTART;
		}
	}
	local_irq_restore(flags);
	return ret;
}

/* Control */

/* Unseeded correlated draws: each CPU's g, none yet. */
s32 __percpu *insane_delay_dg_alloc(void)
{
	s32 __percpu *dg = alloc_percpu(s32);
	int cpu;

	if (!dg)
		return NULL;
	for_each_possible_cpu(cpu) {
		s32 *g = per_cpu_ptr(dg, cpu);

		*g = INSANE_DELAY_G_UNSET;
	}
	return dg;
}

struct insane_delay_flow *insane_delay_flows_alloc(void)
{
	return kvcalloc(INSANE_DELAY_FLOWS, sizeof(struct insane_delay_flow),
			GFP_KERNEL);
}

void insane_delay_flows_free(struct insane_delay_flow *flows)
{
	kvfree(flows);
}

/* ndo_init: both directions' queues, empty, their timers stopped. */
int insane_delay_init(struct insane_dev *ins)
{
	int dir, cpu;

	for (dir = 0; dir <= INSANE_DIRECTION_MAX; dir++) {
		struct insane_delayq *q = &ins->delayq[dir];

		q->ins = ins;
		q->dir = dir;
		atomic_set(&q->kicks, 0);
		atomic64_set(&q->clock, 0);
		q->cpu = alloc_percpu(struct insane_delay_cpu);
		if (!q->cpu)
			goto err;
		for_each_possible_cpu(cpu) {
			struct insane_delay_cpu *c = per_cpu_ptr(q->cpu, cpu);

			c->tree = RB_ROOT_CACHED;
			c->q = q;
			c->gap = INSANE_DELAY_GAP_MAX;
			hrtimer_init(&c->timer, CLOCK_MONOTONIC,
				     HRTIMER_MODE_ABS_PINNED_SOFT);
			c->timer.function = insane_delay_fire;
			init_llist_head(&c->inbox);
			INIT_CSD(&c->kick, insane_delay_kick, c);
		}
	}
	return 0;

err:
	while (dir--) {
		free_percpu(ins->delayq[dir].cpu);
		ins->delayq[dir].cpu = NULL;
	}
	return -ENOMEM;
}

/* Frees every packet of @c, counted as flushed. */
static void insane_delay_purge(struct insane_delayq *q,
			       struct insane_delay_cpu *c)
{
	enum insane_drop why = q->dir == INSANE_DIRECTION_TX ?
			       INSANE_DROP_FLUSHED : INSANE_RX_DROP_FLUSHED;
	struct sk_buff *skb;
	unsigned int packets;

	insane_delay_take(c);
	while ((skb = insane_delay_peek(c))) {
		insane_delay_unlink(c, skb);
		packets = insane_delay_wire(skb);
		insane_delay_gauge(c, skb, false);
		skb_mark_not_on_list(skb);
		insane_dev_count_drops(q->ins, why, packets);
		kfree_skb_reason(skb, SKB_DROP_REASON_DEV_READY);
	}
	c->armed = 0;
}

/**
 * insane_delay_flush - free every held packet
 * @ins: the device, going down (ndo_stop) or gone
 *
 * Nothing enqueues any more: the core has stopped transmit, and the
 * receive hook skips a device that is not running, each after a grace
 * period. Every CPU's timer is cancelled first (hrtimer_cancel() waits for
 * a running callback), then every queue purged under [RX_]DROP_FLUSHED
 * (the counts are this CPU's: a sum is all that is read). The flow
 * tables and the rate's clock start over, since the flushed packets never
 * depart.
 */
void insane_delay_flush(struct insane_dev *ins)
{
	int dir, cpu, i;

	for (dir = 0; dir <= INSANE_DIRECTION_MAX; dir++) {
		struct insane_delayq *q = &ins->delayq[dir];

		if (!q->cpu)
			continue;
		/* The IPIs first: each starts its timer again. */
		while (atomic_read(&q->kicks))
			cpu_relax();
		for_each_possible_cpu(cpu)
			hrtimer_cancel(&per_cpu_ptr(q->cpu, cpu)->timer);
		local_bh_disable();
		for_each_possible_cpu(cpu)
			insane_delay_purge(q, per_cpu_ptr(q->cpu, cpu));
		local_bh_enable();
		/* The flushed packets no longer occupy the wire. */
		atomic64_set(&q->clock, 0);
		if (!q->flows)
			continue;
		for (i = 0; i < INSANE_DELAY_FLOWS; i++) {
			/* No flushed departure holds back what comes next. */
			atomic64_set(&q->flows[i].last, 0);
			atomic_set(&q->flows[i].enq, 0);
			atomic_set(&q->flows[i].rel, 0);
		}
	}
}

/* ndo_uninit and destruction: nothing held, nothing left. */
void insane_delay_free(struct insane_dev *ins)
{
	int dir;

	insane_delay_flush(ins);
	for (dir = 0; dir <= INSANE_DIRECTION_MAX; dir++) {
		struct insane_delayq *q = &ins->delayq[dir];

		free_percpu(q->cpu);
		q->cpu = NULL;
		insane_delay_flows_free(q->flows);
		q->flows = NULL;
	}
}

/**
 * insane_delay_adopt - give a direction the flow table its policy needs
 * @ins: the device
 * @dir: the direction @p is set for
 * @p: the new policy, not yet published
 *
 * The table came with @p (insane_policy_build(), so that a failed
 * allocation refuses the request before anything changes); the device
 * keeps the first it gets, for its life, and held packets rely on it. A
 * spare left over is freed with @p. Caller holds RTNL.
 */
void insane_delay_adopt(struct insane_dev *ins, enum insane_direction dir,
			struct insane_policy *p)
{
	struct insane_delayq *q = &ins->delayq[dir];

	ASSERT_RTNL();
	if (!p || !p->flows_spare || q->flows)
		return;
	WRITE_ONCE(q->flows, p->flows_spare);
	p->flows_spare = NULL;
}

/* The gauges, transmit then receive: packets then bytes. */
void insane_delay_held(struct insane_dev *ins, u64 *held)
{
	int dir, cpu;

	for (dir = 0; dir <= INSANE_DIRECTION_MAX; dir++) {
		struct insane_delayq *q = &ins->delayq[dir];

		held[2 * dir] = 0;
		held[2 * dir + 1] = 0;
		if (!q->cpu)
			continue;
		for_each_possible_cpu(cpu) {
			struct insane_delay_cpu *c = per_cpu_ptr(q->cpu, cpu);

			held[2 * dir] += READ_ONCE(c->packets);
			held[2 * dir + 1] += READ_ONCE(c->bytes);
		}
	}
}
