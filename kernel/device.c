// SPDX-License-Identifier: GPL-2.0
/*
 * An insane device: its lower device, its MTU and its net_device_ops. The
 * packet path is in datapath.c, the counters and ethtool in counters.c, the
 * link type and the notifier in link.c.
 */

#include "compat.h"
#include "datapath.h"
#include "device.h"
#include "route.h"
#include "rx.h"

#include <linux/if_arp.h>
#include <linux/netdevice.h>
#include <linux/rtnetlink.h>
#include <linux/slab.h>
#include <net/ip.h>
#include <net/l3mdev.h>

/*
 * GSO packets are taken whole; they are relayed whole when the policy is
 * pass (the lower's own offloads or the core cut them), and cut by
 * insane_xmit() otherwise.
 */
#define INSANE_FEATURES (NETIF_F_SG | NETIF_F_HW_CSUM | NETIF_F_HIGHDMA | \
			 NETIF_F_FRAGLIST | NETIF_F_GSO_SOFTWARE)

static const struct net_device_ops insane_netdev_ops;

bool netif_is_insane(const struct net_device *dev)
{
	return dev->netdev_ops == &insane_netdev_ops;
}

/* Lower device */

/* Whether @lower can be @ins's lower device; says why not in @extack. */
int insane_dev_check_lower(struct insane_dev *ins, struct net_device *lower,
			   struct netlink_ext_ack *extack)
{
	if (lower == ins->dev) {
		NL_SET_ERR_MSG(extack, "an insane device cannot be its own lower device");
		return -EINVAL;
	}
	if (lower->flags & IFF_LOOPBACK) {
		/* EINVAL: EOPNOTSUPP means "not an insane device" in genl. */
		NL_SET_ERR_MSG(extack, "the loopback device cannot be a lower device");
		return -EINVAL;
	}
	if (netdev_has_upper_dev(ins->dev, lower)) {
		NL_SET_ERR_MSG(extack,
			       "the lower device is stacked on this device: that would be a loop");
		return -EBUSY;
	}
	if (netif_is_l3_master(lower)) {
		NL_SET_ERR_MSG(extack,
			       "an L3 master device (VRF) routes by its ports: use one of its ports as the lower device");
		return -EINVAL;
	}
	if (lower->mtu < ins->dev->min_mtu) {
		NL_SET_ERR_MSG(extack, "the lower device's MTU is below the IPv4 minimum of 68");
		return -EINVAL;
	}
	return 0;
}

/* Changes the MTU on the module's behalf, not as a user's choice. */
static int insane_follow_mtu(struct insane_dev *ins, unsigned int mtu)
{
	int err;

	ins->mtu_following = true;
	err = dev_set_mtu(ins->dev, mtu);
	ins->mtu_following = false;
	return err;
}

/*
 * The MTU a device takes on @lower: the lower's, unless the user chose one
 * that the lower allows.
 */
static unsigned int insane_mtu_on(struct insane_dev *ins,
				  struct net_device *lower)
{
	if (ins->mtu_user && ins->dev->mtu <= lower->mtu)
		return ins->dev->mtu;
	return lower->mtu;
}

/* After the lower's MTU changed. Caller holds RTNL. */
void insane_dev_follow_lower_mtu(struct insane_dev *ins,
				 struct net_device *lower)
{
	struct net_device *dev = ins->dev;
	unsigned int mtu;

	ASSERT_RTNL();
	if (lower->mtu < dev->min_mtu) {
		netdev_warn(dev, "cannot follow MTU %u of %s: below %u\n",
			    lower->mtu, lower->name, dev->min_mtu);
		return;
	}
	dev->max_mtu = lower->mtu;
	mtu = insane_mtu_on(ins, lower);
	if (mtu != dev->mtu && insane_follow_mtu(ins, mtu))
		netdev_warn(dev, "cannot follow MTU %u of %s\n", mtu,
			    lower->name);
}

/*
 * GSO packets no larger than the lower takes, and never above 64 KB: the
 * header checks refuse the length-less IPv6 jumbograms of BIG TCP.
 */
void insane_dev_follow_lower_tso(struct insane_dev *ins,
				 struct net_device *lower)
{
	struct net_device *dev = ins->dev;

	netif_inherit_tso_max(dev, lower);
	if (dev->tso_max_size > GSO_LEGACY_MAX_SIZE)
		netif_set_tso_max_size(dev, GSO_LEGACY_MAX_SIZE);
}

/**
 * insane_dev_attach - make @lower the lower device of @ins
 * @ins: the insane device
 * @lower: the new lower device, in any network namespace
 * @extack: where to say what is wrong
 *
 * Replaces any current lower; the datapath sees the old one or the new
 * one, never none. On failure nothing has changed. Caller holds RTNL.
 *
 * Return: 0 or a negative errno.
 */
int insane_dev_attach(struct insane_dev *ins, struct net_device *lower,
		      struct netlink_ext_ack *extack)
{
	struct net_device *old = rtnl_dereference(ins->lower);
	unsigned int old_max = ins->dev->max_mtu;
	struct insane_rx_port *port = NULL;
	struct net_device *dev = ins->dev;
	netdevice_tracker tracker;
	int err;

	ASSERT_RTNL();
	if (old == lower)
		return 0;
	err = insane_dev_check_lower(ins, lower, extack);
	if (err)
		return err;
	/* With a receive policy on, the new lower's hook comes first. */
	if (rtnl_dereference(ins->rx_policy)) {
		port = insane_rx_port_get(lower, extack);
		if (IS_ERR(port))
			return PTR_ERR(port);
	}

	err = netdev_upper_dev_link(lower, dev, extack);
	if (err)
		goto err_port;
	dev->max_mtu = lower->mtu;
	err = insane_follow_mtu(ins, insane_mtu_on(ins, lower));
	if (err) {
		dev->max_mtu = old_max;
		netdev_upper_dev_unlink(lower, dev);
		NL_SET_ERR_MSG(extack, "cannot take the lower device's MTU");
		goto err_port;
	}

	netdev_hold(lower, &tracker, GFP_KERNEL);
	insane_routes_invalidate(ins);
	insane_dev_follow_lower_tso(ins, lower);
	dev->needed_headroom = lower->hard_header_len + lower->needed_headroom;
	rcu_assign_pointer(ins->lower, lower);
	if (old) {
		/*
		 * Readers still inside an RCU-bh section may use @old; its
		 * unregistration, if any, waits for them before freeing it.
		 */
		netdev_upper_dev_unlink(old, dev);
		netdev_put(old, &ins->lower_tracker);
	}
	ins->lower_tracker = tracker;
	if (port)
		insane_rx_move(ins, port);
	insane_edge_sync_carrier(ins);
	return 0;

err_port:
	if (port)
		insane_rx_port_put(port);
	return err;
}

/* Drops the lower device, if any, at once. Caller holds RTNL. */
void insane_dev_detach(struct insane_dev *ins)
{
	struct net_device *lower = rtnl_dereference(ins->lower);
	struct net_device *dev = ins->dev;

	ASSERT_RTNL();
	if (!lower)
		return;
	insane_rx_leave(ins);
	RCU_INIT_POINTER(ins->lower, NULL);
	insane_routes_invalidate(ins);
	netdev_upper_dev_unlink(lower, dev);
	netdev_put(lower, &ins->lower_tracker);
	dev->max_mtu = IP_MAX_MTU;
	if (dev->reg_state == NETREG_REGISTERED)
		insane_edge_sync_carrier(ins);
}

/*
 * Publishes @p and frees the old policy after a grace period. The transmit
 * timer reads its policy without RCU, so it is stopped before the old one
 * can go, then started for @p (which also sets the carrier for @p).
 */
void insane_dev_replace_policy(struct insane_dev *ins, struct insane_policy *p)
{
	struct insane_policy *old;

	insane_edge_stop(ins, INSANE_DIRECTION_TX);
	insane_delay_adopt(ins, INSANE_DIRECTION_TX, p);
	old = rcu_replace_pointer(ins->policy, p, lockdep_rtnl_is_held());
	insane_edge_start(ins, INSANE_DIRECTION_TX, p);
	insane_policy_free_rcu(old);
}

/**
 * insane_dev_set_rx_policy - set or turn off the receive policy
 * @ins: the device
 * @p: the new receive policy, owned from now on, or NULL to turn it off
 * @extack: where to say why the hook cannot be had
 *
 * insane_rx_set_policy() with the receive edge timer, whose one owner is
 * this file: stopped before the old policy can go, started for the policy
 * in force after (which a failure, possible only from off, leaves off).
 * Caller holds RTNL.
 *
 * Return: 0 or a negative errno.
 */
int insane_dev_set_rx_policy(struct insane_dev *ins, struct insane_policy *p,
			     struct netlink_ext_ack *extack)
{
	int err;

	insane_edge_stop(ins, INSANE_DIRECTION_RX);
	err = insane_rx_set_policy(ins, p, extack);
	insane_edge_start(ins, INSANE_DIRECTION_RX,
			  rtnl_dereference(ins->rx_policy));
	return err;
}

/* net_device_ops */

static int insane_ndo_init(struct net_device *dev)
{
	struct insane_dev *ins = netdev_priv(dev);

	dev->tstats = netdev_alloc_pcpu_stats(struct pcpu_sw_netstats);
	if (!dev->tstats)
		return -ENOMEM;
	ins->drops = netdev_alloc_pcpu_stats(struct insane_pcpu_drops);
	if (!ins->drops)
		goto err_drops;
	if (insane_routes_alloc(ins))
		goto err_routes;
	if (insane_delay_init(ins))
		goto err_delay;
	return 0;

err_delay:
	insane_routes_free(ins);
err_routes:
	free_percpu(ins->drops);
	ins->drops = NULL;
err_drops:
	free_percpu(dev->tstats);
	dev->tstats = NULL;
	return -ENOMEM;
}

/*
 * Up: the edge timers start, and the carrier takes the step in force at
 * once (insane_edge_start()). Caller holds RTNL.
 */
static int insane_ndo_open(struct net_device *dev)
{
	struct insane_dev *ins = netdev_priv(dev);

	insane_edge_start(ins, INSANE_DIRECTION_TX,
			  rtnl_dereference(ins->policy));
	insane_edge_start(ins, INSANE_DIRECTION_RX,
			  rtnl_dereference(ins->rx_policy));
	return 0;
}

/*
 * Down: the edge timers stop, waited for, and the delay stage frees what
 * it holds (counted as flushed). The carrier is left as the last
 * edge set it, so that going down changes nothing and a down device has no
 * carrier changes of its own; insane_ndo_open() sets it from the step in
 * force then, which is what the next up must show. The lower's changes
 * still reach a down device (insane_edge_sync_carrier()), and a policy set
 * meanwhile without INSANE_POLICY_A_CARRIER lets the flap go at once.
 */
static int insane_ndo_stop(struct net_device *dev)
{
	struct insane_dev *ins = netdev_priv(dev);

	insane_edge_stop(ins, INSANE_DIRECTION_TX);
	insane_edge_stop(ins, INSANE_DIRECTION_RX);
	insane_delay_flush(ins);
	return 0;
}

/* Unregistering: the device is closed and no packet is in its xmit. */
static void insane_ndo_uninit(struct net_device *dev)
{
	struct insane_dev *ins = netdev_priv(dev);

	/* Closed, so stopped already: but never a timer past this point. */
	insane_edge_stop(ins, INSANE_DIRECTION_TX);
	insane_edge_stop(ins, INSANE_DIRECTION_RX);

	/* The core checks right after this that no lower is left. */
	insane_dev_detach(ins);
	/* The routes pin nothing but memory: the core reroutes them away. */
	insane_routes_release(ins);
	insane_rx_uninit(ins);
	/* Closed, so flushed already: the queues and flow tables go. */
	insane_delay_free(ins);
}

/* The core has checked @new_mtu against min_mtu and max_mtu (the lower's). */
static int insane_ndo_change_mtu(struct net_device *dev, int new_mtu)
{
	struct insane_dev *ins = netdev_priv(dev);

	if (!ins->mtu_following)
		ins->mtu_user = true;
	dev->mtu = new_mtu;
	return 0;
}

static void insane_ndo_get_stats64(struct net_device *dev,
				   struct rtnl_link_stats64 *s)
{
	struct insane_dev *ins = netdev_priv(dev);
	u64 drops[INSANE_COUNT_NR];
	int i;

	dev_get_tstats64(dev, s);
	insane_dev_sum_drops(ins, drops);
	for (i = 0; i < INSANE_TX_DROP_NR; i++)
		s->tx_dropped += drops[i];
	for (; i < INSANE_DROP_NR; i++)
		s->rx_dropped += drops[i];
}

static int insane_ndo_get_iflink(const struct net_device *dev)
{
	struct insane_dev *ins = netdev_priv(dev);
	struct net_device *lower;
	int iflink = dev->ifindex;

	rcu_read_lock();
	lower = rcu_dereference(ins->lower);
	if (lower)
		iflink = lower->ifindex;
	rcu_read_unlock();
	return iflink;
}

static const struct net_device_ops insane_netdev_ops = {
	.ndo_init		= insane_ndo_init,
	.ndo_uninit		= insane_ndo_uninit,
	.ndo_open		= insane_ndo_open,
	.ndo_stop		= insane_ndo_stop,
	.ndo_start_xmit		= insane_xmit,
	.ndo_change_mtu		= insane_ndo_change_mtu,
	.ndo_get_stats64	= insane_ndo_get_stats64,
	.ndo_get_iflink		= insane_ndo_get_iflink,
};

/* After the last reference: no reader of the policy is left. */
static void insane_dev_destruct(struct net_device *dev)
{
	struct insane_dev *ins = netdev_priv(dev);

	insane_policy_free(rcu_dereference_protected(ins->policy, true));
	insane_routes_free(ins);
	insane_policy_free(rcu_dereference_protected(ins->rx_policy, true));
	free_percpu(ins->drops);
	free_percpu(dev->tstats);
}

/* rtnl_link_ops.setup: a new device, not yet registered. */
void insane_dev_setup(struct net_device *dev)
{
	struct insane_dev *ins = netdev_priv(dev);

	ins->dev = dev;
	INIT_LIST_HEAD(&ins->rx_node);
	ins->rx_left = get_completed_synchronize_rcu();
	spin_lock_init(&ins->carrier_lock);
	insane_edge_init(ins);
	dev->netdev_ops = &insane_netdev_ops;
	dev->ethtool_ops = &insane_ethtool_ops;
	dev->needs_free_netdev = true;
	dev->priv_destructor = insane_dev_destruct;

	dev->type = ARPHRD_NONE;
	dev->hard_header_len = 0;
	dev->addr_len = 0;
	dev->mtu = ETH_DATA_LEN;
	dev->min_mtu = IPV4_MIN_MTU;
	dev->max_mtu = IP_MAX_MTU;
	dev->flags = IFF_NOARP;
	/*
	 * No netpoll: it would call insane_xmit() from hard IRQs, inside
	 * the per-CPU relay state of a packet it interrupted.
	 */
	dev->priv_flags |= IFF_NO_QUEUE | IFF_DISABLE_NETPOLL;
	insane_set_lltx(dev);
	dev->features |= INSANE_FEATURES;
	dev->hw_features |= INSANE_FEATURES;
}
