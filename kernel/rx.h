/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The receive direction: the hook on the lower device that takes over the
 * packets of the hosts routed through an insane device, and the receive
 * policy's decision on the insane device. Semantics in the uapi header
 * ("Receive").
 */
#ifndef _INSANE_RX_H
#define _INSANE_RX_H

#include <linux/err.h>
#include <net/netlink.h>

struct insane_dev;
struct insane_policy;
struct insane_rx_port;
struct net_device;
struct sk_buff;

struct insane_rx_port *insane_rx_port_get(struct net_device *lower,
					  struct netlink_ext_ack *extack);
int insane_rx_capable(const struct insane_dev *ins,
		      const struct net_device *lower,
		      const struct sk_buff *skb,
		      struct netlink_ext_ack *extack);
int insane_rx_check(struct insane_dev *ins, struct net_device *lower,
		    struct netlink_ext_ack *extack);
void insane_rx_port_put(struct insane_rx_port *port);
void insane_rx_move(struct insane_dev *ins, struct insane_rx_port *port);
void insane_rx_leave(struct insane_dev *ins);
int insane_rx_set_policy(struct insane_dev *ins, struct insane_policy *p,
			 struct netlink_ext_ack *extack);
void insane_rx_uninit(struct insane_dev *ins);
void insane_rx_deliver(struct insane_dev *ins, struct sk_buff *skb);

#endif /* _INSANE_RX_H */
