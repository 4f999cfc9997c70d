// SPDX-License-Identifier: GPL-2.0
/*
 * Drop policies: one parser for IFLA_INFO_DATA and INSANE_DEVICE_A_POLICY.
 */

#include "policy.h"

#include <linux/bits.h>
#include <linux/slab.h>

DEFINE_PER_CPU(u64, insane_rng);

/* Starts each CPU's unseeded sequence at its own random point. */
void insane_policy_init(void)
{
	int cpu;

	for_each_possible_cpu(cpu)
		per_cpu(insane_rng, cpu) = get_random_u64();
}

/*
 * Ranges are checked by insane_policy_check() rather than by the policy
 * table, so that each refusal names the attribute and says what is allowed.
 * INSANE_POLICY_A_PAD stays NLA_UNSPEC: strict validation refuses it.
 */
const struct nla_policy insane_policy_nla[INSANE_POLICY_A_MAX + 1] = {
	[INSANE_POLICY_A_MODE]		= { .type = NLA_U32 },
	[INSANE_POLICY_A_PERCENT]	= { .type = NLA_U32 },
	[INSANE_POLICY_A_SEED]		= { .type = NLA_U64 },
	[INSANE_POLICY_A_ON_NS]		= { .type = NLA_U64 },
	[INSANE_POLICY_A_OFF_NS]	= { .type = NLA_U64 },
};

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
				    "INSANE_POLICY_A_PERCENT is only valid in percent mode");
		break;
	case INSANE_POLICY_A_SEED:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_SEED is only valid in percent mode");
		break;
	case INSANE_POLICY_A_ON_NS:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_ON_NS is only valid in time mode");
		break;
	case INSANE_POLICY_A_OFF_NS:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_OFF_NS is only valid in time mode");
		break;
	default:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "this policy attribute is not valid in the given mode");
		break;
	}
}

static void insane_policy_missing(struct netlink_ext_ack *extack,
				  const struct nlattr *attr, int type)
{
	switch (type) {
	case INSANE_POLICY_A_PERCENT:
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
	default:
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "a policy attribute that the mode requires is missing");
		break;
	}
}

/* The attributes each mode allows and requires, besides the mode. */
static const struct {
	unsigned long allowed;
	unsigned long required;
} insane_mode_attrs[INSANE_MODE_MAX + 1] = {
	[INSANE_MODE_PASS] = { 0, 0 },
	[INSANE_MODE_PERCENT] = {
		BIT(INSANE_POLICY_A_PERCENT) | BIT(INSANE_POLICY_A_SEED),
		BIT(INSANE_POLICY_A_PERCENT) },
	[INSANE_MODE_TIME] = {
		BIT(INSANE_POLICY_A_ON_NS) | BIT(INSANE_POLICY_A_OFF_NS),
		BIT(INSANE_POLICY_A_ON_NS) | BIT(INSANE_POLICY_A_OFF_NS) },
};

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
	return 0;
}

/**
 * insane_policy_check - check a parsed policy attribute set
 * @tb: attributes indexed by enum insane_policy_attr, at least one present
 * @extack: where to say what is wrong
 *
 * Return: 0, or -EINVAL with a message naming the attribute.
 */
int insane_policy_check(struct nlattr *const *tb,
			struct netlink_ext_ack *extack)
{
	unsigned long allowed, required;
	u32 mode;
	int i;

	if (!tb[INSANE_POLICY_A_MODE]) {
		NL_SET_ERR_MSG_ATTR(extack, insane_policy_first(tb),
				    "INSANE_POLICY_A_MODE is required with any policy attribute");
		return -EINVAL;
	}
	mode = nla_get_u32(tb[INSANE_POLICY_A_MODE]);
	if (mode > INSANE_MODE_MAX) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_MODE],
				    "INSANE_POLICY_A_MODE is not a known mode (pass 0, percent 1, time 2)");
		return -EINVAL;
	}
	allowed = insane_mode_attrs[mode].allowed;
	required = insane_mode_attrs[mode].required;

	for (i = INSANE_POLICY_A_MODE + 1; i <= INSANE_POLICY_A_MAX; i++) {
		if (tb[i] && !(allowed & BIT(i))) {
			insane_policy_misplaced(extack, tb[i], i);
			return -EINVAL;
		}
		if (!tb[i] && (required & BIT(i))) {
			insane_policy_missing(extack, insane_policy_first(tb), i);
			return -EINVAL;
		}
	}

	if (mode == INSANE_MODE_PERCENT &&
	    nla_get_u32(tb[INSANE_POLICY_A_PERCENT]) > INSANE_PERCENT_MAX) {
		NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_PERCENT],
				    "INSANE_POLICY_A_PERCENT is above 100 percent (100000000)");
		return -EINVAL;
	}
	if (mode == INSANE_MODE_TIME)
		return insane_policy_check_time(tb, extack);
	return 0;
}

/**
 * insane_policy_build - allocate a policy from its attributes
 * @tb: attributes indexed by enum insane_policy_attr, or NULL
 * @extack: where to say what is wrong
 *
 * With no attribute at all the policy is pass. The phase of time mode and
 * the packet index of seeded percent mode start now.
 *
 * Return: the policy, or an ERR_PTR.
 */
struct insane_policy *insane_policy_build(struct nlattr *const *tb,
					  struct netlink_ext_ack *extack)
{
	struct insane_policy *p;
	int err;

	if (insane_policy_present(tb)) {
		err = insane_policy_check(tb, extack);
		if (err)
			return ERR_PTR(err);
	}

	p = kzalloc(sizeof(*p), GFP_KERNEL);
	if (!p)
		return ERR_PTR(-ENOMEM);

	p->mode = INSANE_MODE_PASS;
	if (insane_policy_present(tb)) {
		p->mode = nla_get_u32(tb[INSANE_POLICY_A_MODE]);
		if (tb[INSANE_POLICY_A_PERCENT]) {
			p->percent = nla_get_u32(tb[INSANE_POLICY_A_PERCENT]);
			p->threshold =
				DIV_ROUND_UP_ULL((u64)p->percent << 32,
						 INSANE_PERCENT_MAX);
		}
		if (tb[INSANE_POLICY_A_SEED]) {
			p->seeded = true;
			p->seed = nla_get_u64(tb[INSANE_POLICY_A_SEED]);
		}
		if (tb[INSANE_POLICY_A_ON_NS]) {
			p->on_ns = nla_get_u64(tb[INSANE_POLICY_A_ON_NS]);
			p->period_ns = p->on_ns +
				       nla_get_u64(tb[INSANE_POLICY_A_OFF_NS]);
		}
	}
	atomic64_set(&p->next, 0);
	p->epoch_ns = ktime_get_ns();
	return p;
}

/* Puts the policy's attributes, not nested, into @skb. */
int insane_policy_fill(struct sk_buff *skb, const struct insane_policy *p)
{
	if (nla_put_u32(skb, INSANE_POLICY_A_MODE, p->mode))
		return -EMSGSIZE;
	switch (p->mode) {
	case INSANE_MODE_PERCENT:
		if (nla_put_u32(skb, INSANE_POLICY_A_PERCENT, p->percent))
			return -EMSGSIZE;
		if (p->seeded &&
		    nla_put_u64_64bit(skb, INSANE_POLICY_A_SEED, p->seed,
				      INSANE_POLICY_A_PAD))
			return -EMSGSIZE;
		break;
	case INSANE_MODE_TIME:
		if (nla_put_u64_64bit(skb, INSANE_POLICY_A_ON_NS, p->on_ns,
				      INSANE_POLICY_A_PAD) ||
		    nla_put_u64_64bit(skb, INSANE_POLICY_A_OFF_NS,
				      p->period_ns - p->on_ns,
				      INSANE_POLICY_A_PAD))
			return -EMSGSIZE;
		break;
	}
	return 0;
}

/* The most that insane_policy_fill() puts. */
size_t insane_policy_nlmsg_size(void)
{
	return nla_total_size(sizeof(u32)) +		/* MODE */
	       nla_total_size(sizeof(u32)) +		/* PERCENT */
	       nla_total_size_64bit(sizeof(u64)) * 3;	/* SEED, ON, OFF */
}
