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
	INSANE_POLICY_NLA
	[INSANE_POLICY_A_RX]		= NLA_POLICY_NESTED(insane_policy_nla),
	[INSANE_POLICY_A_RX_OFF]	= { .type = NLA_FLAG },
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

	err = insane_policy_refuse_dups(attr, extack);
	if (err)
		return err;
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
 * strictly, once, so that nothing is ignored, and refuse a repeated
 * attribute at every level (IFLA_INFO_DATA, INSANE_POLICY_A_RX, each
 * step; INSANE_POLICY_A_STEPS holds repeated INSANE_STEPS_A_STEP by
 * design).
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
	err = insane_policy_refuse_dups(info_data, extack);
	if (err)
		return err;
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
	insane_delay_adopt(ins, INSANE_DIRECTION_TX, p);
	rcu_assign_pointer(ins->policy, p);
	insane_edge_sync_carrier(ins);

	if (lower) {
		err = insane_dev_attach(ins, lower, extack);
		if (err) {
			insane_policy_free(rx);
			unregister_netdevice(dev);
			return err;
		}
	}
	if (rx) {
		err = insane_dev_set_rx_policy(ins, rx, extack);
		if (err) {
			unregister_netdevice(dev);
			return err;
		}
	}
	return 0;
}

/**
 * insane_link_port_err - the errno of a port taken ahead of a change
 * @port: what insane_rx_port_get() returned
 * @extack: where a failed allocation is said, if nothing was said yet
 *
 * Return: 0 or the negative errno in @port.
 */
int insane_link_port_err(struct insane_rx_port *port,
			 struct netlink_ext_ack *extack)
{
	if (!IS_ERR(port))
		return 0;
	if (PTR_ERR(port) == -ENOMEM && extack && !extack->_msg)
		NL_SET_ERR_MSG(extack,
			       "out of memory for the receive hook on the lower device: nothing was changed");
	return PTR_ERR(port);
}

static int insane_changelink(struct net_device *dev, struct nlattr *tb[],
			     struct nlattr *data[],
			     struct netlink_ext_ack *extack)
{
	struct nlattr *tx[INSANE_POLICY_A_MAX + 1];
	struct insane_dev *ins = netdev_priv(dev);
	struct insane_policy *p = NULL, *rx;
	struct insane_rx_port *port;
	struct net_device *lower;
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
	if (rx) {
		err = insane_rx_capable(ins, rtnl_dereference(ins->lower),
					NULL, extack);
		if (err) {
			insane_policy_free(p);
			insane_policy_free(rx);
			return err;
		}
	}
	/*
	 * All or nothing: whether the hooks can be had is checked, and the
	 * lower's hook (the one step that allocates) installed, before
	 * anything changes; insane_rx_set_policy() then finds that hook and
	 * cannot fail. Until then the new hook has no device, so it passes
	 * every packet on.
	 */
	if (rx && !rtnl_dereference(ins->rx_policy)) {
		lower = rtnl_dereference(ins->lower);
		err = insane_rx_check(ins, lower, extack);
		if (!err && lower) {
			port = insane_rx_port_get(lower, extack);
			err = insane_link_port_err(port, extack);
		}
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
		err = insane_dev_set_rx_policy(ins, rx, extack);
		if (WARN_ON_ONCE(err))
			return err;
		insane_link_event(ins, INSANE_EVENT_RX_POLICY);
	} else if (data[INSANE_POLICY_A_RX_OFF] &&
		   rtnl_dereference(ins->rx_policy)) {
		insane_dev_set_rx_policy(ins, NULL, NULL);
		insane_link_event(ins, INSANE_EVENT_RX_POLICY);
	}
	return 0;
}

/*
 * The room IFLA_INFO_DATA leaves, at least, for what rtnetlink puts after
 * IFLA_LINKINFO in a link message (IFLA_AF_SPEC of inet and inet6, about
 * 1 KB, the netns id, the permanent address, alternative names). A full
 * policy that would leave less is written compact in a dump; get_size
 * counts this room too, so that a message sized by it always takes the
 * full policy.
 */
#define INSANE_LINK_TAIL_ROOM 2048

static size_t insane_get_size(const struct net_device *dev)
{
	return insane_policy_nlmsg_size() +
	       nla_total_size(insane_policy_nlmsg_size()) +	/* RX */
	       INSANE_LINK_TAIL_ROOM;
}

static int insane_fill_policies(struct sk_buff *skb, struct insane_dev *ins,
				bool compact)
{
	int (*fill)(struct sk_buff *skb, const struct insane_policy *p);
	struct insane_policy *rx = rtnl_dereference(ins->rx_policy);
	struct nlattr *nest;

	fill = compact ? insane_policy_fill_compact : insane_policy_fill;
	if (fill(skb, rtnl_dereference(ins->policy)))
		return -EMSGSIZE;
	if (!rx)
		return 0;
	nest = nla_nest_start(skb, INSANE_POLICY_A_RX);
	if (!nest || fill(skb, rx))
		return -EMSGSIZE;
	nla_nest_end(skb, nest);
	return 0;
}

/* Whether the link message being built is the first one in @skb. */
static bool insane_fill_first(struct sk_buff *skb, const struct net_device *dev)
{
	struct nlmsghdr *nlh = nlmsg_hdr(skb);
	struct ifinfomsg *ifm;

	if (skb->len < NLMSG_HDRLEN + sizeof(*ifm) ||
	    nlh->nlmsg_type != RTM_NEWLINK)
		return false;
	ifm = nlmsg_data(nlh);
	return ifm->ifi_index == dev->ifindex;
}

/*
 * The full policies if they fit with INSANE_LINK_TAIL_ROOM to spare. Else,
 * in the first message of @skb (a dump's fresh buffer: a reader whose
 * buffer is this small would never get the full form), the compact form
 * ("Long policies" in the uapi header); in a later message, -EMSGSIZE, so
 * that the dump resumes with this device in a fresh buffer.
 */
static int insane_fill_info(struct sk_buff *skb, const struct net_device *dev)
{
	struct insane_dev *ins = netdev_priv(dev);
	void *mark = skb_tail_pointer(skb);

	if (!insane_fill_policies(skb, ins, false) &&
	    skb_tailroom(skb) >= INSANE_LINK_TAIL_ROOM)
		return 0;
	nlmsg_trim(skb, mark);
	if (!insane_fill_first(skb, dev))
		return -EMSGSIZE;
	if (insane_fill_policies(skb, ins, true)) {
		nlmsg_trim(skb, mark);
		return -EMSGSIZE;
	}
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
				insane_edge_sync_carrier(netdev_priv(upper));
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
