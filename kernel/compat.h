/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The module targets the Linux 6.1 API. What differs on newer kernels is
 * isolated here, behind version checks, which is why checkpatch runs on this
 * file without its LINUX_VERSION_CODE rule (see Makefile).
 */
#ifndef _INSANE_COMPAT_H
#define _INSANE_COMPAT_H

#include <linux/netdevice.h>
#include <linux/version.h>

/* NETIF_F_LLTX became the private flag dev->lltx in 6.12. */
static inline void insane_set_lltx(struct net_device *dev)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
	dev->lltx = true;
#else
	dev->features |= NETIF_F_LLTX;
#endif
}

#endif /* _INSANE_COMPAT_H */
