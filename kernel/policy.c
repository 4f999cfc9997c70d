// SPDX-License-Identifier: GPL-2.0
/*
 * Drop policies: one parser for IFLA_INFO_DATA and INSANE_DEVICE_A_POLICY,
 * and every refusal it makes. The policies are built and reported in
 * policy_build.c and decide packets in policy.h and decide.c.
 */

#include "delay.h"
#include "policy.h"

#include <linux/bits.h>
#include <linux/limits.h>

/* INSANE_POLICY_A_STEPS: steps only, each a policy of its own. */
const struct nla_policy insane_steps_nla[INSANE_STEPS_A_MAX + 1] = {
	[INSANE_STEPS_A_STEP]		= NLA_POLICY_NESTED(insane_policy_nla),
};

/*
 * Ranges are checked by insane_policy_check() rather than by the policy
 * table, so that each refusal names the attribute and says what is allowed.
 * INSANE_POLICY_A_PAD stays NLA_UNSPEC: strict validation refuses it. The
 * attributes that replies alone carry have their types, so that
 * insane_policy_check() refuses them with a message of its own.
 */
const struct nla_policy insane_policy_nla[INSANE_POLICY_A_MAX + 1] = {
	INSANE_POLICY_NLA
};

static const char * const insane_policy_dup_msgs[INSANE_POLICY_A_MAX + 1] = {
	[INSANE_POLICY_A_PAD] =
		"INSANE_POLICY_A_PAD is given more than once",
	[INSANE_POLICY_A_MODE] =
		"INSANE_POLICY_A_MODE is given more than once",
	[INSANE_POLICY_A_PERCENT] =
		"INSANE_POLICY_A_PERCENT is given more than once",
	[INSANE_POLICY_A_SEED] =
		"INSANE_POLICY_A_SEED is given more than once",
	[INSANE_POLICY_A_ON_NS] =
		"INSANE_POLICY_A_ON_NS is given more than once",
	[INSANE_POLICY_A_OFF_NS] =
		"INSANE_POLICY_A_OFF_NS is given more than once",
	[INSANE_POLICY_A_RX] =
		"INSANE_POLICY_A_RX is given more than once",
	[INSANE_POLICY_A_RX_OFF] =
		"INSANE_POLICY_A_RX_OFF is given more than once",
	[INSANE_POLICY_A_BURST] =
		"INSANE_POLICY_A_BURST is given more than once",
	[INSANE_POLICY_A_GE_P] =
		"INSANE_POLICY_A_GE_P is given more than once",
	[INSANE_POLICY_A_GE_R] =
		"INSANE_POLICY_A_GE_R is given more than once",
	[INSANE_POLICY_A_GE_LOSS_BAD] =
		"INSANE_POLICY_A_GE_LOSS_BAD is given more than once",
	[INSANE_POLICY_A_GE_LOSS_GOOD] =
		"INSANE_POLICY_A_GE_LOSS_GOOD is given more than once",
	[INSANE_POLICY_A_STEPS] =
		"INSANE_POLICY_A_STEPS is given more than once",
	[INSANE_POLICY_A_DURATION_NS] =
		"INSANE_POLICY_A_DURATION_NS is given more than once",
	[INSANE_POLICY_A_ONCE] =
		"INSANE_POLICY_A_ONCE is given more than once",
	[INSANE_POLICY_A_STEP_INDEX] =
		"INSANE_POLICY_A_STEP_INDEX is given more than once",
	[INSANE_POLICY_A_STEP_LEFT_NS] =
		"INSANE_POLICY_A_STEP_LEFT_NS is given more than once",
	[INSANE_POLICY_A_CARRIER] =
		"INSANE_POLICY_A_CARRIER is given more than once",
	[INSANE_POLICY_A_EVENTS] =
		"INSANE_POLICY_A_EVENTS is given more than once",
	[INSANE_POLICY_A_STEPS_OMITTED] =
		"INSANE_POLICY_A_STEPS_OMITTED is given more than once",
	[INSANE_POLICY_A_DELAY_NS] =
		"INSANE_POLICY_A_DELAY_NS is given more than once",
	[INSANE_POLICY_A_JITTER_NS] =
		"INSANE_POLICY_A_JITTER_NS is given more than once",
	[INSANE_POLICY_A_CORRELATION] =
		"INSANE_POLICY_A_CORRELATION is given more than once",
	[INSANE_POLICY_A_DISTRIBUTION] =
		"INSANE_POLICY_A_DISTRIBUTION is given more than once",
	[INSANE_POLICY_A_REORDER] =
		"INSANE_POLICY_A_REORDER is given more than once",
	[INSANE_POLICY_A_LIMIT] =
		"INSANE_POLICY_A_LIMIT is given more than once",
	[INSANE_POLICY_A_RATE] =
		"INSANE_POLICY_A_RATE is given more than once",
	[INSANE_POLICY_A_OVERHEAD] =
		"INSANE_POLICY_A_OVERHEAD is given more than once",
	[INSANE_POLICY_A_BUFFER_NS] =
		"INSANE_POLICY_A_BUFFER_NS is given more than once",
	[INSANE_POLICY_A_DUPLICATE] =
		"INSANE_POLICY_A_DUPLICATE is given more than once",
	[INSANE_POLICY_A_CORRUPT] =
		"INSANE_POLICY_A_CORRUPT is given more than once",
	[INSANE_POLICY_A_CORRUPT_HEADER] =
		"INSANE_POLICY_A_CORRUPT_HEADER is given more than once",
};

/**
 * insane_nla_refuse_dups - refuse an attribute given twice in a stream
 * @head: the first attribute
 * @len: the length of the stream
 * @maxtype: the highest type known at this level, below 64
 * @msgs: a message per type, naming it, indexed up to @maxtype
 * @extack: where to say which attribute, pointing at its second occurrence
 *
 * nla_parse() keeps the last of repeated attributes; a request that repeats
 * one is ambiguous, so it is refused. Types above @maxtype are left to the
 * strict validation, which refuses them.
 *
 * Return: 0 or -EINVAL.
 */
int insane_nla_refuse_dups(const struct nlattr *head, int len, int maxtype,
			   const char * const *msgs,
			   struct netlink_ext_ack *extack)
{
	const struct nlattr *attr;
	u64 seen = 0;
	int rem, type;

	nla_for_each_attr(attr, head, len, rem) {
		type = nla_type(attr);
		if (type > maxtype || type >= 64)
			continue;
		if (seen & BIT_ULL(type)) {
			if (extack)
				extack->_msg = msgs[type] ?:
					"an attribute is given more than once";
			NL_SET_BAD_ATTR(extack, attr);
			return -EINVAL;
		}
		seen |= BIT_ULL(type);
	}
	return 0;
}

/* A policy nested in @nest, or a step: each attribute at most once. */
int insane_policy_refuse_dups(const struct nlattr *nest,
			      struct netlink_ext_ack *extack)
{
	return insane_nla_refuse_dups(nla_data(nest), nla_len(nest),
				      INSANE_POLICY_A_MAX,
				      insane_policy_dup_msgs, extack);
}

bool insane_policy_present(struct nlattr *const *tb)
{
	int i;

	if (!tb)
		return false;
	for (i = 1; i <= INSANE_POLICY_A_MAX; i++)
		if (tb[i])
			return true;
	return false;
}

static struct nlattr *insane_policy_first(struct nlattr *const *tb)
{
	int i;

	for (i = 1; i <= INSANE_POLICY_A_MAX; i++)
		if (tb[i])
			return tb[i];
	return NULL;
}

/*
 * Each refusal is a literal passed to NL_SET_ERR_MSG_ATTR(), so that it
 * also reaches the netlink:netlink_extack tracepoint.
 */
static void insane_policy_misplaced(struct netlink_ext_ack *extack,
				    const struct nlattr *attr, int type)
{
	switch (type) {
	case INSANE_POLICY_A_PERCENT:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_PERCENT is only valid in percent and burst modes");
		break;
	case INSANE_POLICY_A_SEED:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_SEED is only valid in percent, burst, gilbert and schedule modes, or beside INSANE_POLICY_A_JITTER_NS, _DUPLICATE or _CORRUPT");
		break;
	case INSANE_POLICY_A_ON_NS:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_ON_NS is only valid in time mode");
		break;
	case INSANE_POLICY_A_OFF_NS:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_OFF_NS is only valid in time mode");
		break;
	case INSANE_POLICY_A_BURST:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_BURST is only valid in burst mode");
		break;
	case INSANE_POLICY_A_GE_P:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_GE_P is only valid in gilbert mode");
		break;
	case INSANE_POLICY_A_GE_R:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_GE_R is only valid in gilbert mode");
		break;
	case INSANE_POLICY_A_GE_LOSS_BAD:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_GE_LOSS_BAD is only valid in gilbert mode");
		break;
	case INSANE_POLICY_A_GE_LOSS_GOOD:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_GE_LOSS_GOOD is only valid in gilbert mode");
		break;
	case INSANE_POLICY_A_STEPS:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_STEPS is only valid in schedule mode");
		break;
	case INSANE_POLICY_A_ONCE:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_ONCE is only valid in schedule mode");
		break;
	case INSANE_POLICY_A_DURATION_NS:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_DURATION_NS is only valid in a step of INSANE_POLICY_A_STEPS");
		break;
	case INSANE_POLICY_A_CARRIER:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_CARRIER is only valid in time and schedule modes");
		break;
	case INSANE_POLICY_A_EVENTS:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_EVENTS is only valid in time and schedule modes");
		break;
	case INSANE_POLICY_A_DELAY_NS:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_DELAY_NS is not valid beside INSANE_POLICY_A_STEPS: give each step its delay");
		break;
	case INSANE_POLICY_A_JITTER_NS:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_JITTER_NS is not valid beside INSANE_POLICY_A_STEPS: give each step its delay");
		break;
	case INSANE_POLICY_A_CORRELATION:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_CORRELATION is not valid beside INSANE_POLICY_A_STEPS: give each step its delay");
		break;
	case INSANE_POLICY_A_DISTRIBUTION:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_DISTRIBUTION is not valid beside INSANE_POLICY_A_STEPS: give each step its delay");
		break;
	case INSANE_POLICY_A_REORDER:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_REORDER is not valid beside INSANE_POLICY_A_STEPS: give each step its delay");
		break;
	case INSANE_POLICY_A_RATE:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_RATE is not valid beside INSANE_POLICY_A_STEPS: give each step its rate");
		break;
	case INSANE_POLICY_A_OVERHEAD:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_OVERHEAD is not valid beside INSANE_POLICY_A_STEPS: give each step its rate");
		break;
	case INSANE_POLICY_A_BUFFER_NS:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_BUFFER_NS is not valid beside INSANE_POLICY_A_STEPS: give each step its rate");
		break;
	case INSANE_POLICY_A_DUPLICATE:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_DUPLICATE is not valid beside INSANE_POLICY_A_STEPS: give each step its own");
		break;
	case INSANE_POLICY_A_CORRUPT:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_CORRUPT is not valid beside INSANE_POLICY_A_STEPS: give each step its own");
		break;
	case INSANE_POLICY_A_CORRUPT_HEADER:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_CORRUPT_HEADER is not valid beside INSANE_POLICY_A_STEPS: give each step its own");
		break;
	default:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "this policy attribute is not valid in the given mode");
		break;
	}
}

static void insane_policy_missing(struct netlink_ext_ack *extack,
				  const struct nlattr *attr, u32 mode, int type)
{
	switch (type) {
	case INSANE_POLICY_A_PERCENT:
		if (mode == INSANE_MODE_BURST)
			NL_SET_ERR_MSG_ATTR(extack, attr,
					    "INSANE_POLICY_A_PERCENT is required in burst mode");
		else
			NL_SET_ERR_MSG_ATTR(extack, attr,
					    "INSANE_POLICY_A_PERCENT is required in percent mode");
		break;
	case INSANE_POLICY_A_ON_NS:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_ON_NS is required in time mode");
		break;
	case INSANE_POLICY_A_OFF_NS:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_OFF_NS is required in time mode");
		break;
	case INSANE_POLICY_A_BURST:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_BURST is required in burst mode");
		break;
	case INSANE_POLICY_A_GE_P:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_GE_P is required in gilbert mode");
		break;
	case INSANE_POLICY_A_GE_R:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_GE_R is required in gilbert mode");
		break;
	case INSANE_POLICY_A_STEPS:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_STEPS is required in schedule mode");
		break;
	case INSANE_POLICY_A_DURATION_NS:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_DURATION_NS is required in a step");
		break;
	default:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "a policy attribute that the mode requires is missing");
		break;
	}
}

#define INSANE_GE_ATTRS (BIT(INSANE_POLICY_A_GE_P) | BIT(INSANE_POLICY_A_GE_R) | \
			 BIT(INSANE_POLICY_A_GE_LOSS_BAD) |		       \
			 BIT(INSANE_POLICY_A_GE_LOSS_GOOD))
/*
 * The delay stage's attributes, rate, duplicate and corrupt: in any policy
 * but a schedule, any step.
 */
#define INSANE_DELAY_ATTRS (BIT(INSANE_POLICY_A_DELAY_NS) |		\
			    BIT(INSANE_POLICY_A_JITTER_NS) |		\
			    BIT(INSANE_POLICY_A_CORRELATION) |		\
			    BIT(INSANE_POLICY_A_DISTRIBUTION) |		\
			    BIT(INSANE_POLICY_A_REORDER) |		\
			    BIT(INSANE_POLICY_A_RATE) |		\
			    BIT(INSANE_POLICY_A_OVERHEAD) |		\
			    BIT(INSANE_POLICY_A_BUFFER_NS) |		\
			    BIT(INSANE_POLICY_A_DUPLICATE) |		\
			    BIT(INSANE_POLICY_A_CORRUPT) |		\
			    BIT(INSANE_POLICY_A_CORRUPT_HEADER))
/* The flags of the policies with windows (see edge.c). */
#define INSANE_EDGE_ATTRS (BIT(INSANE_POLICY_A_CARRIER) | \
			   BIT(INSANE_POLICY_A_EVENTS))

/* The attributes each mode allows and requires, besides the mode. */
static const struct {
	unsigned long allowed;
	unsigned long required;
} insane_mode_attrs[INSANE_MODE_MAX + 1] = {
	[INSANE_MODE_PASS] = { INSANE_DELAY_ATTRS, 0 },
	[INSANE_MODE_PERCENT] = {
		BIT(INSANE_POLICY_A_PERCENT) | BIT(INSANE_POLICY_A_SEED) |
		INSANE_DELAY_ATTRS,
		BIT(INSANE_POLICY_A_PERCENT) },
	[INSANE_MODE_TIME] = {
		BIT(INSANE_POLICY_A_ON_NS) | BIT(INSANE_POLICY_A_OFF_NS) |
		INSANE_EDGE_ATTRS | INSANE_DELAY_ATTRS,
		BIT(INSANE_POLICY_A_ON_NS) | BIT(INSANE_POLICY_A_OFF_NS) },
	[INSANE_MODE_DROP] = { INSANE_DELAY_ATTRS, 0 },
	[INSANE_MODE_BURST] = {
		BIT(INSANE_POLICY_A_PERCENT) | BIT(INSANE_POLICY_A_BURST) |
		BIT(INSANE_POLICY_A_SEED) | INSANE_DELAY_ATTRS,
		BIT(INSANE_POLICY_A_PERCENT) | BIT(INSANE_POLICY_A_BURST) },
	[INSANE_MODE_GILBERT] = {
		INSANE_GE_ATTRS | BIT(INSANE_POLICY_A_SEED) |
		INSANE_DELAY_ATTRS,
		BIT(INSANE_POLICY_A_GE_P) | BIT(INSANE_POLICY_A_GE_R) },
	[INSANE_MODE_SCHEDULE] = {
		BIT(INSANE_POLICY_A_STEPS) | BIT(INSANE_POLICY_A_ONCE) |
		BIT(INSANE_POLICY_A_SEED) | INSANE_EDGE_ATTRS,
		BIT(INSANE_POLICY_A_STEPS) },
};

/* Whether a time or schedule policy has a timer for its edges (edge.c). */
static bool insane_policy_has_edges(struct nlattr *const *tb)
{
	return tb[INSANE_POLICY_A_CARRIER] || tb[INSANE_POLICY_A_EVENTS];
}

static int insane_policy_check_time(struct nlattr *const *tb,
				    struct netlink_ext_ack *extack)
{
	u64 on = nla_get_u64(tb[INSANE_POLICY_A_ON_NS]);
	u64 off = nla_get_u64(tb[INSANE_POLICY_A_OFF_NS]);

	if (!on && !off) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_ON_NS],
				    "INSANE_POLICY_A_ON_NS + INSANE_POLICY_A_OFF_NS must be positive");
		return -EINVAL;
	}
	if (on + off < on) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_OFF_NS],
				    "INSANE_POLICY_A_ON_NS + INSANE_POLICY_A_OFF_NS overflows 64 bits");
		return -EINVAL;
	}
	if (!insane_policy_has_edges(tb))
		return 0;
	if (on < INSANE_EDGE_MIN_NS) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_ON_NS],
				    "INSANE_POLICY_A_ON_NS is below INSANE_EDGE_MIN_NS (10 ms), the shortest window with INSANE_POLICY_A_CARRIER or INSANE_POLICY_A_EVENTS: faster carrier changes or events would flood rtnetlink and the listeners");
		return -EINVAL;
	}
	if (off < INSANE_EDGE_MIN_NS) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_OFF_NS],
				    "INSANE_POLICY_A_OFF_NS is below INSANE_EDGE_MIN_NS (10 ms), the shortest window with INSANE_POLICY_A_CARRIER or INSANE_POLICY_A_EVENTS: faster carrier changes or events would flood rtnetlink and the listeners");
		return -EINVAL;
	}
	return 0;
}

/* Refuses a chance above 100 %, naming its attribute (if present). */
static int insane_policy_check_share(struct nlattr *const *tb, int type,
				     struct netlink_ext_ack *extack)
{
	const struct nlattr *attr = tb[type];

	if (!attr || nla_get_u32(attr) <= INSANE_PERCENT_MAX)
		return 0;
	switch (type) {
	case INSANE_POLICY_A_PERCENT:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_PERCENT is above 100 percent (100000000)");
		break;
	case INSANE_POLICY_A_GE_P:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_GE_P is above 100 percent (100000000)");
		break;
	case INSANE_POLICY_A_GE_R:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_GE_R is above 100 percent (100000000)");
		break;
	case INSANE_POLICY_A_GE_LOSS_BAD:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_GE_LOSS_BAD is above 100 percent (100000000)");
		break;
	default:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_GE_LOSS_GOOD is above 100 percent (100000000)");
		break;
	}
	return -EINVAL;
}

static int insane_policy_check_burst(struct nlattr *const *tb,
				     struct netlink_ext_ack *extack)
{
	u32 percent = nla_get_u32(tb[INSANE_POLICY_A_PERCENT]);
	u32 burst = nla_get_u32(tb[INSANE_POLICY_A_BURST]);
	int err;

	err = insane_policy_check_share(tb, INSANE_POLICY_A_PERCENT, extack);
	if (err)
		return err;
	if (!percent) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_PERCENT],
				    "INSANE_POLICY_A_PERCENT must be above 0 in burst mode");
		return -EINVAL;
	}
	if (burst < INSANE_BURST_SCALE) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_BURST],
				    "INSANE_POLICY_A_BURST is below 1 packet (1000): a burst has at least one packet");
		return -EINVAL;
	}
	/* p = (100 % - PERCENT) * BURST_SCALE / (PERCENT * BURST) <= 1 */
	if ((u64)(INSANE_PERCENT_MAX - percent) * INSANE_BURST_SCALE >
	    (u64)percent * burst) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_BURST],
				    "INSANE_POLICY_A_BURST is below (100 percent - INSANE_POLICY_A_PERCENT) / INSANE_POLICY_A_PERCENT packets: the chance of starting a burst would exceed 1");
		return -EINVAL;
	}
	return 0;
}

static int insane_policy_check_gilbert(struct nlattr *const *tb,
				       struct netlink_ext_ack *extack)
{
	int type, err;

	for (type = INSANE_POLICY_A_GE_P; type <= INSANE_POLICY_A_GE_LOSS_GOOD;
	     type++) {
		err = insane_policy_check_share(tb, type, extack);
		if (err)
			return err;
	}
	if (!nla_get_u32(tb[INSANE_POLICY_A_GE_R])) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_GE_R],
				    "INSANE_POLICY_A_GE_R must be above 0, or a burst would never end");
		return -EINVAL;
	}
	return 0;
}

/* The delay stage's attributes of a policy or a step ("Delay"). */
static int insane_policy_check_delay(struct nlattr *const *tb,
				     struct netlink_ext_ack *extack)
{
	u32 dist = INSANE_DISTRIBUTION_UNIFORM;
	u64 d, j, top;
	s64 zmax;

	if (!tb[INSANE_POLICY_A_DELAY_NS]) {
		if (tb[INSANE_POLICY_A_JITTER_NS])
			NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_JITTER_NS],
					    "INSANE_POLICY_A_JITTER_NS needs INSANE_POLICY_A_DELAY_NS");
		else if (tb[INSANE_POLICY_A_CORRELATION])
			NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_CORRELATION],
					    "INSANE_POLICY_A_CORRELATION needs INSANE_POLICY_A_DELAY_NS and INSANE_POLICY_A_JITTER_NS");
		else if (tb[INSANE_POLICY_A_DISTRIBUTION])
			NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_DISTRIBUTION],
					    "INSANE_POLICY_A_DISTRIBUTION needs INSANE_POLICY_A_DELAY_NS and INSANE_POLICY_A_JITTER_NS");
		else if (tb[INSANE_POLICY_A_REORDER])
			NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_REORDER],
					    "INSANE_POLICY_A_REORDER needs INSANE_POLICY_A_DELAY_NS");
		else
			return 0;
		return -EINVAL;
	}
	if (!tb[INSANE_POLICY_A_JITTER_NS]) {
		if (tb[INSANE_POLICY_A_CORRELATION]) {
			NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_CORRELATION],
					    "INSANE_POLICY_A_CORRELATION needs INSANE_POLICY_A_JITTER_NS");
			return -EINVAL;
		}
		if (tb[INSANE_POLICY_A_DISTRIBUTION]) {
			NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_DISTRIBUTION],
					    "INSANE_POLICY_A_DISTRIBUTION needs INSANE_POLICY_A_JITTER_NS");
			return -EINVAL;
		}
	}
	d = nla_get_u64(tb[INSANE_POLICY_A_DELAY_NS]);
	if (!d) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_DELAY_NS],
				    "INSANE_POLICY_A_DELAY_NS must be at least 1 ns");
		return -EINVAL;
	}
	if (d > INSANE_DELAY_MAX_NS) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_DELAY_NS],
				    "INSANE_POLICY_A_DELAY_NS is above INSANE_DELAY_MAX_NS (60 s)");
		return -EINVAL;
	}
	if (tb[INSANE_POLICY_A_DISTRIBUTION]) {
		dist = nla_get_u32(tb[INSANE_POLICY_A_DISTRIBUTION]);
		if (dist > INSANE_DISTRIBUTION_MAX) {
			NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_DISTRIBUTION],
					    "INSANE_POLICY_A_DISTRIBUTION is not a known distribution (uniform 0, normal 1, pareto 2, paretonormal 3)");
			return -EINVAL;
		}
	}
	if (tb[INSANE_POLICY_A_CORRELATION] &&
	    nla_get_u32(tb[INSANE_POLICY_A_CORRELATION]) >= INSANE_PERCENT_MAX) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_CORRELATION],
				    "INSANE_POLICY_A_CORRELATION must be below 100 percent (100000000)");
		return -EINVAL;
	}
	if (!tb[INSANE_POLICY_A_JITTER_NS])
		return 0;
	j = nla_get_u64(tb[INSANE_POLICY_A_JITTER_NS]);
	if (dist == INSANE_DISTRIBUTION_UNIFORM && j > d) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_JITTER_NS],
				    "INSANE_POLICY_A_JITTER_NS is above INSANE_POLICY_A_DELAY_NS: a uniform delay of D - J .. D + J cannot be negative");
		return -EINVAL;
	}
	/* D + J * z_max, J bounded first so that J * z_max fits. */
	zmax = insane_delay_z_max(dist);
	top = j <= INSANE_DELAY_MAX_NS ? d + ((j * zmax) >> 16) : U64_MAX;
	if (top > INSANE_DELAY_MAX_NS) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_JITTER_NS],
				    "INSANE_POLICY_A_JITTER_NS is too large: the longest delay the distribution draws (INSANE_POLICY_A_DELAY_NS + INSANE_POLICY_A_JITTER_NS * z_max) is above INSANE_DELAY_MAX_NS (60 s)");
		return -EINVAL;
	}
	if (dist == INSANE_DISTRIBUTION_PARETO &&
	    (s64)d + (((s64)j * insane_delay_z_min(dist)) >> 16) < 0) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_JITTER_NS],
				    "INSANE_POLICY_A_JITTER_NS is too large for pareto: its shortest delay (INSANE_POLICY_A_DELAY_NS - 0.57735 * INSANE_POLICY_A_JITTER_NS) would be below 0");
		return -EINVAL;
	}
	return 0;
}

/* Rate, duplicate and corrupt ("Rate, duplication and corruption"). */
static int insane_policy_check_extras(struct nlattr *const *tb,
				      struct netlink_ext_ack *extack)
{
	const struct nlattr *a;
	u64 v;

	if (!tb[INSANE_POLICY_A_RATE]) {
		if (tb[INSANE_POLICY_A_OVERHEAD]) {
			NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_OVERHEAD],
					    "INSANE_POLICY_A_OVERHEAD needs INSANE_POLICY_A_RATE");
			return -EINVAL;
		}
		if (tb[INSANE_POLICY_A_BUFFER_NS]) {
			NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_BUFFER_NS],
					    "INSANE_POLICY_A_BUFFER_NS needs INSANE_POLICY_A_RATE: a buffer is a queue's length in time at the rate");
			return -EINVAL;
		}
	} else {
		v = nla_get_u64(tb[INSANE_POLICY_A_RATE]);
		if (v < INSANE_RATE_MIN || v > INSANE_RATE_MAX) {
			NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_RATE],
					    "INSANE_POLICY_A_RATE must be INSANE_RATE_MIN (8) .. INSANE_RATE_MAX (10^12) bits per second");
			return -EINVAL;
		}
	}
	a = tb[INSANE_POLICY_A_OVERHEAD];
	if (a && nla_get_u32(a) > INSANE_RATE_OVERHEAD_MAX) {
		NL_SET_ERR_MSG_ATTR(extack, a,
				    "INSANE_POLICY_A_OVERHEAD is above INSANE_RATE_OVERHEAD_MAX (4096) bytes");
		return -EINVAL;
	}
	a = tb[INSANE_POLICY_A_BUFFER_NS];
	if (a && (!nla_get_u64(a) || nla_get_u64(a) > INSANE_DELAY_MAX_NS)) {
		NL_SET_ERR_MSG_ATTR(extack, a,
				    "INSANE_POLICY_A_BUFFER_NS must be 1 ns .. INSANE_DELAY_MAX_NS (60 s)");
		return -EINVAL;
	}
	a = tb[INSANE_POLICY_A_DUPLICATE];
	if (a && (!nla_get_u32(a) || nla_get_u32(a) > INSANE_PERCENT_MAX)) {
		NL_SET_ERR_MSG_ATTR(extack, a,
				    "INSANE_POLICY_A_DUPLICATE must be above 0 and at most 100 percent (100000000)");
		return -EINVAL;
	}
	a = tb[INSANE_POLICY_A_CORRUPT];
	if (a && (!nla_get_u32(a) || nla_get_u32(a) > INSANE_PERCENT_MAX)) {
		NL_SET_ERR_MSG_ATTR(extack, a,
				    "INSANE_POLICY_A_CORRUPT must be above 0 and at most 100 percent (100000000)");
		return -EINVAL;
	}
	if (tb[INSANE_POLICY_A_CORRUPT_HEADER] && !a) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_CORRUPT_HEADER],
				    "INSANE_POLICY_A_CORRUPT_HEADER needs INSANE_POLICY_A_CORRUPT");
		return -EINVAL;
	}
	return 0;
}

/* Refuses the attributes that replies carry and requests cannot. */
static int insane_policy_check_reported(struct nlattr *const *tb,
					struct netlink_ext_ack *extack)
{
	if (tb[INSANE_POLICY_A_STEP_INDEX]) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_STEP_INDEX],
				    "INSANE_POLICY_A_STEP_INDEX is reported in replies, never set");
		return -EINVAL;
	}
	if (tb[INSANE_POLICY_A_STEP_LEFT_NS]) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_STEP_LEFT_NS],
				    "INSANE_POLICY_A_STEP_LEFT_NS is reported in replies, never set");
		return -EINVAL;
	}
	if (tb[INSANE_POLICY_A_STEPS_OMITTED]) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_STEPS_OMITTED],
				    "INSANE_POLICY_A_STEPS_OMITTED is reported in rtnetlink dumps, never set: give the steps in INSANE_POLICY_A_STEPS");
		return -EINVAL;
	}
	return 0;
}

/*
 * Checks one attribute set: a policy (@in_step false) or a step of a
 * schedule, whose own steps are left to insane_policy_check_steps().
 */
static int insane_policy_check_one(struct nlattr *const *tb, bool in_step,
				   struct netlink_ext_ack *extack)
{
	unsigned long allowed, required;
	u32 mode;
	int i, err;

	err = insane_policy_check_reported(tb, extack);
	if (err)
		return err;
	if (!tb[INSANE_POLICY_A_MODE]) {
		if (in_step)
			NL_SET_ERR_MSG_ATTR(extack, insane_policy_first(tb),
					    "INSANE_POLICY_A_MODE is required in a step");
		else
			NL_SET_ERR_MSG_ATTR(extack, insane_policy_first(tb),
					    "INSANE_POLICY_A_MODE is required with any policy attribute");
		return -EINVAL;
	}
	mode = nla_get_u32(tb[INSANE_POLICY_A_MODE]);
	if (in_step && (mode > INSANE_MODE_MAX || mode == INSANE_MODE_TIME ||
			mode == INSANE_MODE_SCHEDULE)) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_MODE],
				    "INSANE_POLICY_A_MODE of a step must be pass 0, percent 1, drop 3, burst 4 or gilbert 5");
		return -EINVAL;
	}
	if (mode > INSANE_MODE_MAX) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_MODE],
				    "INSANE_POLICY_A_MODE is not a known mode (pass 0, percent 1, time 2, drop 3, burst 4, gilbert 5, schedule 6)");
		return -EINVAL;
	}
	allowed = insane_mode_attrs[mode].allowed;
	required = insane_mode_attrs[mode].required;
	if (in_step) {
		if (tb[INSANE_POLICY_A_SEED]) {
			NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_SEED],
					    "INSANE_POLICY_A_SEED is not valid in a step: the schedule's seed goes beside INSANE_POLICY_A_STEPS");
			return -EINVAL;
		}
		if (tb[INSANE_POLICY_A_CARRIER]) {
			NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_CARRIER],
					    "INSANE_POLICY_A_CARRIER is not valid in a step: it goes beside INSANE_POLICY_A_STEPS, for every step");
			return -EINVAL;
		}
		if (tb[INSANE_POLICY_A_EVENTS]) {
			NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_EVENTS],
					    "INSANE_POLICY_A_EVENTS is not valid in a step: it goes beside INSANE_POLICY_A_STEPS, for every step");
			return -EINVAL;
		}
		if (tb[INSANE_POLICY_A_LIMIT]) {
			NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_LIMIT],
					    "INSANE_POLICY_A_LIMIT is not valid in a step: it goes beside INSANE_POLICY_A_STEPS, for every step");
			return -EINVAL;
		}
		allowed |= BIT(INSANE_POLICY_A_DURATION_NS) |
			   INSANE_DELAY_ATTRS;
		required |= BIT(INSANE_POLICY_A_DURATION_NS);
	} else {
		allowed |= BIT(INSANE_POLICY_A_LIMIT);
		/*
		 * A seed for the jitter's, duplication's and corruption's
		 * draws, whatever the mode.
		 */
		if (tb[INSANE_POLICY_A_JITTER_NS] ||
		    tb[INSANE_POLICY_A_DUPLICATE] || tb[INSANE_POLICY_A_CORRUPT])
			allowed |= BIT(INSANE_POLICY_A_SEED);
	}

	for (i = INSANE_POLICY_A_MODE + 1; i <= INSANE_POLICY_A_MAX; i++) {
		if (tb[i] && !(allowed & BIT(i))) {
			insane_policy_misplaced(extack, tb[i], i);
			return -EINVAL;
		}
		if (!tb[i] && (required & BIT(i))) {
			insane_policy_missing(extack, insane_policy_first(tb),
					      mode, i);
			return -EINVAL;
		}
	}

	if (in_step && !nla_get_u64(tb[INSANE_POLICY_A_DURATION_NS])) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_DURATION_NS],
				    "INSANE_POLICY_A_DURATION_NS must be above 0");
		return -EINVAL;
	}
	if (tb[INSANE_POLICY_A_LIMIT] &&
	    (!nla_get_u32(tb[INSANE_POLICY_A_LIMIT]) ||
	     nla_get_u32(tb[INSANE_POLICY_A_LIMIT]) > INSANE_DELAY_LIMIT_MAX)) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_LIMIT],
				    "INSANE_POLICY_A_LIMIT must be 1 .. INSANE_DELAY_LIMIT_MAX (10000000) packets");
		return -EINVAL;
	}
	err = insane_policy_check_delay(tb, extack);
	if (err)
		return err;
	err = insane_policy_check_extras(tb, extack);
	if (err)
		return err;

	switch (mode) {
	case INSANE_MODE_PERCENT:
		return insane_policy_check_share(tb, INSANE_POLICY_A_PERCENT,
						 extack);
	case INSANE_MODE_BURST:
		return insane_policy_check_burst(tb, extack);
	case INSANE_MODE_GILBERT:
		return insane_policy_check_gilbert(tb, extack);
	case INSANE_MODE_TIME:
		return insane_policy_check_time(tb, extack);
	}
	return 0;
}

/* Parses and checks one step of a schedule into @stb. */
int insane_policy_parse_step(const struct nlattr *step, struct nlattr **stb,
			     struct netlink_ext_ack *extack)
{
	int err;

	if (nla_type(step) != INSANE_STEPS_A_STEP) {
		NL_SET_ERR_MSG_ATTR(extack, step,
				    "INSANE_POLICY_A_STEPS holds INSANE_STEPS_A_STEP attributes only");
		return -EINVAL;
	}
	err = insane_policy_refuse_dups(step, extack);
	if (err)
		return err;
	err = nla_parse_nested(stb, INSANE_POLICY_A_MAX, step,
			       insane_policy_nla, extack);
	if (err)
		return err;
	if (!insane_policy_present(stb)) {
		NL_SET_ERR_MSG_ATTR(extack, step,
				    "a step of INSANE_POLICY_A_STEPS is empty: INSANE_POLICY_A_MODE is required");
		return -EINVAL;
	}
	return insane_policy_check_one(stb, true, extack);
}

/*
 * Checks the steps of a schedule, each at least INSANE_EDGE_MIN_NS long
 * with @edges; returns their number or an errno.
 */
static int insane_policy_check_steps(const struct nlattr *steps, bool edges,
				     struct netlink_ext_ack *extack)
{
	struct nlattr *stb[INSANE_POLICY_A_MAX + 1];
	struct nlattr *step;
	u64 total = 0, d;
	int rem, n = 0, err;

	nla_for_each_nested(step, steps, rem) {
		if (n == INSANE_SCHEDULE_STEPS_MAX) {
			NL_SET_ERR_MSG_ATTR(extack, step,
					    "INSANE_POLICY_A_STEPS holds more than INSANE_SCHEDULE_STEPS_MAX (64) steps");
			return -EINVAL;
		}
		err = insane_policy_parse_step(step, stb, extack);
		if (err)
			return err;
		d = nla_get_u64(stb[INSANE_POLICY_A_DURATION_NS]);
		if (edges && d < INSANE_EDGE_MIN_NS) {
			NL_SET_ERR_MSG_ATTR(extack,
					    stb[INSANE_POLICY_A_DURATION_NS],
					    "INSANE_POLICY_A_DURATION_NS is below INSANE_EDGE_MIN_NS (10 ms), the shortest step with INSANE_POLICY_A_CARRIER or INSANE_POLICY_A_EVENTS: faster carrier changes or events would flood rtnetlink and the listeners");
			return -EINVAL;
		}
		if (d > S64_MAX - total) {
			NL_SET_ERR_MSG_ATTR(extack,
					    stb[INSANE_POLICY_A_DURATION_NS],
					    "the INSANE_POLICY_A_DURATION_NS of the steps add up to more than 2^63 - 1 ns");
			return -EINVAL;
		}
		total += d;
		n++;
	}
	if (!n) {
		NL_SET_ERR_MSG_ATTR(extack, steps,
				    "INSANE_POLICY_A_STEPS holds no step: a schedule has 1 to 64 INSANE_STEPS_A_STEP");
		return -EINVAL;
	}
	return n;
}

/* Checks a policy; returns the number of its steps (time: 2) or an errno. */
int insane_policy_check_count(struct nlattr *const *tb,
			      enum insane_direction dir,
			      struct netlink_ext_ack *extack)
{
	int err;

	/* The device has one carrier, which the transmit policy flaps. */
	if (dir == INSANE_DIRECTION_RX && tb[INSANE_POLICY_A_CARRIER]) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_CARRIER],
				    "carrier flaps follow the transmit policy: INSANE_POLICY_A_CARRIER is not valid in a receive policy");
		return -EINVAL;
	}
	err = insane_policy_check_one(tb, false, extack);
	if (err)
		return err;
	switch (nla_get_u32(tb[INSANE_POLICY_A_MODE])) {
	case INSANE_MODE_TIME:
		return 2;
	case INSANE_MODE_SCHEDULE:
		return insane_policy_check_steps(tb[INSANE_POLICY_A_STEPS],
						 insane_policy_has_edges(tb),
						 extack);
	}
	return 0;
}

/**
 * insane_policy_check - check a parsed policy attribute set
 * @tb: attributes indexed by enum insane_policy_attr, at least one present
 * @dir: the transmit policy of a device, or its receive policy
 * @extack: where to say what is wrong
 *
 * Return: 0, or -EINVAL with a message naming the attribute (inside a
 * step, the step's attribute).
 */
int insane_policy_check(struct nlattr *const *tb, enum insane_direction dir,
			struct netlink_ext_ack *extack)
{
	int n = insane_policy_check_count(tb, dir, extack);

	return n < 0 ? n : 0;
}
