/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The edges of time and schedule policies with INSANE_POLICY_A_CARRIER or
 * INSANE_POLICY_A_EVENTS: one timer per device and direction, which flaps
 * the carrier and reports each edge ("Edges" and "Carrier flaps" in the
 * uapi header). Control only: the datapath never looks at it.
 */
#ifndef _INSANE_EDGE_H
#define _INSANE_EDGE_H

#include <linux/hrtimer.h>
#include <linux/types.h>

#include <uapi/linux/insane.h>

struct insane_dev;
struct insane_policy;

/*
 * One direction's timer, in struct insane_dev. policy and done are written
 * under RTNL while the timer is stopped, and by the callback while it runs:
 * hrtimer_start() and hrtimer_cancel() order the two. The policy is the one
 * the timer was started for; whoever replaces it stops the timer first, and
 * frees it only then, so the callback needs no RCU to read it.
 */
struct insane_edge_timer {
	struct hrtimer timer;
	struct insane_dev *ins;
	struct insane_policy *policy;	/* NULL while stopped */
	u64 done;			/* the last edge acted on, 0: none */
	enum insane_direction dir;
};

/* One edge, as INSANE_EVENT_EDGE reports it. */
struct insane_edge {
	enum insane_direction dir;
	enum insane_edge_state state;
	u32 step;
	u32 mode;
	u64 seq;
	u64 time_ns;		/* nominal, CLOCK_MONOTONIC */
	u64 fired_ns;		/* when the callback ran */
	bool has_carrier;	/* the transmit policy has INSANE_POLICY_A_CARRIER */
	bool carrier;		/* then: the device's carrier after the edge */
};

/*
 * Sends an edge's event. Called from the timer, in softirq context, inside
 * an RCU read-side section: the generic netlink layer, above this one,
 * hands it in, as it does insane_link_set_event_fn()'s.
 */
typedef void (*insane_edge_fn)(struct insane_dev *ins,
			       const struct insane_edge *edge);

void insane_edge_set_notify_fn(insane_edge_fn fn);

void insane_edge_init(struct insane_dev *ins);
void insane_edge_sync_carrier(struct insane_dev *ins);
void insane_edge_start(struct insane_dev *ins, enum insane_direction dir,
		       struct insane_policy *p);
void insane_edge_stop(struct insane_dev *ins, enum insane_direction dir);

#endif /* _INSANE_EDGE_H */
