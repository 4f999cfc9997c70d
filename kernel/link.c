// SPDX-License-Identifier: GPL-2.0
/*
 * The "insane" link type (rtnl_link_ops: ip link add ... type insane) and
 * the netdevice notifier that follows each insane device's lower device.
 */

#include "device.h"
#include "link.h"
#include "policy.h"
#include "route.h"

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
 * rtnetlink parses IFLA_INFO_DATA liberally, skipping attributes it does
 * not know, and keeps the last of repeated ones. Validate it again
 * strictly, once, so that nothing is ignored.
 */
static int insane_validate(struct nlattr *tb[], struct nlattr *data[],
			   struct netlink_ext_ack *extack)
{
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
				  insane_policy_nla, extack);
	if (err)
		return err;
	if (!insane_policy_present(data))
		return 0;
	return insane_policy_check(data, extack);
}

static int insane_newlink(struct net *src_net, struct net_device *dev,
			  struct nlattr *tb[], struct nlattr *data[],
			  struct netlink_ext_ack *extack)
{
	struct insane_dev *ins = netdev_priv(dev);
	struct net_device *lower = NULL;
	struct insane_policy *p;
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

	p = insane_policy_build(data, extack);
	if (IS_ERR(p))
		return PTR_ERR(p);

	err = register_netdevice(dev);
	if (err) {
		kfree(p);
		return err;
	}
	/*
	 * The device cannot be up before the caller drops RTNL, so no packet
	 * reaches insane_xmit() before the policy is in place.
	 */
	rcu_assign_pointer(ins->policy, p);
	insane_dev_set_detached_state(dev);

	if (lower) {
		err = insane_dev_attach(ins, lower, extack);
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
	struct insane_dev *ins = netdev_priv(dev);
	struct insane_policy *p;

	if (!insane_policy_present(data))
		return 0;
	p = insane_policy_build(data, extack);
	if (IS_ERR(p))
		return PTR_ERR(p);
	insane_dev_replace_policy(ins, p);
	insane_link_event(ins, INSANE_EVENT_POLICY);
	return 0;
}

static size_t insane_get_size(const struct net_device *dev)
{
	return insane_policy_nlmsg_size();
}

static int insane_fill_info(struct sk_buff *skb, const struct net_device *dev)
{
	struct insane_dev *ins = netdev_priv(dev);

	return insane_policy_fill(skb, rtnl_dereference(ins->policy));
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
	.policy		= insane_policy_nla,
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
				netif_stacked_transfer_operstate(lower, upper);
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
