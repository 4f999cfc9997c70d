// SPDX-License-Identifier: GPL-2.0
/*
 * Held frames ("Delay" in the uapi header). A relayed packet that the
 * delay stage holds is built, before its hold, into the frame the lower
 * will send, as a qdisc's packet is before its enqueue: routed out of the
 * lower (route.c), passed through POSTROUTING, and given its link-layer
 * header from the neighbour. At its departure it only goes through the
 * lower's dev_queue_xmit(), if the route it was built with is still the
 * one in force; if not, it becomes an IP packet again and is relayed
 * whole, as a packet held unbuilt is.
 *
 * A packet is held unbuilt when there is no route out of the lower now,
 * the lower is in another network namespace or a VRF's, has no
 * link-layer header or no room for one before the packet, the route is an
 * IPsec bundle or a lightweight tunnel, the packet would need fragments,
 * or the neighbour is not resolved: all of that is then left to the IP
 * output at its departure.
 *
 * A built frame is told apart by its data, which starts at the link-layer
 * header, before the network header; a held IP packet starts at its
 * network header (the checks of datapath.c refuse any other). What the
 * departure needs lives in skb->cb, in the part that IPCB() and IP6CB()
 * use, which the frame no longer needs once POSTROUTING has seen it.
 */

#include "device.h"
#include "frame.h"
#include "route.h"

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/netdevice.h>
#include <linux/netfilter.h>
#include <net/dst.h>
#include <net/ip.h>
#include <net/ip6_route.h>
#include <net/ipv6.h>
#include <net/ndisc.h>
#include <net/neighbour.h>
#include <net/route.h>

struct insane_frame_cb {
	const void *slot;	/* this CPU's route slot that holds @dst */
	struct dst_entry *dst;	/* the route, without a reference */
	int cpu;
	bool v4;
};

/* Below the delay stage's part of skb->cb (delay.c). */
static_assert(sizeof(struct insane_frame_cb) <= 32);

static struct insane_frame_cb *insane_frame_cb(const struct sk_buff *skb)
{
	return (struct insane_frame_cb *)skb->cb;
}

struct dst_entry *insane_frame_dst(const struct sk_buff *skb)
{
	return insane_frame_cb(skb)->dst;
}

/*
 * Whether the IP output would send @skb by @dst out of @lower as it is:
 * no fragments, no transformation, no VRF, a link-layer header that fits.
 */
static bool insane_frame_fits(const struct sk_buff *skb,
			      const struct dst_entry *dst,
			      const struct net_device *lower)
{
	unsigned int mtu = dst_mtu(dst);

	if (dst_xfrm(dst) || dst->lwtstate || dst_allfrag(dst))
		return false;
	if (!lower->header_ops || !lower->hard_header_len ||
	    netif_is_l3_master(lower) || netif_is_l3_slave(lower))
		return false;
	if (skb_headroom(skb) < LL_RESERVED_SPACE(lower))
		return false;
	return skb_is_gso(skb) ? skb_gso_validate_network_len(skb, mtu) :
				 skb->len <= mtu;
}

/*
 * The okfn of POSTROUTING, for a packet that a hook queued and that user
 * space gave back: it is sent on now, through its neighbour, unheld.
 */
static int insane_frame_late(struct net *net, struct sock *sk,
			     struct sk_buff *skb)
{
	struct dst_entry *dst = skb_dst(skb);
	struct neighbour *n = ERR_PTR(-EINVAL);
	bool v6gw = false;
	int ret;

	rcu_read_lock_bh();
	if (skb->protocol == htons(ETH_P_IP)) {
		n = ip_neigh_for_gw(container_of(dst, struct rtable, dst), skb, &v6gw);
#if IS_ENABLED(CONFIG_IPV6)
	} else {
		const struct in6_addr *nh;

		nh = rt6_nexthop(container_of(dst, struct rt6_info, dst), &ipv6_hdr(skb)->daddr);
		n = __ipv6_neigh_lookup_noref(dst->dev, nh);
		if (!n)
			n = __neigh_create(&nd_tbl, nh, dst->dev, false);
#endif
	}
	if (IS_ERR(n)) {
		rcu_read_unlock_bh();
		kfree_skb(skb);
		return PTR_ERR(n);
	}
	ret = neigh_output(n, skb, v6gw);
	rcu_read_unlock_bh();
	return ret;
}

/* The resolved neighbour that @skb goes to by its route, or NULL. */
static struct neighbour *insane_frame_neigh(struct sk_buff *skb, bool v4)
{
	struct dst_entry *dst = skb_dst(skb);
	struct neighbour *n = NULL;

	if (v4) {
		struct rtable *rt = container_of(dst, struct rtable, dst);
		bool v6gw = false;

		if (rt->rt_gw_family == AF_INET6)
			return NULL;
		n = ip_neigh_for_gw(rt, skb, &v6gw);
		if (IS_ERR(n))
			return NULL;
#if IS_ENABLED(CONFIG_IPV6)
	} else {
		n = __ipv6_neigh_lookup_noref(dst->dev,
					      rt6_nexthop(container_of(dst, struct rt6_info, dst),
							  &ipv6_hdr(skb)->daddr));
#endif
	}
	if (!n || !(READ_ONCE(n->nud_state) & NUD_CONNECTED))
		return NULL;
	return n;
}

/*
 * Puts the link-layer header that @n has cached before @skb's data, as
 * the neighbour's output copies it: false if none is cached or it does
 * not fit in the headroom.
 */
static bool insane_frame_hh(struct sk_buff *skb, const struct neighbour *n)
{
	const struct hh_cache *hh = &n->hh;
	unsigned int seq, len;

	do {
		seq = read_seqbegin(&hh->hh_lock);
		len = READ_ONCE(hh->hh_len);
		/* Right-aligned in whole HH_DATA_MOD blocks. */
		if (!len || len > sizeof(hh->hh_data) ||
		    skb_headroom(skb) < HH_DATA_ALIGN(len))
			return false;
		memcpy(skb->data - HH_DATA_ALIGN(len), hh->hh_data,
		       HH_DATA_ALIGN(len));
	} while (read_seqretry(&hh->hh_lock, seq));
	__skb_push(skb, len);
	return true;
}

/*
 * The header from the neighbour's address, when none is cached; and the
 * neighbour's header cached for the next frames, as its own output does
 * on its first packet, which a neighbour that only frames go to never has.
 */
static noinline int insane_frame_header(struct sk_buff *skb,
					struct neighbour *n,
					struct net_device *lower)
{
	const struct header_ops *ops = lower->header_ops;
	unsigned char ha[MAX_ADDR_LEN];

	if (ops->cache && !READ_ONCE(n->hh.hh_len)) {
		write_lock_bh(&n->lock);
		if (!n->hh.hh_len)
			ops->cache(n, &n->hh, n->tbl->protocol);
		write_unlock_bh(&n->lock);
	}
	neigh_ha_snapshot(ha, n, lower);
	return dev_hard_header(skb, lower, ntohs(skb->protocol), ha, NULL,
			       skb->len);
}

/* insane_ip_csum_fix()'s writer, for a wrong checksum. */
int __insane_ip_csum_fix(struct sk_buff *skb)
{
	if (skb_ensure_writable(skb, ip_hdrlen(skb)))
		return -ENOMEM;
	ip_send_check(ip_hdr(skb));
	return 0;
}

/**
 * insane_frame_build - build a packet about to be held into its frame
 * @ins: the device
 * @skb: the packet, checked and decided, its data at the network header
 * @lower: the lower in force
 * @v4: IPv4, else IPv6
 * @uid: the sender's uid, for the route
 *
 * In the device's transmit path, with BHs off, inside the relay path.
 * POSTROUTING sees the packet here, with the lower as output device, and
 * not again at its departure unless its route changes meanwhile.
 *
 * Return: what became of @skb (enum insane_frame_result).
 */
enum insane_frame_result insane_frame_build(struct insane_dev *ins,
					    struct sk_buff *skb,
					    struct net_device *lower, bool v4,
					    kuid_t uid)
{
	struct net *net = dev_net(lower);
	struct insane_frame_cb *fc;
	struct dst_entry *dst;
	struct neighbour *n;
	const void *slot;
	int ret;

	if (!net_eq(dev_net(ins->dev), net))
		return INSANE_FRAME_UNBUILT;
	if (!(v4 ? insane_route_v4(ins, net, skb, lower, uid, &slot) :
		   insane_route_v6(ins, net, skb, lower, uid, &slot)))
		return INSANE_FRAME_UNBUILT;
	dst = skb_dst(skb);
	rcu_read_lock();
	n = insane_frame_fits(skb, dst, lower) ? insane_frame_neigh(skb, v4) :
						NULL;
	if (!n || (v4 && insane_ip_csum_fix(skb))) {
		rcu_read_unlock();
		skb_dst_drop(skb);
		return INSANE_FRAME_UNBUILT;
	}

	/* As ip_output() and ip6_output() do, then their POSTROUTING. */
	skb->dev = lower;
	if (v4) {
		skb->protocol = htons(ETH_P_IP);
		IP_UPD_PO_STATS(net, IPSTATS_MIB_OUT, skb->len);
		ret = nf_hook(NFPROTO_IPV4, NF_INET_POST_ROUTING, net, NULL,
			      skb, NULL, lower, insane_frame_late);
	} else {
		skb->protocol = htons(ETH_P_IPV6);
		IP6CB(skb)->nhoff = offsetof(struct ipv6hdr, nexthdr);
		IP6_UPD_PO_STATS(net, ip6_dst_idev(dst), IPSTATS_MIB_OUT,
				 skb->len);
		ret = nf_hook(NFPROTO_IPV6, NF_INET_POST_ROUTING, net, NULL,
			      skb, NULL, lower, insane_frame_late);
	}
	if (ret != 1) {
		rcu_read_unlock();
		return ret ? INSANE_FRAME_REFUSED : INSANE_FRAME_TAKEN;
	}

	/* A hook (NAT) may have changed the route: then it is stale. */
	dst = skb_dst(skb);
	if (!insane_frame_hh(skb, n) &&
	    insane_frame_header(skb, n, lower) <= 0) {
		rcu_read_unlock();
		kfree_skb(skb);
		return INSANE_FRAME_REFUSED;
	}
	rcu_read_unlock();
	skb_reset_mac_header(skb);
	skb->mac_len = skb_network_offset(skb);
	fc = insane_frame_cb(skb);
	fc->slot = slot;
	fc->dst = dst;
	fc->cpu = smp_processor_id();
	fc->v4 = v4;
	/* The slot keeps the route; the frame refers to it without one. */
	skb_dst_drop(skb);
	return INSANE_FRAME_BUILT;
}

/**
 * insane_frame_kept - whether a held frame may leave as it was built
 * @ins: the device
 * @skb: a built frame at its departure
 * @lower: the lower in force now
 *
 * On the CPU that built it, while its route is still in force there
 * (insane_route_kept()).
 */
bool insane_frame_kept(struct insane_dev *ins, struct sk_buff *skb,
		       struct net_device *lower)
{
	const struct insane_frame_cb *fc = insane_frame_cb(skb);

	return fc->cpu == smp_processor_id() &&
	       insane_route_kept(ins, fc->slot, fc->dst, fc->v4, lower);
}

/* Makes a held frame an IP packet again, to be relayed whole. */
void insane_frame_unbuild(struct sk_buff *skb)
{
	__skb_pull(skb, skb_network_offset(skb));
	skb_reset_mac_header(skb);
	skb->mac_len = 0;
}
