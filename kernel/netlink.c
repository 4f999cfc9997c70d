// SPDX-License-Identifier: GPL-2.0
/*
 * The "insane" generic-netlink family: GET_DEVICE (doit and dump),
 * SET_DEVICE and the "events" multicast group. The attribute tree is
 * documented in include/uapi/linux/insane.h.
 */

#include "device.h"
#include "edge.h"
#include "link.h"
#include "netlink.h"
#include "policy.h"
#include "rx.h"

#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <linux/timekeeping.h>
#include <net/genetlink.h>
#include <net/sock.h>

static struct genl_family insane_genl_family;

enum insane_genl_mcgrp {
	INSANE_GENL_MCGRP_EVENTS_IDX,
};

static const struct genl_multicast_group insane_genl_mcgrps[] = {
	[INSANE_GENL_MCGRP_EVENTS_IDX] = { .name = INSANE_GENL_MCGRP_EVENTS },
};

/* Attributes not listed are NLA_UNSPEC, which strict validation refuses. */
static const struct nla_policy insane_genl_get_nla[INSANE_DEVICE_A_MAX + 1] = {
	[INSANE_DEVICE_A_IFINDEX]	= { .type = NLA_U32 },
	[INSANE_DEVICE_A_IFNAME]	= { .type = NLA_NUL_STRING,
					    .len = IFNAMSIZ - 1 },
};

static const struct nla_policy insane_genl_set_nla[INSANE_DEVICE_A_MAX + 1] = {
	[INSANE_DEVICE_A_IFINDEX]	= { .type = NLA_U32 },
	[INSANE_DEVICE_A_IFNAME]	= { .type = NLA_NUL_STRING,
					    .len = IFNAMSIZ - 1 },
	[INSANE_DEVICE_A_LOWER_IFINDEX]	= { .type = NLA_U32 },
	[INSANE_DEVICE_A_LOWER_IFNAME]	= { .type = NLA_NUL_STRING,
					    .len = IFNAMSIZ - 1 },
	[INSANE_DEVICE_A_FLAGS]		= NLA_POLICY_MASK(NLA_U32,
							  __INSANE_DEVICE_F_ALL),
	[INSANE_DEVICE_A_POLICY]	= NLA_POLICY_NESTED(insane_policy_nla),
	[INSANE_DEVICE_A_RX_POLICY]	= NLA_POLICY_NESTED(insane_policy_nla),
};

static const char * const insane_device_dup_msgs[INSANE_DEVICE_A_MAX + 1] = {
	[INSANE_DEVICE_A_IFINDEX] =
		"INSANE_DEVICE_A_IFINDEX is given more than once",
	[INSANE_DEVICE_A_IFNAME] =
		"INSANE_DEVICE_A_IFNAME is given more than once",
	[INSANE_DEVICE_A_LOWER_IFINDEX] =
		"INSANE_DEVICE_A_LOWER_IFINDEX is given more than once",
	[INSANE_DEVICE_A_LOWER_IFNAME] =
		"INSANE_DEVICE_A_LOWER_IFNAME is given more than once",
	[INSANE_DEVICE_A_FLAGS] =
		"INSANE_DEVICE_A_FLAGS is given more than once",
	[INSANE_DEVICE_A_POLICY] =
		"INSANE_DEVICE_A_POLICY is given more than once",
	[INSANE_DEVICE_A_RX_POLICY] =
		"INSANE_DEVICE_A_RX_POLICY is given more than once",
	[INSANE_DEVICE_A_STATS] =
		"INSANE_DEVICE_A_STATS is given more than once",
	[INSANE_DEVICE_A_EVENT] =
		"INSANE_DEVICE_A_EVENT is given more than once",
	[INSANE_DEVICE_A_EDGE] =
		"INSANE_DEVICE_A_EDGE is given more than once",
};

/*
 * The generic netlink core keeps the last of repeated top-level
 * attributes: refuse them instead, naming the attribute.
 */
static int insane_genl_refuse_dups(struct genl_info *info)
{
	return insane_nla_refuse_dups(nlmsg_attrdata(info->nlhdr, GENL_HDRLEN),
				      nlmsg_attrlen(info->nlhdr, GENL_HDRLEN),
				      INSANE_DEVICE_A_MAX,
				      insane_device_dup_msgs, info->extack);
}

/* The cursor of a GET_DEVICE dump, kept in cb->ctx. */
struct insane_dump_ctx {
	long pos;
};

static_assert(sizeof(struct insane_dump_ctx) <=
	      sizeof_field(struct netlink_callback, ctx));

/*
 * Finds a device by exactly one of @idx_type or @name_type in @net.
 * Caller holds RTNL.
 */
static struct net_device *insane_genl_lookup(struct net *net,
					     struct nlattr **attrs,
					     int idx_type, int name_type,
					     struct netlink_ext_ack *extack)
{
	struct net_device *dev;

	if (attrs[idx_type] && attrs[name_type]) {
		NL_SET_ERR_MSG_ATTR(extack, attrs[name_type],
				    "give a device by index or by name, not both");
		return ERR_PTR(-EINVAL);
	}
	if (attrs[idx_type]) {
		dev = __dev_get_by_index(net, nla_get_u32(attrs[idx_type]));
		if (!dev) {
			NL_SET_ERR_MSG_ATTR(extack, attrs[idx_type],
					    "no device has this index");
			return ERR_PTR(-ENODEV);
		}
		return dev;
	}
	if (attrs[name_type]) {
		dev = __dev_get_by_name(net, nla_data(attrs[name_type]));
		if (!dev) {
			NL_SET_ERR_MSG_ATTR(extack, attrs[name_type],
					    "no device has this name");
			return ERR_PTR(-ENODEV);
		}
		return dev;
	}
	return NULL;
}

static struct insane_dev *insane_genl_get_dev(struct genl_info *info)
{
	struct net_device *dev;

	dev = insane_genl_lookup(genl_info_net(info), info->attrs,
				 INSANE_DEVICE_A_IFINDEX, INSANE_DEVICE_A_IFNAME,
				 info->extack);
	if (IS_ERR(dev))
		return ERR_CAST(dev);
	if (!dev) {
		NL_SET_ERR_MSG(info->extack,
			       "INSANE_DEVICE_A_IFINDEX or INSANE_DEVICE_A_IFNAME is required");
		return ERR_PTR(-EINVAL);
	}
	if (!netif_is_insane(dev)) {
		NL_SET_ERR_MSG_ATTR(info->extack,
				    info->attrs[INSANE_DEVICE_A_IFINDEX] ?:
				    info->attrs[INSANE_DEVICE_A_IFNAME],
				    "the device is not an insane device");
		return ERR_PTR(-EOPNOTSUPP);
	}
	return netdev_priv(dev);
}

static size_t insane_genl_msg_size(void)
{
	return nla_total_size(sizeof(u32)) +		/* EVENT */
	       nla_total_size(sizeof(u32)) +		/* IFINDEX */
	       nla_total_size(IFNAMSIZ) +		/* IFNAME */
	       nla_total_size(sizeof(u32)) +		/* LOWER_IFINDEX */
	       nla_total_size(IFNAMSIZ) +		/* LOWER_IFNAME */
	       nla_total_size(insane_policy_nlmsg_size()) * 2 + /* POLICY, RX */
	       insane_dev_stats_size();
}

/* Puts a device's state into @skb. Caller holds RTNL. */
static int insane_genl_fill_device(struct sk_buff *skb, struct insane_dev *ins)
{
	struct net_device *lower = rtnl_dereference(ins->lower);
	struct insane_policy *rx;
	struct nlattr *nest;

	if (nla_put_u32(skb, INSANE_DEVICE_A_IFINDEX, ins->dev->ifindex) ||
	    nla_put_string(skb, INSANE_DEVICE_A_IFNAME, ins->dev->name))
		return -EMSGSIZE;
	if (lower &&
	    (nla_put_u32(skb, INSANE_DEVICE_A_LOWER_IFINDEX, lower->ifindex) ||
	     nla_put_string(skb, INSANE_DEVICE_A_LOWER_IFNAME, lower->name)))
		return -EMSGSIZE;

	nest = nla_nest_start(skb, INSANE_DEVICE_A_POLICY);
	if (!nest)
		return -EMSGSIZE;
	if (insane_policy_fill(skb, rtnl_dereference(ins->policy))) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);

	rx = rtnl_dereference(ins->rx_policy);
	if (rx) {
		nest = nla_nest_start(skb, INSANE_DEVICE_A_RX_POLICY);
		if (!nest)
			return -EMSGSIZE;
		if (insane_policy_fill(skb, rx)) {
			nla_nest_cancel(skb, nest);
			return -EMSGSIZE;
		}
		nla_nest_end(skb, nest);
	}

	return insane_dev_fill_stats(skb, ins, INSANE_DEVICE_A_STATS);
}

static int insane_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct insane_dev *ins;
	struct sk_buff *msg;
	void *hdr;
	int err;

	err = insane_genl_refuse_dups(info);
	if (err)
		return err;
	msg = genlmsg_new(insane_genl_msg_size(), GFP_KERNEL);
	if (!msg)
		return -ENOMEM;

	rtnl_lock();
	ins = insane_genl_get_dev(info);
	if (IS_ERR(ins)) {
		err = PTR_ERR(ins);
		goto err_unlock;
	}
	hdr = genlmsg_put_reply(msg, info, &insane_genl_family, 0,
				INSANE_CMD_GET_DEVICE);
	if (!hdr) {
		err = -EMSGSIZE;
		goto err_unlock;
	}
	err = insane_genl_fill_device(msg, ins);
	if (err)
		goto err_unlock;
	rtnl_unlock();

	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);

err_unlock:
	rtnl_unlock();
	nlmsg_free(msg);
	return err;
}

/*
 * A device with schedules of many steps makes a message larger than the
 * dump's default buffer (NLMSG_GOODSIZE): make room for the largest.
 */
static int insane_get_dump_start(struct netlink_callback *cb)
{
	cb->min_dump_alloc = nlmsg_total_size(GENL_HDRLEN +
					      insane_genl_msg_size());
	return 0;
}

static int insane_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	const struct genl_dumpit_info *info = genl_dumpit_info(cb);
	struct insane_dump_ctx *ctx = (struct insane_dump_ctx *)cb->ctx;
	struct net *net = sock_net(skb->sk);
	struct net_device *dev;
	long pos = 0;
	int i, err = 0;
	void *hdr;

	for (i = 1; i <= INSANE_DEVICE_A_MAX; i++) {
		if (info->attrs[i]) {
			NL_SET_ERR_MSG_ATTR(cb->extack, info->attrs[i],
					    "a GET_DEVICE dump takes no attribute");
			return -EINVAL;
		}
	}

	rtnl_lock();
	cb->seq = net->dev_base_seq;
	for_each_netdev(net, dev) {
		if (!netif_is_insane(dev))
			continue;
		if (pos++ < ctx->pos)
			continue;
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
				  cb->nlh->nlmsg_seq, &insane_genl_family,
				  NLM_F_MULTI, INSANE_CMD_GET_DEVICE);
		if (!hdr) {
			err = -EMSGSIZE;
			break;
		}
		genl_dump_check_consistent(cb, hdr);
		err = insane_genl_fill_device(skb, netdev_priv(dev));
		if (err) {
			genlmsg_cancel(skb, hdr);
			break;
		}
		genlmsg_end(skb, hdr);
		ctx->pos = pos;
	}
	rtnl_unlock();

	/* A full buffer ends this part; the next call resumes at ctx->pos. */
	if (err == -EMSGSIZE && skb->len)
		return skb->len;
	return err ?: skb->len;
}

/*
 * Builds the policy nested in @attr. The messages name the attribute;
 * strict validation has refused INSANE_POLICY_A_RX and _RX_OFF in it.
 */
static struct insane_policy *insane_genl_build_policy(struct nlattr *attr,
						      bool rx,
						      struct netlink_ext_ack *extack)
{
	struct nlattr *ptb[INSANE_POLICY_A_MAX + 1];
	int err;

	err = insane_policy_refuse_dups(attr, extack);
	if (err)
		return ERR_PTR(err);
	err = nla_parse_nested(ptb, INSANE_POLICY_A_MAX, attr,
			       insane_policy_nla, extack);
	if (err)
		return ERR_PTR(err);
	if (!insane_policy_present(ptb)) {
		if (rx)
			NL_SET_ERR_MSG_ATTR(extack, attr,
					    "INSANE_DEVICE_A_RX_POLICY is empty: INSANE_POLICY_A_MODE is required");
		else
			NL_SET_ERR_MSG_ATTR(extack, attr,
					    "INSANE_DEVICE_A_POLICY is empty: INSANE_POLICY_A_MODE is required");
		return ERR_PTR(-EINVAL);
	}
	return insane_policy_build(ptb,
				   rx ? INSANE_DIRECTION_RX : INSANE_DIRECTION_TX,
				   extack);
}

static int insane_set_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct insane_policy *p = NULL, *rx = NULL;
	struct insane_rx_port *port = NULL;
	struct net_device *lower, *target;
	struct insane_dev *ins;
	u32 flags = 0;
	int err;

	err = insane_genl_refuse_dups(info);
	if (err)
		return err;
	if (info->attrs[INSANE_DEVICE_A_FLAGS])
		flags = nla_get_u32(info->attrs[INSANE_DEVICE_A_FLAGS]);
	if ((flags & INSANE_DEVICE_F_RX_OFF) &&
	    info->attrs[INSANE_DEVICE_A_RX_POLICY]) {
		NL_SET_ERR_MSG_ATTR(info->extack,
				    info->attrs[INSANE_DEVICE_A_FLAGS],
				    "INSANE_DEVICE_F_RX_OFF contradicts INSANE_DEVICE_A_RX_POLICY in the same request");
		return -EINVAL;
	}

	/* Build the policies first: it is the only step that allocates. */
	if (info->attrs[INSANE_DEVICE_A_POLICY]) {
		p = insane_genl_build_policy(info->attrs[INSANE_DEVICE_A_POLICY],
					     false, info->extack);
		if (IS_ERR(p))
			return PTR_ERR(p);
	}
	if (info->attrs[INSANE_DEVICE_A_RX_POLICY]) {
		rx = insane_genl_build_policy(info->attrs[INSANE_DEVICE_A_RX_POLICY],
					      true, info->extack);
		if (IS_ERR(rx)) {
			insane_policy_free(p);
			return PTR_ERR(rx);
		}
	}

	rtnl_lock();
	ins = insane_genl_get_dev(info);
	if (IS_ERR(ins)) {
		err = PTR_ERR(ins);
		goto out;
	}

	lower = insane_genl_lookup(dev_net(ins->dev), info->attrs,
				   INSANE_DEVICE_A_LOWER_IFINDEX,
				   INSANE_DEVICE_A_LOWER_IFNAME, info->extack);
	if (IS_ERR(lower)) {
		err = PTR_ERR(lower);
		goto out;
	}
	if (lower && (flags & INSANE_DEVICE_F_DETACH)) {
		NL_SET_ERR_MSG_ATTR(info->extack,
				    info->attrs[INSANE_DEVICE_A_FLAGS],
				    "INSANE_DEVICE_F_DETACH contradicts a lower device in the same request");
		err = -EINVAL;
		goto out;
	}

	/*
	 * All or nothing. Attaching is the one step that can fail after
	 * this, and it fails with nothing changed. Turning the receive
	 * policy on needs the hooks: whether they can be had on the lower
	 * the device will have is checked, and that lower's hook (the one
	 * allocation) installed, before anything changes; until the device
	 * joins it, the new hook passes every packet on, and an error takes
	 * it away again. insane_rx_set_policy() then finds it and cannot
	 * fail.
	 */
	if (rx || (lower && rtnl_dereference(ins->rx_policy))) {
		err = insane_rx_capable(ins,
					lower ?: rtnl_dereference(ins->lower),
					skb, info->extack);
		if (err)
			goto out;
	}
	if (rx && !rtnl_dereference(ins->rx_policy)) {
		target = lower ?: rtnl_dereference(ins->lower);
		err = insane_rx_check(ins, target, info->extack);
		if (err)
			goto out;
		if (target) {
			port = insane_rx_port_get(target, info->extack);
			err = insane_link_port_err(port, info->extack);
			if (err) {
				port = NULL;
				goto out;
			}
		}
	}
	if (lower && lower != rtnl_dereference(ins->lower)) {
		/* With the receive policy on, it takes the new lower's hook. */
		err = insane_dev_attach(ins, lower, info->extack);
		if (err) {
			if (err == -ENOMEM && !info->extack->_msg)
				NL_SET_ERR_MSG(info->extack,
					       "out of memory for the receive hook on the new lower device: nothing was changed");
			goto out;
		}
		insane_genl_notify(ins, INSANE_EVENT_ATTACH);
	}
	if (rx) {
		port = NULL;
		err = insane_dev_set_rx_policy(ins, rx, info->extack);
		rx = NULL;
		if (WARN_ON_ONCE(err))
			goto out;
		insane_genl_notify(ins, INSANE_EVENT_RX_POLICY);
	}
	if ((flags & INSANE_DEVICE_F_DETACH) && rtnl_dereference(ins->lower)) {
		insane_dev_detach(ins);
		insane_genl_notify(ins, INSANE_EVENT_DETACH);
	}
	if ((flags & INSANE_DEVICE_F_RX_OFF) &&
	    rtnl_dereference(ins->rx_policy)) {
		insane_dev_set_rx_policy(ins, NULL, NULL);
		insane_genl_notify(ins, INSANE_EVENT_RX_POLICY);
	}
	if (p) {
		insane_dev_replace_policy(ins, p);
		p = NULL;
		insane_genl_notify(ins, INSANE_EVENT_POLICY);
	}
	if (flags & INSANE_DEVICE_F_RESET_STATS) {
		insane_dev_reset_counters(ins);
		insane_genl_notify(ins, INSANE_EVENT_RESET_STATS);
	}
	err = 0;

out:
	/* A hook taken ahead goes again if no device joined it. */
	if (port)
		insane_rx_port_put(port);
	rtnl_unlock();
	insane_policy_free(p);
	insane_policy_free(rx);
	return err;
}

static const struct genl_ops insane_genl_ops[] = {
	{
		.cmd = INSANE_CMD_GET_DEVICE,
		.doit = insane_get_doit,
		.start = insane_get_dump_start,
		.dumpit = insane_get_dumpit,
		.policy = insane_genl_get_nla,
		.maxattr = INSANE_DEVICE_A_MAX,
	},
	{
		.cmd = INSANE_CMD_SET_DEVICE,
		.doit = insane_set_doit,
		.policy = insane_genl_set_nla,
		.maxattr = INSANE_DEVICE_A_MAX,
		.flags = GENL_UNS_ADMIN_PERM,
	},
};

static struct genl_family insane_genl_family __ro_after_init = {
	.name = INSANE_GENL_NAME,
	.version = INSANE_GENL_VERSION,
	.module = THIS_MODULE,
	.netnsok = true,
	.ops = insane_genl_ops,
	.n_ops = ARRAY_SIZE(insane_genl_ops),
	.mcgrps = insane_genl_mcgrps,
	.n_mcgrps = ARRAY_SIZE(insane_genl_mcgrps),
};

/**
 * insane_genl_notify - tell the events group that a device changed
 * @ins: the device, after the change
 * @event: what changed
 *
 * Caller holds RTNL. Best effort: a listener that cannot keep up learns
 * of the loss from ENOBUFS on its socket.
 */
void insane_genl_notify(struct insane_dev *ins, enum insane_event event)
{
	struct net *net = dev_net(ins->dev);
	struct sk_buff *msg;
	void *hdr;

	ASSERT_RTNL();
	if (!genl_has_listeners(&insane_genl_family, net,
				INSANE_GENL_MCGRP_EVENTS_IDX))
		return;

	msg = genlmsg_new(insane_genl_msg_size(), GFP_KERNEL);
	if (!msg)
		return;
	hdr = genlmsg_put(msg, 0, 0, &insane_genl_family, 0, INSANE_CMD_EVENT);
	if (!hdr ||
	    nla_put_u32(msg, INSANE_DEVICE_A_EVENT, event) ||
	    insane_genl_fill_device(msg, ins)) {
		nlmsg_free(msg);
		return;
	}
	genlmsg_end(msg, hdr);
	genlmsg_multicast_netns(&insane_genl_family, net, msg, 0,
				INSANE_GENL_MCGRP_EVENTS_IDX, GFP_KERNEL);
}

static size_t insane_genl_edge_size(void)
{
	return nla_total_size(sizeof(u32)) +		/* EVENT */
	       nla_total_size(sizeof(u32)) +		/* IFINDEX */
	       nla_total_size(IFNAMSIZ) +		/* IFNAME */
	       nla_total_size(0) +			/* EDGE */
	       nla_total_size(sizeof(u32)) * 4 +	/* DIRECTION, STEP_INDEX,
							 * MODE, STATE
							 */
	       nla_total_size_64bit(sizeof(u64)) * 4 +	/* SEQ, TIME_NS,
							 * REALTIME_NS, FIRED_NS
							 */
	       nla_total_size(sizeof(u8));		/* CARRIER */
}

static int insane_genl_fill_edge(struct sk_buff *skb,
				 const struct insane_edge *e)
{
	u64 real = ktime_to_ns(ktime_mono_to_real(ns_to_ktime(e->time_ns)));
	struct nlattr *nest;

	nest = nla_nest_start(skb, INSANE_DEVICE_A_EDGE);
	if (!nest ||
	    nla_put_u32(skb, INSANE_EDGE_A_DIRECTION, e->dir) ||
	    nla_put_u64_64bit(skb, INSANE_EDGE_A_SEQ, e->seq,
			      INSANE_EDGE_A_PAD) ||
	    nla_put_u32(skb, INSANE_EDGE_A_STEP_INDEX, e->step) ||
	    nla_put_u32(skb, INSANE_EDGE_A_MODE, e->mode) ||
	    nla_put_u32(skb, INSANE_EDGE_A_STATE, e->state) ||
	    nla_put_u64_64bit(skb, INSANE_EDGE_A_TIME_NS, e->time_ns,
			      INSANE_EDGE_A_PAD) ||
	    nla_put_u64_64bit(skb, INSANE_EDGE_A_REALTIME_NS, real,
			      INSANE_EDGE_A_PAD) ||
	    nla_put_u64_64bit(skb, INSANE_EDGE_A_FIRED_NS, e->fired_ns,
			      INSANE_EDGE_A_PAD) ||
	    (e->has_carrier &&
	     nla_put_u8(skb, INSANE_EDGE_A_CARRIER, e->carrier)))
		return -EMSGSIZE;
	nla_nest_end(skb, nest);
	return 0;
}

/**
 * insane_genl_notify_edge - tell the events group of an edge
 * @ins: the device, which is up
 * @e: the edge
 *
 * Called by the edge timer in softirq context, under rcu_read_lock(), so
 * GFP_ATOMIC: a failed allocation loses the event, as a listener that falls
 * behind does (ENOBUFS on its socket). The device's name and namespace
 * cannot change meanwhile: both need it down, and going down stops the
 * timer first.
 */
static void insane_genl_notify_edge(struct insane_dev *ins,
				    const struct insane_edge *e)
{
	struct net_device *dev = ins->dev;
	struct net *net = dev_net(dev);
	struct sk_buff *msg;
	void *hdr;

	if (!genl_has_listeners(&insane_genl_family, net,
				INSANE_GENL_MCGRP_EVENTS_IDX))
		return;

	msg = genlmsg_new(insane_genl_edge_size(), GFP_ATOMIC);
	if (!msg)
		return;
	hdr = genlmsg_put(msg, 0, 0, &insane_genl_family, 0, INSANE_CMD_EVENT);
	if (!hdr ||
	    nla_put_u32(msg, INSANE_DEVICE_A_EVENT, INSANE_EVENT_EDGE) ||
	    nla_put_u32(msg, INSANE_DEVICE_A_IFINDEX, dev->ifindex) ||
	    nla_put_string(msg, INSANE_DEVICE_A_IFNAME, dev->name) ||
	    insane_genl_fill_edge(msg, e)) {
		nlmsg_free(msg);
		return;
	}
	genlmsg_end(msg, hdr);
	genlmsg_multicast_netns(&insane_genl_family, net, msg, 0,
				INSANE_GENL_MCGRP_EVENTS_IDX, GFP_ATOMIC);
}

/* Registered last, so user space never meets a half-initialised module. */
int __init insane_genl_init(void)
{
	int err;

	err = genl_register_family(&insane_genl_family);
	if (err)
		return err;
	rtnl_lock();
	insane_link_set_event_fn(insane_genl_notify);
	rtnl_unlock();
	insane_edge_set_notify_fn(insane_genl_notify_edge);
	return 0;
}

/* The hooks go first, waited for, then the family. */
void insane_genl_uninit(void)
{
	insane_edge_set_notify_fn(NULL);
	rtnl_lock();
	insane_link_set_event_fn(NULL);
	rtnl_unlock();
	genl_unregister_family(&insane_genl_family);
}
