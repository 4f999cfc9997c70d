// SPDX-License-Identifier: GPL-2.0
/*
 * insane: INterface SAmple for Network Errors, a stacked virtual network
 * interface that relays or drops packets according to a policy.
 */

#include "device.h"
#include "netlink.h"
#include "version.h"

#include <linux/module.h>
#include <net/genetlink.h>
#include <net/rtnetlink.h>

static int __init insane_init(void)
{
	int err;

	/* The family first: device teardown sends events through it. */
	err = insane_genl_init();
	if (err)
		return err;

	err = insane_device_init();
	if (err)
		goto err_device;

	pr_info("insane " INSANE_VERSION " loaded\n");
	return 0;

err_device:
	insane_genl_uninit();
	return err;
}

static void __exit insane_exit(void)
{
	insane_device_uninit();
	insane_genl_uninit();
	rcu_barrier();
}

module_init(insane_init);
module_exit(insane_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Stacked virtual network interface for fault injection");
MODULE_VERSION(INSANE_VERSION);
MODULE_ALIAS_RTNL_LINK(INSANE_LINK_KIND);
MODULE_ALIAS_GENL_FAMILY(INSANE_GENL_NAME);
