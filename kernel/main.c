// SPDX-License-Identifier: GPL-2.0
/*
 * insane: INterface SAmple for Network Errors, a stacked virtual network
 * interface that relays or drops packets according to a policy.
 */

#include "link.h"
#include "netlink.h"
#include "policy.h"
#include "version.h"

#include <linux/module.h>
#include <linux/rcupdate.h>
#include <net/genetlink.h>
#include <net/rtnetlink.h>

static int __init insane_init(void)
{
	int err;

	/* Before any device exists: nothing to undo. */
	insane_policy_init();

	err = insane_link_init();
	if (err)
		return err;

	/* Last: user space can reach the module once everything is ready. */
	err = insane_genl_init();
	if (err)
		goto err_genl;

	pr_info("insane " INSANE_VERSION " loaded\n");
	return 0;

err_genl:
	insane_link_uninit();
	/* A device made meanwhile may have replaced its policy. */
	rcu_barrier();
	return err;
}

/*
 * In exact reverse. The core has destroyed every device, destructor
 * included, when rtnl_link_unregister() returns; what is left is the RCU
 * callbacks that free replaced policies with per-CPU state
 * (insane_policy_free_rcu()), which rcu_barrier() waits for.
 */
static void __exit insane_exit(void)
{
	insane_genl_uninit();
	insane_link_uninit();
	rcu_barrier();
}

module_init(insane_init);
module_exit(insane_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Stacked virtual network interface for fault injection");
MODULE_VERSION(INSANE_VERSION);
MODULE_ALIAS_RTNL_LINK(INSANE_LINK_KIND);
MODULE_ALIAS_GENL_FAMILY(INSANE_GENL_NAME);
