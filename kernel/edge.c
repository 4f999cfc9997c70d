// SPDX-License-Identifier: GPL-2.0
/*
 * The edges of time and schedule policies with INSANE_POLICY_A_CARRIER or
 * INSANE_POLICY_A_EVENTS. While such a policy is a device's and the device
 * is up, a timer of that direction runs: an hrtimer on CLOCK_MONOTONIC
 * (the clock of the policy's epoch), absolute, expiring in softirq context
 * (HRTIMER_MODE_ABS_SOFT), armed for the nominal time of the next edge. At
 * each expiry it finds the latest edge that is due, flaps the carrier if
 * the policy says so, has the event sent if the policy says so, and arms
 * itself for the edge after that. Nothing of this is on the per-packet
 * path, which decides by insane_policy_step_at() as before.
 *
 * Edges, numbered n = 1, 2, ... from the epoch E, for a policy of m steps
 * whose cumulative ends are end[0] < ... < end[m - 1] = T (time mode is the
 * steps ON, OFF): edge n is where the (n mod m)-th step begins, the
 * beginning of step r + 1 of cycle q, where q = (n - 1) / m and
 * r = (n - 1) mod m, at E + q * T + end[r]. At an elapsed time t, the
 * latest edge is q * m + j, where q = t / T and j is the step in force at
 * t mod T (the number of steps of the cycle that have ended). A schedule
 * run once has m - 1 edges, the last where its last step begins.
 */

#include "device.h"
#include "edge.h"
#include "policy.h"

#include <linux/limits.h>
#include <linux/math64.h>
#include <linux/overflow.h>
#include <linux/rcupdate.h>
#include <linux/rtnetlink.h>

/* NULL until the generic netlink family is registered, and from its end. */
static insane_edge_fn insane_edge_notify_hook;

/**
 * insane_edge_set_notify_fn - hand in the function that sends edge events
 * @fn: the function, or NULL to stop sending
 *
 * After insane_edge_set_notify_fn(NULL) returns, no timer is still inside
 * the old function: the family behind it can go.
 */
void insane_edge_set_notify_fn(insane_edge_fn fn)
{
	WRITE_ONCE(insane_edge_notify_hook, fn);
	if (!fn)
		synchronize_rcu();
}

/*
 * Sets the carrier from the lower's (none: on) and the flap, once: one
 * netif_carrier_on() or _off(), which do nothing if it already is so, never
 * a pair. Caller holds carrier_lock.
 */
static bool insane_edge_apply_carrier(struct insane_dev *ins,
				      const struct net_device *lower)
{
	bool on = (!lower || netif_carrier_ok(lower)) && !ins->flap_off;

	if (on)
		netif_carrier_on(ins->dev);
	else
		netif_carrier_off(ins->dev);
	return on;
}

/**
 * insane_edge_sync_carrier - follow the lower's state
 * @ins: the device
 *
 * What netif_stacked_transfer_operstate() does, with the carrier flaps:
 * while attached, dormant and testing as the lower's are, and carrier while
 * the lower has it and no flap holds it off. A detached device keeps its
 * carrier (but for a flap) and goes dormant: its operational state leaves
 * UP, so ip link shows NO-CARRIER and routing daemons see it down, but its
 * noqueue qdisc stays, so what is routed to it still reaches insane_xmit()
 * and is counted as INSANE_DROP_NO_LOWER. Without carrier the core would
 * swap in the noop qdisc, which discards packets uncounted. Caller holds
 * RTNL.
 */
void insane_edge_sync_carrier(struct insane_dev *ins)
{
	struct net_device *lower = rtnl_dereference(ins->lower);
	struct net_device *dev = ins->dev;

	ASSERT_RTNL();
	if (!lower || lower->operstate == IF_OPER_DORMANT)
		netif_dormant_on(dev);
	else
		netif_dormant_off(dev);
	if (lower && lower->operstate == IF_OPER_TESTING)
		netif_testing_on(dev);
	else
		netif_testing_off(dev);
	spin_lock_bh(&ins->carrier_lock);
	insane_edge_apply_carrier(ins, lower);
	spin_unlock_bh(&ins->carrier_lock);
}

/*
 * Holds the carrier off for a flap (@off: a DOWN step), or lets it go.
 * From the transmit edge timer (softirq) and under RTNL. Returns whether
 * the device has carrier now.
 */
static bool insane_edge_set_flap(struct insane_dev *ins, bool off)
{
	bool on;

	spin_lock_bh(&ins->carrier_lock);
	ins->flap_off = off;
	rcu_read_lock();
	on = insane_edge_apply_carrier(ins, rcu_dereference(ins->lower));
	rcu_read_unlock();
	spin_unlock_bh(&ins->carrier_lock);
	return on;
}

static bool insane_edge_armed(const struct insane_policy *p)
{
	return p && p->nsteps && (p->carrier || p->events);
}

/* The number of the latest edge at @now (0: none yet). */
static u64 insane_edge_latest(const struct insane_policy *p, u64 now)
{
	u64 left, q;
	u32 j;

	if (now < p->epoch_ns)
		return 0;
	j = insane_policy_step_at(p, now, &left);
	/* A schedule run once, past its end: its last edge. */
	if (left == U64_MAX)
		return p->nsteps - 1;
	q = div64_u64(now - p->epoch_ns, p->total_ns);
	return q * p->nsteps + j;
}

/* The nominal time of edge @n >= 1; U64_MAX beyond 2^64 - 1 ns. */
static u64 insane_edge_time(const struct insane_policy *p, u64 n)
{
	u32 r;
	u64 q = div_u64_rem(n - 1, p->nsteps, &r);
	u64 t;

	if (check_mul_overflow(q, p->total_ns, &t) ||
	    check_add_overflow(t, p->steps[r].end_ns, &t) ||
	    check_add_overflow(t, p->epoch_ns, &t))
		return U64_MAX;
	return t;
}

/* The step that edge @n begins. */
static u32 insane_edge_step(const struct insane_policy *p, u64 n)
{
	u32 step;

	div_u64_rem(n, p->nsteps, &step);
	return step;
}

static bool insane_edge_down(const struct insane_policy *p, u64 n)
{
	return p->steps[insane_edge_step(p, n)].act.mode == INSANE_MODE_DROP;
}

/* Arms @et for the edge after @n; false if there is none. */
static bool insane_edge_arm_after(struct insane_edge_timer *et, u64 n,
				  bool restart)
{
	const struct insane_policy *p = et->policy;
	ktime_t at;

	if (p->once && n + 1 >= p->nsteps)
		return false;
	/* An edge beyond KTIME_MAX is never reached: park the timer there. */
	at = ns_to_ktime(min_t(u64, insane_edge_time(p, n + 1), KTIME_MAX));
	if (restart)
		hrtimer_set_expires(&et->timer, at);
	else
		hrtimer_start(&et->timer, at, HRTIMER_MODE_ABS_SOFT);
	return true;
}

/* Edge @n is due, and newer than any acted on: flap and tell. */
static void insane_edge_act(struct insane_edge_timer *et, u64 n, u64 now)
{
	const struct insane_policy *p = et->policy, *tx;
	struct insane_dev *ins = et->ins;
	struct insane_edge e = {
		.dir = et->dir,
		.seq = n,
		.step = insane_edge_step(p, n),
		.time_ns = insane_edge_time(p, n),
		.fired_ns = now,
	};
	insane_edge_fn fn;

	e.mode = p->steps[e.step].act.mode;
	e.state = e.mode == INSANE_MODE_DROP ? INSANE_EDGE_STATE_DOWN :
					       INSANE_EDGE_STATE_UP;
	if (et->dir == INSANE_DIRECTION_TX && p->carrier) {
		e.has_carrier = true;
		e.carrier = insane_edge_set_flap(ins,
						 e.state == INSANE_EDGE_STATE_DOWN);
	}
	if (!p->events)
		return;

	rcu_read_lock();
	if (et->dir == INSANE_DIRECTION_RX) {
		/* The transmit policy's flag, whichever policy it is now. */
		tx = rcu_dereference(ins->policy);
		if (tx && tx->carrier) {
			e.has_carrier = true;
			e.carrier = netif_carrier_ok(ins->dev);
		}
	}
	fn = READ_ONCE(insane_edge_notify_hook);
	if (fn)
		fn(ins, &e);
	rcu_read_unlock();
}

static enum hrtimer_restart insane_edge_fire(struct hrtimer *timer)
{
	struct insane_edge_timer *et =
		container_of(timer, struct insane_edge_timer, timer);
	u64 now = ktime_get_ns(), n;

	/*
	 * The device is going down: insane_ndo_stop() is about to cancel the
	 * timer. A device that is down flaps nothing and reports nothing.
	 */
	if (unlikely(!netif_running(et->ins->dev)))
		return HRTIMER_NORESTART;
	/*
	 * The timer expires at an edge's nominal time or later, so the
	 * latest edge is at least the one it was armed for; several, if it
	 * ran late, and then it acts once, for the latest.
	 */
	n = insane_edge_latest(et->policy, now);
	if (n > et->done) {
		et->done = n;
		insane_edge_act(et, n, now);
	}
	return insane_edge_arm_after(et, et->done, true) ? HRTIMER_RESTART :
							    HRTIMER_NORESTART;
}

/* rtnl_link_ops.setup: both timers exist, stopped, for the device's life. */
void insane_edge_init(struct insane_dev *ins)
{
	int dir;

	for (dir = 0; dir <= INSANE_DIRECTION_MAX; dir++) {
		struct insane_edge_timer *et = &ins->edge[dir];

		hrtimer_init(&et->timer, CLOCK_MONOTONIC, HRTIMER_MODE_ABS_SOFT);
		et->timer.function = insane_edge_fire;
		et->ins = ins;
		et->dir = dir;
	}
}

/**
 * insane_edge_stop - stop a direction's timer
 * @ins: the device
 * @dir: the direction
 *
 * Waits for a callback that is running: when this returns, the timer no
 * longer reads its policy. The carrier stays as it is. Caller holds RTNL.
 */
void insane_edge_stop(struct insane_dev *ins, enum insane_direction dir)
{
	struct insane_edge_timer *et = &ins->edge[dir];

	ASSERT_RTNL();
	hrtimer_cancel(&et->timer);
	et->policy = NULL;
}

/**
 * insane_edge_start - (re)start a direction's timer for a policy
 * @ins: the device
 * @dir: the direction
 * @p: the policy now in force in that direction (published), or NULL
 *
 * Stops the timer, then starts it for @p if @p has edges to act on and the
 * device is up, from the edge that is due now, which is not an edge of its
 * own: it flaps, but reports nothing. The transmit direction also sets the
 * carrier, once: the step in force for a policy with
 * INSANE_POLICY_A_CARRIER on a device that is up, the lower's state alone
 * for a policy without it. A device that is down keeps its carrier until it
 * comes up (insane_ndo_open() starts the timers again). Caller holds RTNL.
 */
void insane_edge_start(struct insane_dev *ins, enum insane_direction dir,
		       struct insane_policy *p)
{
	struct insane_edge_timer *et = &ins->edge[dir];
	bool armed = insane_edge_armed(p) && netif_running(ins->dev);
	u64 n = 0;

	insane_edge_stop(ins, dir);
	if (armed)
		n = insane_edge_latest(p, ktime_get_ns());
	if (dir == INSANE_DIRECTION_TX) {
		if (!p || !p->carrier)
			insane_edge_set_flap(ins, false);
		else if (armed)
			insane_edge_set_flap(ins, insane_edge_down(p, n));
	}
	if (!armed)
		return;
	et->policy = p;
	et->done = n;
	insane_edge_arm_after(et, n, false);
}
