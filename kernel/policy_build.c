// SPDX-License-Identifier: GPL-2.0
/*
 * Drop policies: built from attributes that policy.c has checked, freed,
 * and reported in replies.
 */

#include "delay.h"
#include "policy.h"

#include <linux/limits.h>
#include <linux/math64.h>
#include <linux/slab.h>

/*
 * thr(num / den) = ceil(num * 2^32 / den) for 0 < den < 2^63, exactly:
 * 2^32 from num >= den on, else a long division, one quotient bit at a
 * time (rem < den, so rem << 1 cannot overflow).
 */
static u64 insane_thr(u64 num, u64 den)
{
	u64 q = 0, rem = num;
	int i;

	if (num >= den)
		return 1ULL << 32;
	for (i = 0; i < 32; i++) {
		rem <<= 1;
		q <<= 1;
		if (rem >= den) {
			rem -= den;
			q |= 1;
		}
	}
	return q + (rem != 0);
}

static u32 insane_get_u32_or(const struct nlattr *attr, u32 dflt)
{
	return attr ? nla_get_u32(attr) : dflt;
}

/*
 * The delay stage of a checked policy or step, and what its draws derive
 * once: the correlation in Q16 and s = floor(sqrt(2^32 - rq^2)).
 */
static void insane_delay_init_attrs(struct insane_delay *d,
				    struct nlattr *const *tb)
{
	if (tb[INSANE_POLICY_A_RATE]) {
		d->rate = nla_get_u64(tb[INSANE_POLICY_A_RATE]);
		if (tb[INSANE_POLICY_A_BUFFER_NS])
			d->buffer_ns = nla_get_u64(tb[INSANE_POLICY_A_BUFFER_NS]);
		if (tb[INSANE_POLICY_A_OVERHEAD]) {
			d->has_overhead = true;
			d->overhead = nla_get_u32(tb[INSANE_POLICY_A_OVERHEAD]);
		}
	}
	if (!tb[INSANE_POLICY_A_DELAY_NS])
		return;
	d->delay_ns = nla_get_u64(tb[INSANE_POLICY_A_DELAY_NS]);
	d->reorder = nla_get_flag(tb[INSANE_POLICY_A_REORDER]);
	if (!tb[INSANE_POLICY_A_JITTER_NS])
		return;
	d->has_jitter = true;
	d->jitter_ns = nla_get_u64(tb[INSANE_POLICY_A_JITTER_NS]);
	if (tb[INSANE_POLICY_A_DISTRIBUTION]) {
		d->has_dist = true;
		d->dist = nla_get_u32(tb[INSANE_POLICY_A_DISTRIBUTION]);
	}
	if (tb[INSANE_POLICY_A_CORRELATION]) {
		d->has_correlation = true;
		d->correlation = nla_get_u32(tb[INSANE_POLICY_A_CORRELATION]);
		d->rq = div_u64((u64)d->correlation << 16, INSANE_PERCENT_MAX);
		d->s = int_sqrt64((1ULL << 32) - (u64)d->rq * d->rq);
	}
}

/* Sets up @a from the checked attributes of a policy or a step. */
static void insane_action_init(struct insane_action *a, u32 mode,
			       struct nlattr *const *tb)
{
	a->mode = mode;
	insane_delay_init_attrs(&a->delay, tb);
	a->duplicate = insane_get_u32_or(tb[INSANE_POLICY_A_DUPLICATE], 0);
	a->thr_dup = insane_thr(a->duplicate, INSANE_PERCENT_MAX);
	a->corrupt = insane_get_u32_or(tb[INSANE_POLICY_A_CORRUPT], 0);
	a->thr_corrupt = insane_thr(a->corrupt, INSANE_PERCENT_MAX);
	a->corrupt_header = nla_get_flag(tb[INSANE_POLICY_A_CORRUPT_HEADER]);
	switch (mode) {
	case INSANE_MODE_PERCENT:
		a->percent = nla_get_u32(tb[INSANE_POLICY_A_PERCENT]);
		a->threshold = insane_thr(a->percent, INSANE_PERCENT_MAX);
		break;
	case INSANE_MODE_BURST:
		a->percent = nla_get_u32(tb[INSANE_POLICY_A_PERCENT]);
		a->burst = nla_get_u32(tb[INSANE_POLICY_A_BURST]);
		a->thr_move[INSANE_CHAIN_GOOD] =
			insane_thr((u64)(INSANE_PERCENT_MAX - a->percent) *
				   INSANE_BURST_SCALE,
				   (u64)a->percent * a->burst);
		a->thr_move[INSANE_CHAIN_BAD] =
			insane_thr(INSANE_BURST_SCALE, a->burst);
		a->thr_loss[INSANE_CHAIN_GOOD] = 0;
		a->thr_loss[INSANE_CHAIN_BAD] = 1ULL << 32;
		break;
	case INSANE_MODE_GILBERT:
		a->ge_p = nla_get_u32(tb[INSANE_POLICY_A_GE_P]);
		a->ge_r = nla_get_u32(tb[INSANE_POLICY_A_GE_R]);
		a->ge_loss_bad = insane_get_u32_or(tb[INSANE_POLICY_A_GE_LOSS_BAD],
						   INSANE_PERCENT_MAX);
		a->ge_loss_good =
			insane_get_u32_or(tb[INSANE_POLICY_A_GE_LOSS_GOOD], 0);
		a->thr_move[INSANE_CHAIN_GOOD] =
			insane_thr(a->ge_p, INSANE_PERCENT_MAX);
		a->thr_move[INSANE_CHAIN_BAD] =
			insane_thr(a->ge_r, INSANE_PERCENT_MAX);
		a->thr_loss[INSANE_CHAIN_GOOD] =
			insane_thr(a->ge_loss_good, INSANE_PERCENT_MAX);
		a->thr_loss[INSANE_CHAIN_BAD] =
			insane_thr(a->ge_loss_bad, INSANE_PERCENT_MAX);
		break;
	}
}

/*
 * Notes in @p what an action needs: a delay stage (one keeping order),
 * duplication or corruption draws, GSO packets cut into wire packets.
 */
static void insane_policy_note_action(struct insane_policy *p,
				      const struct insane_action *a)
{
	const struct insane_delay *d = &a->delay;

	if (insane_action_extras(a))
		p->extras = true;
	if (d->rate || insane_action_extras(a))
		p->cuts = true;
	if (!insane_delay_on(d))
		return;
	p->delays = true;
	if (!d->reorder)
		p->flows = true;
}

static bool insane_action_chain(const struct insane_action *a)
{
	return a->mode == INSANE_MODE_BURST || a->mode == INSANE_MODE_GILBERT;
}

/* Fills the steps of a checked schedule; false if a step went missing. */
static bool insane_policy_build_steps(struct insane_policy *p,
				      const struct nlattr *steps)
{
	struct nlattr *stb[INSANE_POLICY_A_MAX + 1];
	struct nlattr *step;
	u64 end = 0;
	u32 n = 0;
	int rem;

	nla_for_each_nested(step, steps, rem) {
		if (n == p->nsteps ||
		    insane_policy_parse_step(step, stb, NULL))
			return false;
		end += nla_get_u64(stb[INSANE_POLICY_A_DURATION_NS]);
		p->steps[n].end_ns = end;
		insane_action_init(&p->steps[n].act,
				   nla_get_u32(stb[INSANE_POLICY_A_MODE]), stb);
		n++;
	}
	p->total_ns = end;
	return n == p->nsteps;
}

/**
 * insane_policy_build - allocate a policy from its attributes
 * @tb: attributes indexed by enum insane_policy_attr, or NULL
 * @dir: the transmit policy of a device, or its receive policy
 * @extack: where to say what is wrong
 *
 * With no attribute at all the policy is pass. The steps of time and
 * schedule modes and the packet index of a seeded policy start now. An
 * unseeded policy with a burst or gilbert action gets its per-CPU chain
 * states here, all good.
 *
 * Return: the policy, or an ERR_PTR.
 */
struct insane_policy *insane_policy_build(struct nlattr *const *tb,
					  enum insane_direction dir,
					  struct netlink_ext_ack *extack)
{
	struct insane_policy *p;
	u32 mode = INSANE_MODE_PASS, nsteps = 0, i;
	bool chain, corr;
	int err;

	if (insane_policy_present(tb)) {
		err = insane_policy_check_count(tb, dir, extack);
		if (err < 0)
			return ERR_PTR(err);
		nsteps = err;
		mode = nla_get_u32(tb[INSANE_POLICY_A_MODE]);
	}

	p = kzalloc(struct_size(p, steps, nsteps), GFP_KERNEL);
	if (!p)
		return ERR_PTR(-ENOMEM);
	p->mode = mode;
	p->nsteps = nsteps;
	if (tb && tb[INSANE_POLICY_A_SEED]) {
		p->seeded = true;
		p->seed = nla_get_u64(tb[INSANE_POLICY_A_SEED]);
	}
	if (tb) {
		p->carrier = nla_get_flag(tb[INSANE_POLICY_A_CARRIER]);
		p->events = nla_get_flag(tb[INSANE_POLICY_A_EVENTS]);
	}

	p->limit = INSANE_DELAY_LIMIT_DEFAULT;
	if (tb && tb[INSANE_POLICY_A_LIMIT]) {
		p->has_limit = true;
		p->limit = nla_get_u32(tb[INSANE_POLICY_A_LIMIT]);
	}

	switch (mode) {
	case INSANE_MODE_PASS:
	case INSANE_MODE_DROP:
	case INSANE_MODE_PERCENT:
	case INSANE_MODE_BURST:
	case INSANE_MODE_GILBERT:
		if (tb)
			insane_action_init(&p->act, mode, tb);
		break;
	case INSANE_MODE_TIME:
		/* The policy's delay is both windows'. */
		insane_action_init(&p->act, mode, tb);
		/* Its delay, rate, duplicate and corrupt: both windows'. */
		p->steps[0].act = p->act;
		p->steps[0].act.mode = INSANE_MODE_PASS;
		p->steps[0].end_ns = nla_get_u64(tb[INSANE_POLICY_A_ON_NS]);
		p->steps[1].act = p->act;
		p->steps[1].act.mode = INSANE_MODE_DROP;
		p->total_ns = p->steps[0].end_ns +
			      nla_get_u64(tb[INSANE_POLICY_A_OFF_NS]);
		p->steps[1].end_ns = p->total_ns;
		break;
	case INSANE_MODE_SCHEDULE:
		p->once = nla_get_flag(tb[INSANE_POLICY_A_ONCE]);
		if (WARN_ON_ONCE(!insane_policy_build_steps(p,
							    tb[INSANE_POLICY_A_STEPS]))) {
			kfree(p);
			return ERR_PTR(-EINVAL);
		}
		break;
	}

	chain = insane_action_chain(&p->act);
	corr = p->act.delay.rq;
	insane_policy_note_action(p, &p->act);
	for (i = 0; i < p->nsteps; i++) {
		chain |= insane_action_chain(&p->steps[i].act);
		corr |= p->steps[i].act.delay.rq;
		insane_policy_note_action(p, &p->steps[i].act);
	}
	if (chain && !p->seeded) {
		/* Zeroed: every CPU's chain starts good. */
		p->state = alloc_percpu(u8);
		if (!p->state)
			goto err_nomem;
	}
	if (corr && !p->seeded) {
		p->dg = insane_delay_dg_alloc();
		if (!p->dg)
			goto err_nomem;
	}
	if (p->flows) {
		p->flows_spare = insane_delay_flows_alloc();
		if (!p->flows_spare)
			goto err_nomem;
	}

	atomic64_set(&p->next, 0);
	atomic64_set(&p->dnext, INSANE_DELAY_G_NONE);
	atomic64_set(&p->xnext, 0);
	p->epoch_ns = ktime_get_ns();
	return p;

err_nomem:
	insane_policy_free(p);
	return ERR_PTR(-ENOMEM);
}

/* Frees @p (which may be NULL) now: no reader can see it. */
void insane_policy_free(struct insane_policy *p)
{
	if (!p)
		return;
	free_percpu(p->state);
	free_percpu(p->dg);
	insane_delay_flows_free(p->flows_spare);
	kfree(p);
}

/* An RCU callback, in softirq context: free_percpu() allows it. */
static void insane_policy_free_cb(struct rcu_head *head)
{
	insane_policy_free(container_of(head, struct insane_policy, rcu));
}

/*
 * Frees @p (which may be NULL) after a grace period. A policy with per-CPU
 * state needs a callback of the module's own, which insane_exit() waits
 * for with rcu_barrier().
 */
void insane_policy_free_rcu(struct insane_policy *p)
{
	if (!p)
		return;
	if (p->state || p->dg || p->flows_spare)
		call_rcu(&p->rcu, insane_policy_free_cb);
	else
		kfree_rcu(p, rcu);
}

/* Rate, duplicate and corrupt, as set. */
static int insane_extras_fill(struct sk_buff *skb,
			      const struct insane_action *a)
{
	const struct insane_delay *d = &a->delay;

	if ((d->rate &&
	     nla_put_u64_64bit(skb, INSANE_POLICY_A_RATE, d->rate,
			       INSANE_POLICY_A_PAD)) ||
	    (d->has_overhead &&
	     nla_put_u32(skb, INSANE_POLICY_A_OVERHEAD, d->overhead)) ||
	    (d->buffer_ns &&
	     nla_put_u64_64bit(skb, INSANE_POLICY_A_BUFFER_NS, d->buffer_ns,
			       INSANE_POLICY_A_PAD)) ||
	    (a->duplicate &&
	     nla_put_u32(skb, INSANE_POLICY_A_DUPLICATE, a->duplicate)) ||
	    (a->corrupt &&
	     nla_put_u32(skb, INSANE_POLICY_A_CORRUPT, a->corrupt)) ||
	    (a->corrupt_header &&
	     nla_put_flag(skb, INSANE_POLICY_A_CORRUPT_HEADER)))
		return -EMSGSIZE;
	return 0;
}

/* The delay stage's attributes, as set. */
static int insane_delay_fill(struct sk_buff *skb, const struct insane_delay *d)
{
	if (!d->delay_ns)
		return 0;
	if (nla_put_u64_64bit(skb, INSANE_POLICY_A_DELAY_NS, d->delay_ns,
			      INSANE_POLICY_A_PAD) ||
	    (d->has_jitter &&
	     nla_put_u64_64bit(skb, INSANE_POLICY_A_JITTER_NS, d->jitter_ns,
			       INSANE_POLICY_A_PAD)) ||
	    (d->has_correlation &&
	     nla_put_u32(skb, INSANE_POLICY_A_CORRELATION, d->correlation)) ||
	    (d->has_dist &&
	     nla_put_u32(skb, INSANE_POLICY_A_DISTRIBUTION, d->dist)) ||
	    (d->reorder && nla_put_flag(skb, INSANE_POLICY_A_REORDER)))
		return -EMSGSIZE;
	return 0;
}

static int insane_action_fill(struct sk_buff *skb,
			      const struct insane_action *a)
{
	if (insane_delay_fill(skb, &a->delay) || insane_extras_fill(skb, a))
		return -EMSGSIZE;
	switch (a->mode) {
	case INSANE_MODE_PERCENT:
		return nla_put_u32(skb, INSANE_POLICY_A_PERCENT, a->percent);
	case INSANE_MODE_BURST:
		if (nla_put_u32(skb, INSANE_POLICY_A_PERCENT, a->percent) ||
		    nla_put_u32(skb, INSANE_POLICY_A_BURST, a->burst))
			return -EMSGSIZE;
		break;
	case INSANE_MODE_GILBERT:
		if (nla_put_u32(skb, INSANE_POLICY_A_GE_P, a->ge_p) ||
		    nla_put_u32(skb, INSANE_POLICY_A_GE_R, a->ge_r) ||
		    nla_put_u32(skb, INSANE_POLICY_A_GE_LOSS_BAD,
				a->ge_loss_bad) ||
		    nla_put_u32(skb, INSANE_POLICY_A_GE_LOSS_GOOD,
				a->ge_loss_good))
			return -EMSGSIZE;
		break;
	}
	return 0;
}

static int insane_policy_fill_steps(struct sk_buff *skb,
				    const struct insane_policy *p)
{
	struct nlattr *steps, *step;
	u64 start = 0;
	u32 i;

	steps = nla_nest_start(skb, INSANE_POLICY_A_STEPS);
	if (!steps)
		return -EMSGSIZE;
	for (i = 0; i < p->nsteps; i++) {
		step = nla_nest_start(skb, INSANE_STEPS_A_STEP);
		if (!step ||
		    nla_put_u32(skb, INSANE_POLICY_A_MODE, p->steps[i].act.mode) ||
		    insane_action_fill(skb, &p->steps[i].act) ||
		    nla_put_u64_64bit(skb, INSANE_POLICY_A_DURATION_NS,
				      p->steps[i].end_ns - start,
				      INSANE_POLICY_A_PAD))
			return -EMSGSIZE;
		nla_nest_end(skb, step);
		start = p->steps[i].end_ns;
	}
	nla_nest_end(skb, steps);
	return 0;
}

/*
 * Puts the policy's attributes, not nested, into @skb: the policy as set,
 * and for time and schedule modes the step in force now. With @steps
 * false, a schedule's steps are left out and counted in
 * INSANE_POLICY_A_STEPS_OMITTED instead. On failure the caller cancels
 * what was put.
 */
static int __insane_policy_fill(struct sk_buff *skb,
				const struct insane_policy *p, bool steps)
{
	u32 index;
	u64 left;

	if (nla_put_u32(skb, INSANE_POLICY_A_MODE, p->mode))
		return -EMSGSIZE;
	switch (p->mode) {
	case INSANE_MODE_PASS:
	case INSANE_MODE_DROP:
	case INSANE_MODE_PERCENT:
	case INSANE_MODE_BURST:
	case INSANE_MODE_GILBERT:
		if (insane_action_fill(skb, &p->act))
			return -EMSGSIZE;
		break;
	case INSANE_MODE_TIME:
		if (nla_put_u64_64bit(skb, INSANE_POLICY_A_ON_NS,
				      p->steps[0].end_ns, INSANE_POLICY_A_PAD) ||
		    nla_put_u64_64bit(skb, INSANE_POLICY_A_OFF_NS,
				      p->total_ns - p->steps[0].end_ns,
				      INSANE_POLICY_A_PAD) ||
		    insane_delay_fill(skb, &p->act.delay) ||
		    insane_extras_fill(skb, &p->act))
			return -EMSGSIZE;
		break;
	case INSANE_MODE_SCHEDULE:
		if ((steps ? insane_policy_fill_steps(skb, p) :
		     nla_put_u32(skb, INSANE_POLICY_A_STEPS_OMITTED,
				 p->nsteps)) ||
		    (p->once && nla_put_flag(skb, INSANE_POLICY_A_ONCE)))
			return -EMSGSIZE;
		break;
	}
	if (p->seeded &&
	    nla_put_u64_64bit(skb, INSANE_POLICY_A_SEED, p->seed,
			      INSANE_POLICY_A_PAD))
		return -EMSGSIZE;
	if (p->has_limit && nla_put_u32(skb, INSANE_POLICY_A_LIMIT, p->limit))
		return -EMSGSIZE;
	if ((p->carrier && nla_put_flag(skb, INSANE_POLICY_A_CARRIER)) ||
	    (p->events && nla_put_flag(skb, INSANE_POLICY_A_EVENTS)))
		return -EMSGSIZE;
	if (!p->nsteps)
		return 0;

	index = insane_policy_step_at(p, ktime_get_ns(), &left);
	if (nla_put_u32(skb, INSANE_POLICY_A_STEP_INDEX, index) ||
	    (left != U64_MAX &&
	     nla_put_u64_64bit(skb, INSANE_POLICY_A_STEP_LEFT_NS, left,
			       INSANE_POLICY_A_PAD)))
		return -EMSGSIZE;
	return 0;
}

int insane_policy_fill(struct sk_buff *skb, const struct insane_policy *p)
{
	return __insane_policy_fill(skb, p, true);
}

/* The policy without a schedule's steps: see "Long policies" in the uapi. */
int insane_policy_fill_compact(struct sk_buff *skb,
			       const struct insane_policy *p)
{
	return __insane_policy_fill(skb, p, false);
}

/*
 * The most that insane_policy_fill() puts: every attribute of every mode
 * at once (the modes are exclusive, so this is more than any one policy
 * needs), with INSANE_SCHEDULE_STEPS_MAX steps of the largest kind.
 */
size_t insane_policy_nlmsg_size(void)
{
	/*
	 * DELAY_NS, JITTER_NS, CORRELATION, DISTRIBUTION, REORDER; RATE,
	 * BUFFER_NS, OVERHEAD, DUPLICATE, CORRUPT, CORRUPT_HEADER
	 */
	size_t delay = nla_total_size_64bit(sizeof(u64)) * 2 +
		       nla_total_size(sizeof(u32)) * 2 +
		       nla_total_size(0) +
		       nla_total_size_64bit(sizeof(u64)) * 2 +
		       nla_total_size(sizeof(u32)) * 3 +
		       nla_total_size(0);
	size_t step = nla_total_size(0) +			/* STEP */
		      nla_total_size(sizeof(u32)) +		/* MODE */
		      nla_total_size(sizeof(u32)) * 4 +		/* GE_* */
		      nla_total_size_64bit(sizeof(u64)) +	/* DURATION */
		      delay;

	return nla_total_size(sizeof(u32)) +		/* MODE */
	       nla_total_size(sizeof(u32)) * 2 +	/* PERCENT, BURST */
	       nla_total_size(sizeof(u32)) * 4 +	/* GE_* */
	       nla_total_size_64bit(sizeof(u64)) * 3 +	/* SEED, ON, OFF */
	       nla_total_size(0) +			/* STEPS */
	       step * INSANE_SCHEDULE_STEPS_MAX +
	       nla_total_size(0) +			/* ONCE */
	       nla_total_size(0) * 2 +			/* CARRIER, EVENTS */
	       nla_total_size(sizeof(u32)) +		/* STEP_INDEX */
	       nla_total_size_64bit(sizeof(u64)) +	/* STEP_LEFT_NS */
	       delay +
	       nla_total_size(sizeof(u32));		/* LIMIT */
}
