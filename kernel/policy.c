// SPDX-License-Identifier: GPL-2.0
/*
 * Drop policies: one parser for IFLA_INFO_DATA and INSANE_DEVICE_A_POLICY.
 */

#include "policy.h"

#include <linux/slab.h>

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

/* NL_SET_ERR_MSG_ATTR() takes only literals; these messages are chosen. */
static void insane_extack(struct netlink_ext_ack *extack,
			  const struct nlattr *attr, const char *msg)
{
	if (!extack)
		return;
	extack->_msg = msg;
	extack->bad_attr = attr;
}

/* Refuse @type if present: it does not belong to the mode. */
static int insane_policy_refuse(struct nlattr *const *tb, int type,
				const char *msg,
				struct netlink_ext_ack *extack)
{
	if (!tb[type])
		return 0;
	insane_extack(extack, tb[type], msg);
	return -EINVAL;
}

static int insane_policy_require(struct nlattr *const *tb, int type,
				 const char *msg,
				 struct netlink_ext_ack *extack)
{
	if (tb[type])
		return 0;
	insane_extack(extack, insane_policy_first(tb), msg);
	return -EINVAL;
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
	u64 on, off;
	int err;

	err = insane_policy_require(tb, INSANE_POLICY_A_MODE,
				    "INSANE_POLICY_A_MODE is required with any policy attribute",
				    extack);
	if (err)
		return err;

	switch (nla_get_u32(tb[INSANE_POLICY_A_MODE])) {
	case INSANE_MODE_PASS:
		err = insane_policy_refuse(tb, INSANE_POLICY_A_PERCENT,
					   "INSANE_POLICY_A_PERCENT is only valid in percent mode",
					   extack);
		err = err ?: insane_policy_refuse(tb, INSANE_POLICY_A_SEED,
						  "INSANE_POLICY_A_SEED is only valid in percent mode",
						  extack);
		err = err ?: insane_policy_refuse(tb, INSANE_POLICY_A_ON_NS,
						  "INSANE_POLICY_A_ON_NS is only valid in time mode",
						  extack);
		err = err ?: insane_policy_refuse(tb, INSANE_POLICY_A_OFF_NS,
						  "INSANE_POLICY_A_OFF_NS is only valid in time mode",
						  extack);
		return err;
	case INSANE_MODE_PERCENT:
		err = insane_policy_refuse(tb, INSANE_POLICY_A_ON_NS,
					   "INSANE_POLICY_A_ON_NS is only valid in time mode",
					   extack);
		err = err ?: insane_policy_refuse(tb, INSANE_POLICY_A_OFF_NS,
						  "INSANE_POLICY_A_OFF_NS is only valid in time mode",
						  extack);
		err = err ?: insane_policy_require(tb, INSANE_POLICY_A_PERCENT,
						   "INSANE_POLICY_A_PERCENT is required in percent mode",
						   extack);
		if (err)
			return err;
		if (nla_get_u32(tb[INSANE_POLICY_A_PERCENT]) > INSANE_PERCENT_MAX) {
			NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_PERCENT],
					    "INSANE_POLICY_A_PERCENT is above 100 percent (100000000)");
			return -EINVAL;
		}
		return 0;
	case INSANE_MODE_TIME:
		err = insane_policy_refuse(tb, INSANE_POLICY_A_PERCENT,
					   "INSANE_POLICY_A_PERCENT is only valid in percent mode",
					   extack);
		err = err ?: insane_policy_refuse(tb, INSANE_POLICY_A_SEED,
						  "INSANE_POLICY_A_SEED is only valid in percent mode",
						  extack);
		err = err ?: insane_policy_require(tb, INSANE_POLICY_A_ON_NS,
						   "INSANE_POLICY_A_ON_NS is required in time mode",
						   extack);
		err = err ?: insane_policy_require(tb, INSANE_POLICY_A_OFF_NS,
						   "INSANE_POLICY_A_OFF_NS is required in time mode",
						   extack);
		if (err)
			return err;
		on = nla_get_u64(tb[INSANE_POLICY_A_ON_NS]);
		off = nla_get_u64(tb[INSANE_POLICY_A_OFF_NS]);
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
	NL_SET_ERR_MSG_ATTR(extack, tb[INSANE_POLICY_A_MODE],
			    "INSANE_POLICY_A_MODE is not a known mode (pass 0, percent 1, time 2)");
	return -EINVAL;
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
		if (tb[INSANE_POLICY_A_PERCENT])
			p->percent = nla_get_u32(tb[INSANE_POLICY_A_PERCENT]);
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
