// SPDX-License-Identifier: GPL-2.0
/*
 * The "insane" link type (rtnl_link_ops: ip link add ... type insane) and
 * the netdevice notifier that follows each insane device's lower device.
 */

#include "device.h"
#include "link.h"
#include "policy.h"
#include "route.h"
#include "rx.h"

#include <linux/netdevice.h>
#include <linux/rtnetlink.h>
#include <net/rtnetlink.h>

/* Under RTNL. NULL until the generic netlink family is registered. */
static insane_event_fn insane_event_hook;

/* Caller holds RTNL. */
void insane_link_set_event_fn(insane_event_fn fn)
{
	ASSERT_RTNL();
	insane_event_hook = fn;
}

/* Tells user space of a change of @ins, if anyone can listen yet. */
void insane_link_event(struct insane_dev *ins, enum insane_event event)
{
	ASSERT_RTNL();
	if (insane_event_hook)
		insane_event_hook(ins, event);
}

/*
 * IFLA_INFO_DATA: the transmit policy's attributes (insane_policy_nla's,
 * entry for entry), and the receive policy nested in INSANE_POLICY_A_RX or
 * turned off by INSANE_POLICY_A_RX_OFF. Inside the nest, and in the steps
 * of a schedule, strict validation refuses INSANE_POLICY_A_RX and _RX_OFF
 * (NLA_UNSPEC in insane_policy_nla).
 */
static const struct nla_policy insane_link_nla[INSANE_POLICY_A_MAX + 1] = {
	[INSANE_POLICY_A_MODE]		= { .type = NLA_U32 },
	[INSANE_POLICY_A_PERCENT]	= { .type = NLA_U32 },
	[INSANE_POLICY_A_SEED]		= { .type = NLA_U64 },
	[INSANE_POLICY_A_ON_NS]		= { .type = NLA_U64 },
	[INSANE_POLICY_A_OFF_NS]	= { .type = NLA_U64 },
	[INSANE_POLICY_A_RX]		= NLA_POLICY_NESTED(insane_policy_nla),
	[INSANE_POLICY_A_RX_OFF]	= { .type = NLA_FLAG },
	[INSANE_POLICY_A_BURST]		= { .type = NLA_U32 },
	[INSANE_POLICY_A_GE_P]		= { .type = NLA_U32 },
	[INSANE_POLICY_A_GE_R]		= { .type = NLA_U32 },
	[INSANE_POLICY_A_GE_LOSS_BAD]	= { .type = NLA_U32 },
	[INSANE_POLICY_A_GE_LOSS_GOOD]	= { .type = NLA_U32 },
	[INSANE_POLICY_A_STEPS]		= NLA_POLICY_NESTED(insane_steps_nla),
	[INSANE_POLICY_A_DURATION_NS]	= { .type = NLA_U64 },
	[INSANE_POLICY_A_ONCE]		= { .type = NLA_FLAG },
	[INSANE_POLICY_A_STEP_INDEX]	= { .type = NLA_U32 },
	[INSANE_POLICY_A_STEP_LEFT_NS]	= { .type = NLA_U64 },
	[INSANE_POLICY_A_CARRIER]	= { .type = NLA_FLAG },
	[INSANE_POLICY_A_EVENTS]	= { .type = NLA_FLAG },
};

/* The transmit policy's attributes of @data (which may be NULL) in @tx. */
static struct nlattr **insane_link_tx(struct nlattr *data[],
				      struct nlattr *tx[])
{
	if (!data)
		return NULL;
	memcpy(tx, data, sizeof(*tx) * (INSANE_POLICY_A_MAX + 1));
	tx[INSANE_POLICY_A_RX] = NULL;
	tx[INSANE_POLICY_A_RX_OFF] = NULL;
	return tx;
}

/* Parses and checks the receive policy nested in @attr into @rx. */
static int insane_link_rx(struct nlattr *attr, struct nlattr *rx[],
			  struct netlink_ext_ack *extack)
{
	int err;

	err = nla_parse_nested(rx, INSANE_POLICY_A_MAX, attr,
			       insane_policy_nla, extack);
	if (err)
		return err;
	if (!insane_policy_present(rx)) {
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "INSANE_POLICY_A_RX is empty: INSANE_POLICY_A_MODE is required");
		return -EINVAL;
	}
	return insane_policy_check(rx, INSANE_DIRECTION_RX, extack);
}

/* Builds the receive policy of @data, NULL if it has none. */
static struct insane_policy *insane_link_build_rx(struct nlattr *data[],
						  struct netlink_ext_ack *extack)
{
	struct nlattr *rx[INSANE_POLICY_A_MAX + 1];
	int err;

	if (!data || !data[INSANE_POLICY_A_RX])
		return NULL;
	err = insane_link_rx(data[INSANE_POLICY_A_RX], rx, extack);
	if (err)
		return ERR_PTR(err);
	return insane_policy_build(rx, INSANE_DIRECTION_RX, extack);
}

/*
 * rtnetlink parses IFLA_INFO_DATA liberally, skipping attributes it does
 * not know, and keeps the last of repeated ones. Validate it again
 * strictly, once, so that nothing is ignored.
 */
static int insane_validate(struct nlattr *tb[], struct nlattr *data[],
			   struct netlink_ext_ack *extack)
{
	struct nlattr *tx[INSANE_POLICY_A_MAX + 1];
	struct nlattr *rx[INSANE_POLICY_A_MAX + 1];
	struct nlattr *attr, *info_data = NULL;
	int rem, err;

	if (!tb[IFLA_LINKINFO])
		return 0;
	nla_for_each_nested(attr, tb[IFLA_LINKINFO], rem) {
		if (nla_type(attr) != IFLA_INFO_DATA)
			continue;
		if (info_data) {
			NL_SET_ERR_MSG_ATTR(extack, attr,
					    "IFLA_INFO_DATA is given more than once");
			return -EINVAL;
		}
		info_data = attr;
	}
	if (!info_data)
		return 0;
	err = nla_validate_nested(info_data, INSANE_POLICY_A_MAX,
				  insane_link_nla, extack);
	if (err)
		return err;
	if (data[INSANE_POLICY_A_RX] && data[INSANE_POLICY_A_RX_OFF]) {
		NL_SET_ERR_MSG_ATTR(extack, data[INSANE_POLICY_A_RX_OFF],
				    "INSANE_POLICY_A_RX_OFF contradicts INSANE_POLICY_A_RX");
		return -EINVAL;
	}
	if (data[INSANE_POLICY_A_RX]) {
		err = insane_link_rx(data[INSANE_POLICY_A_RX], rx, extack);
		if (err)
			return err;
	}
	insane_link_tx(data, tx);
	if (!insane_policy_present(tx))
		return 0;
	return insane_policy_check(tx, INSANE_DIRECTION_TX, extack);
}

static int insane_newlink(struct net *src_net, struct net_device *dev,
			  struct nlattr *tb[], struct nlattr *data[],
			  struct netlink_ext_ack *extack)
{
	struct nlattr *tx[INSANE_POLICY_A_MAX + 1];
	struct insane_dev *ins = netdev_priv(dev);
	struct insane_policy *p, *rx = NULL;
	struct net_device *lower = NULL;
	int err;

	if (tb[IFLA_LINK]) {
		lower = __dev_get_by_index(src_net, nla_get_u32(tb[IFLA_LINK]));
		if (!lower) {
			NL_SET_ERR_MSG_ATTR(extack, tb[IFLA_LINK],
					    "the lower device (IFLA_LINK) does not exist");
			return -ENODEV;
		}
		err = insane_dev_check_lower(ins, lower, extack);
		if (err)
			return err;
	}
	/* rtnetlink has set dev->mtu from IFLA_MTU within the core's bounds. */
	if (tb[IFLA_MTU]) {
		if (lower && dev->mtu > lower->mtu) {
			NL_SET_ERR_MSG_ATTR(extack, tb[IFLA_MTU],
					    "the MTU is above the lower device's MTU");
			return -EINVAL;
		}
		ins->mtu_user = true;
	}

	p = insane_policy_build(insane_link_tx(data, tx), INSANE_DIRECTION_TX,
				extack);
	if (IS_ERR(p))
		return PTR_ERR(p);
	rx = insane_link_build_rx(data, extack);
	if (IS_ERR(rx)) {
		insane_policy_free(p);
		return PTR_ERR(rx);
	}
	err = rx ? insane_rx_capable(ins, lower, NULL, extack) : 0;
	if (err) {
		insane_policy_free(p);
		insane_policy_free(rx);
		return err;
	}

	err = register_netdevice(dev);
	if (err) {
		insane_policy_free(p);
		insane_policy_free(rx);
		return err;
	}
	/*
	 * The device cannot be up before the caller drops RTNL, so no packet
	 * reaches insane_xmit() before the policy is in place.
	 */
	rcu_assign_pointer(ins->policy, p);
	insane_dev_sync_carrier(ins);

	if (lower) {
		err = insane_dev_attach(ins, lower, extack);
		if (err) {
			insane_policy_free(rx);
			unregister_netdevice(dev);
			return err;
		}
	}
	if (rx) {
		err = insane_rx_set_policy(ins, rx, extack);
		if (err) {
			unregister_netdevice(dev);
			return err;
		}
	}
	return 0;
}

static int insane_changelink(struct net_device *dev, struct nlattr *tb[],
			     struct nlattr *data[],
			     struct netlink_ext_ack *extack)
{
	struct nlattr *tx[INSANE_POLICY_A_MAX + 1];
	struct insane_dev *ins = netdev_priv(dev);
	struct insane_policy *p = NULL, *rx;
	int err;

	if (!data)
		return 0;
	if (insane_policy_present(insane_link_tx(data, tx))) {
		p = insane_policy_build(tx, INSANE_DIRECTION_TX, extack);
		if (IS_ERR(p))
			return PTR_ERR(p);
	}
	rx = insane_link_build_rx(data, extack);
	if (IS_ERR(rx)) {
		insane_policy_free(p);
		return PTR_ERR(rx);
	}
	/* Checked before anything changes; after, only ENOMEM can fail. */
	if (rx) {
		err = insane_rx_capable(ins, rtnl_dereference(ins->lower),
					NULL, extack);
		if (err) {
			insane_policy_free(p);
			insane_policy_free(rx);
			return err;
		}
	}
	if (rx && !rtnl_dereference(ins->rx_policy)) {
		err = insane_rx_check(ins, rtnl_dereference(ins->lower),
				      extack);
		if (err) {
			insane_policy_free(p);
			insane_policy_free(rx);
			return err;
		}
	}

	if (p) {
		insane_dev_replace_policy(ins, p);
		insane_link_event(ins, INSANE_EVENT_POLICY);
	}
	if (rx) {
		err = insane_rx_set_policy(ins, rx, extack);
		if (err)
			return err;
		insane_link_event(ins, INSANE_EVENT_RX_POLICY);
	} else if (data[INSANE_POLICY_A_RX_OFF] &&
		   rtnl_dereference(ins->rx_policy)) {
		insane_rx_set_policy(ins, NULL, NULL);
		insane_link_event(ins, INSANE_EVENT_RX_POLICY);
	}
	return 0;
}

static size_t insane_get_size(const struct net_device *dev)
{
	return insane_policy_nlmsg_size() +
	       nla_total_size(insane_policy_nlmsg_size());	/* RX */
}

static int insane_fill_info(struct sk_buff *skb, const struct net_device *dev)
{
	struct insane_dev *ins = netdev_priv(dev);
	struct insane_policy *rx = rtnl_dereference(ins->rx_policy);
	struct nlattr *nest;

	if (insane_policy_fill(skb, rtnl_dereference(ins->policy)))
		return -EMSGSIZE;
	if (!rx)
		return 0;
	nest = nla_nest_start(skb, INSANE_POLICY_A_RX);
	if (!nest)
		return -EMSGSIZE;
	if (insane_policy_fill(skb, rx)) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

static size_t insane_get_xstats_size(const struct net_device *dev)
{
	return insane_dev_stats_size();
}

static int insane_fill_xstats(struct sk_buff *skb, const struct net_device *dev)
{
	return insane_dev_fill_stats(skb, netdev_priv(dev), IFLA_INFO_XSTATS);
}

static struct net *insane_get_link_net(const struct net_device *dev)
{
	struct insane_dev *ins = netdev_priv(dev);
	struct net_device *lower = rtnl_dereference(ins->lower);

	return lower ? dev_net(lower) : dev_net(dev);
}

static struct rtnl_link_ops insane_link_ops __read_mostly = {
	.kind		= INSANE_LINK_KIND,
	.priv_size	= sizeof(struct insane_dev),
	.setup		= insane_dev_setup,
	.maxtype	= INSANE_POLICY_A_MAX,
	.policy		= insane_link_nla,
	.validate	= insane_validate,
	.newlink	= insane_newlink,
	.changelink	= insane_changelink,
	.get_size	= insane_get_size,
	.fill_info	= insane_fill_info,
	.get_xstats_size = insane_get_xstats_size,
	.fill_xstats	= insane_fill_xstats,
	.get_link_net	= insane_get_link_net,
};

/* Notifier: only events of a device that some insane device stacks on. */
static int insane_lower_event(struct notifier_block *nb, unsigned long event,
			      void *ptr)
{
	struct net_device *lower = netdev_notifier_info_to_dev(ptr);
	struct net_device *upper;
	struct list_head *iter;
	struct insane_dev *ins;

	switch (event) {
	case NETDEV_UNREGISTER:
		/* A move to another netns unregisters without removing. */
		if (lower->reg_state != NETREG_UNREGISTERING) {
			netdev_for_each_upper_dev_rcu(lower, upper, iter)
				if (netif_is_insane(upper))
					insane_routes_invalidate(netdev_priv(upper));
			break;
		}
restart:
		/* Detaching unlinks, which changes the list being walked. */
		netdev_for_each_upper_dev_rcu(lower, upper, iter) {
			if (!netif_is_insane(upper))
				continue;
			ins = netdev_priv(upper);
			insane_dev_detach(ins);
			if (upper->reg_state == NETREG_REGISTERED)
				insane_link_event(ins, INSANE_EVENT_DETACH);
			goto restart;
		}
		break;
	case NETDEV_CHANGEMTU:
		netdev_for_each_upper_dev_rcu(lower, upper, iter)
			if (netif_is_insane(upper))
				insane_dev_follow_lower_mtu(netdev_priv(upper),
							    lower);
		break;
	case NETDEV_FEAT_CHANGE:
		netdev_for_each_upper_dev_rcu(lower, upper, iter)
			if (netif_is_insane(upper))
				insane_dev_follow_lower_tso(netdev_priv(upper),
							    lower);
		break;
	case NETDEV_UP:
	case NETDEV_DOWN:
	case NETDEV_CHANGE:
		netdev_for_each_upper_dev_rcu(lower, upper, iter)
			if (netif_is_insane(upper))
				insane_dev_sync_carrier(netdev_priv(upper));
		break;
	}
	return NOTIFY_DONE;
}

static struct notifier_block insane_notifier = {
	.notifier_call = insane_lower_event,
};

int __init insane_link_init(void)
{
	int err;

	err = register_netdevice_notifier(&insane_notifier);
	if (err)
		return err;
	err = rtnl_link_register(&insane_link_ops);
	if (err)
		goto err_link;
	return 0;

err_link:
	unregister_netdevice_notifier(&insane_notifier);
	return err;
}

void insane_link_uninit(void)
{
	rtnl_link_unregister(&insane_link_ops);
	unregister_netdevice_notifier(&insane_notifier);
}
