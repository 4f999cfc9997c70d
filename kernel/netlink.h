/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The "insane" generic-netlink family.
 */
#ifndef _INSANE_NETLINK_H
#define _INSANE_NETLINK_H

#include <uapi/linux/insane.h>

struct insane_dev;

void insane_genl_notify(struct insane_dev *ins, enum insane_event event);

int insane_genl_init(void);
void insane_genl_uninit(void);

#endif /* _INSANE_NETLINK_H */
