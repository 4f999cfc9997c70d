// SPDX-License-Identifier: GPL-2.0
/*
 * The per-packet decisions of the modes that policy.h does not decide
 * inline: time and schedule (which step is in force), and the Gilbert chain
 * of burst and gilbert modes ("Gilbert decisions" in the uapi header). No
 * allocation, lock or shared write, apart from a seeded policy's word.
 */

#include "policy.h"

DEFINE_PER_CPU(u64, insane_rng);

/* Starts each CPU's unseeded sequence at its own random point. */
void insane_policy_init(void)
{
	int cpu;

	for_each_possible_cpu(cpu)
		per_cpu(insane_rng, cpu) = get_random_u64();
}

/**
 * insane_policy_step_at - the step of a time or schedule policy in force
 * @p: the policy, with at least one step
 * @now: ktime_get_ns()
 * @left: where to put the time the step has left, U64_MAX when it holds
 *	for good (the last step of a schedule run once, after its end)
 *
 * Return: the index of the step.
 */
u32 insane_policy_step_at(const struct insane_policy *p, u64 now, u64 *left)
{
	u64 t = now - p->epoch_ns;
	u32 lo = 0, hi = p->nsteps - 1, mid;

	if (t >= p->total_ns) {
		if (p->once) {
			*left = U64_MAX;
			return hi;
		}
		div64_u64_rem(t, p->total_ns, &t);
	}
	/*
	 * The first step that ends after t. Steps of zero length (time
	 * mode's) end where the one before does, and are never found.
	 */
	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (p->steps[mid].end_ns > t)
			hi = mid;
		else
			lo = mid + 1;
	}
	*left = p->steps[lo].end_ns - t;
	return lo;
}

/*
 * x of a packet that draws: the next k under the seed if it is in the
 * sequence, else this CPU's.
 */
static u64 insane_policy_draw(struct insane_policy *p, bool in_seq)
{
	if (in_seq)
		return insane_policy_mix(p->seed, insane_policy_next_k(p));
	return insane_random_u64();
}

/*
 * Moves the chain by u = x >> 32, then decides by w = x & 0xffffffff in
 * the new state. Seeded, k and the state advance together in one atomic
 * step of the word (k << 1) | s; unseeded, the state is this CPU's. A
 * packet of a seeded policy outside the sequence (@in_seq false) draws
 * from this CPU and moves a copy of the state: the word stays as it is.
 */
static bool insane_policy_chain(struct insane_policy *p,
				const struct insane_action *a, bool in_seq)
{
	unsigned int s;
	s64 old, new;
	u64 x, k;

	if (unlikely(p->seeded && !in_seq)) {
		s = atomic64_read(&p->next) & 1;
		x = insane_random_u64();
		s ^= (x >> 32) < a->thr_move[s];
		return (u32)x >= a->thr_loss[s];
	}
	if (!p->seeded) {
		s = this_cpu_read(*p->state) & 1;
		x = insane_random_u64();
		s ^= (x >> 32) < a->thr_move[s];
		this_cpu_write(*p->state, s);
		return (u32)x >= a->thr_loss[s];
	}

	old = atomic64_read(&p->next);
	do {
		k = (u64)old >> 1;
		s = old & 1;
		x = insane_policy_mix(p->seed, k);
		s ^= (x >> 32) < a->thr_move[s];
		new = (s64)(((k + 1) << 1) | s);
	} while (!atomic64_try_cmpxchg(&p->next, &old, new));
	return (u32)x >= a->thr_loss[s];
}

/*
 * Every mode but pass, percent and drop, which policy.h decides. @in_seq:
 * a seeded policy's packet takes the next k (policy.h). Returns the action
 * (the step's) that relays the packet, or NULL if it is dropped.
 */
const struct insane_action *insane_policy_decide(struct insane_policy *p,
						 bool in_seq)
{
	const struct insane_action *a = &p->act;
	u64 left;
	bool relay = false;

	if (p->nsteps)
		a = &p->steps[insane_policy_step_at(p, ktime_get_ns(),
						    &left)].act;
	switch (a->mode) {
	case INSANE_MODE_PASS:
		return a;
	case INSANE_MODE_PERCENT:
		relay = (insane_policy_draw(p, in_seq) >> 32) < a->threshold;
		break;
	case INSANE_MODE_BURST:
	case INSANE_MODE_GILBERT:
		relay = insane_policy_chain(p, a, in_seq);
		break;
	}
	return relay ? a : NULL;
}
