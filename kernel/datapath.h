/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The transmit path: every packet routed through an insane device.
 */
#ifndef _INSANE_DATAPATH_H
#define _INSANE_DATAPATH_H

#include <linux/netdevice.h>

struct insane_dev;

netdev_tx_t insane_xmit(struct sk_buff *skb, struct net_device *dev);
int insane_corrupt(struct sk_buff *skb, u32 y, bool header, bool v4);
void insane_xmit_depart(struct insane_dev *ins, struct sk_buff *skb);

#endif /* _INSANE_DATAPATH_H */
