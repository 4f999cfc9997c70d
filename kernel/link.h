/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The "insane" rtnetlink link type and the notifier that follows lower
 * devices.
 */
#ifndef _INSANE_LINK_H
#define _INSANE_LINK_H

#include <uapi/linux/insane.h>

struct insane_dev;
struct insane_rx_port;
struct netlink_ext_ack;

/*
 * Called under RTNL after a change that user space hears of: the generic
 * netlink layer, above this one, hands its notifier in.
 */
typedef void (*insane_event_fn)(struct insane_dev *ins,
				enum insane_event event);

void insane_link_set_event_fn(insane_event_fn fn);
void insane_link_event(struct insane_dev *ins, enum insane_event event);
int insane_link_port_err(struct insane_rx_port *port,
			 struct netlink_ext_ack *extack);

int insane_link_init(void);
void insane_link_uninit(void);

#endif /* _INSANE_LINK_H */
