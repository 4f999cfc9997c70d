// SPDX-License-Identifier: GPL-2.0
/*
 * The datapath: each packet routed through an insane device is checked,
 * decided by the policy and either dropped under one named cause or relayed
 * out of the lower device.
 *
 * insane is an L3 device. A relayed packet is routed again in the lower
 * device's network namespace with the lower as output interface, as
 * ipvlan's L3 mode does, so neighbour resolution happens on the lower. What
 * netfilter sees is written in the uapi header ("Relay and netfilter").
 */

#include "datapath.h"
#include "delay.h"
#include "device.h"
#include "frame.h"
#include "policy.h"
#include "route.h"

#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/netdevice.h>
#include <linux/percpu.h>
#include <net/addrconf.h>
#include <net/dst.h>
#include <net/inet_sock.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/l3mdev.h>

/* The kernel's drop reason of each cause, for dropwatch and perf trace. */
#define INSANE_DROP_REASON(attr, name, reason) \
	[INSANE_##attr] = SKB_DROP_REASON_##reason,
static const enum skb_drop_reason insane_drop_reasons[INSANE_DROP_NR] = {
	INSANE_DROP_CAUSES(INSANE_DROP_REASON)
	INSANE_RX_DROP_CAUSES(INSANE_DROP_REASON)
};

#undef INSANE_DROP_REASON

/*
 * The insane devices that the packet being sent on this CPU is being relayed
 * by, outermost first. Relaying is synchronous down to the lower device's
 * queue and runs with BHs off, so a device that meets itself here is in a
 * loop: a route, a tunnel or NAT in the lower's netns sent the packet back.
 * The core's limit is the same depth, so insane always stops a loop first.
 */
struct insane_relay_path {
	const struct insane_dev *devs[XMIT_RECURSION_LIMIT];
	unsigned int depth;
	/* Loops caught on this CPU: a copy whose original met one is not sent. */
	unsigned int loops;
};

static DEFINE_PER_CPU(struct insane_relay_path, insane_relay_path);

static bool insane_relay_enter(struct insane_relay_path *path,
			       const struct insane_dev *ins)
{
	unsigned int i;

	if (unlikely(path->depth >= ARRAY_SIZE(path->devs)))
		goto loop;
	for (i = 0; i < path->depth; i++)
		if (unlikely(path->devs[i] == ins))
			goto loop;
	path->devs[path->depth++] = ins;
	return true;

loop:
	path->loops++;
	return false;
}

/**
 * insane_corrupt - flip one bit of a packet ("Corrupt" in the uapi header)
 * @skb: the packet, its data at the network header, IPv4 or IPv6 checked
 * @y: the draw that chooses the bit
 * @header: the span starts at the network header, not past the IP header,
 *	and skips the destination address
 * @v4: IPv4, else IPv6
 *
 * A CHECKSUM_PARTIAL checksum is completed first; any other checksum state
 * is reset to CHECKSUM_NONE, so that a receiver verifies the packet.
 *
 * Return: 1 if a bit was flipped, 0 if the span is empty, -ENOMEM (or the
 * error of the checksum's completion) if the packet could not be written.
 */
int insane_corrupt(struct sk_buff *skb, u32 y, bool header, bool v4)
{
	/* The destination address: where it is, and its length. */
	unsigned int dst = v4 ? offsetof(struct iphdr, daddr) :
				offsetof(struct ipv6hdr, daddr);
	unsigned int dlen = v4 ? 4 : 16;
	unsigned int start = 0, span, off;
	u64 b;
	int err;

	if (!header)
		start = v4 ? ip_hdr(skb)->ihl * 4 : sizeof(struct ipv6hdr);
	if (header ? skb->len < dst + dlen : skb->len <= start)
		return 0;
	span = skb->len - start - (header ? dlen : 0);
	if (skb->ip_summed == CHECKSUM_PARTIAL) {
		err = skb_checksum_help(skb);
		if (err)
			return err;
	}
	b = ((u64)y * (8ULL * span)) >> 32;
	off = start + (b >> 3);
	if (header && off >= dst)
		off += dlen;
	err = skb_ensure_writable(skb, off + 1);
	if (err)
		return err;
	skb->data[off] ^= 1U << (b & 7);
	skb->ip_summed = CHECKSUM_NONE;
	return 1;
}

/*
 * IPv4 header checks of ip_rcv_core(), except the checksum, which the relay
 * computes anew. A sent packet has no link-layer padding, so tot_len must be
 * its whole length.
 */
static bool insane_check_v4(struct sk_buff *skb)
{
	const struct iphdr *iph;
	unsigned int hlen;

	if (unlikely(skb_network_offset(skb) ||
		     !pskb_network_may_pull(skb, sizeof(*iph))))
		return false;
	iph = ip_hdr(skb);
	hlen = iph->ihl * 4;
	if (unlikely(iph->version != 4 || hlen < sizeof(*iph)))
		return false;
	if (unlikely(!pskb_network_may_pull(skb, hlen)))
		return false;
	iph = ip_hdr(skb);
	return likely(ntohs(iph->tot_len) == skb->len);
}

/* A payload length that matches the packet; no jumbogram (length 0). */
static bool insane_check_v6(struct sk_buff *skb)
{
	const struct ipv6hdr *ip6h;

	if (unlikely(skb_network_offset(skb) ||
		     !pskb_network_may_pull(skb, sizeof(*ip6h))))
		return false;
	ip6h = ipv6_hdr(skb);
	return likely(ip6h->version == 6 && ip6h->payload_len &&
		      ntohs(ip6h->payload_len) + sizeof(*ip6h) == skb->len);
}

/*
 * In the device's own netns the packet has passed LOCAL_OUT already, with
 * its conntrack entry and NAT, so it goes straight to dst_output(): the
 * header fixups of __ip_local_out() (IPv4's header checksum: written by
 * the caller, before a corruption) without its netfilter hook. Running
 * LOCAL_OUT again would let NAT re-route it without the lower as output
 * interface, back into this device.
 */
static int insane_output_v4(struct net *net, struct sk_buff *skb)
{
	skb = l3mdev_ip_out(NULL, skb);
	if (unlikely(!skb))
		return 0;
	skb->protocol = htons(ETH_P_IP);
	return dst_output(net, NULL, skb);
}

static int insane_output_v6(struct net *net, struct sk_buff *skb)
{
	IP6CB(skb)->nhoff = offsetof(struct ipv6hdr, nexthdr);
	skb = l3mdev_ip6_out(NULL, skb);
	if (unlikely(!skb))
		return 0;
	skb->protocol = htons(ETH_P_IPV6);
	return dst_output(net, NULL, skb);
}

/*
 * The uid a socket of the sender's would route with: the owner of a full
 * socket (a request socket stands for its listener), else root of @net,
 * as the kernel's own replies use.
 */
static __always_inline kuid_t insane_relay_uid(struct net *net, const struct sk_buff *skb)
{
	const struct sock *sk = skb_to_full_sk(skb);

	return sock_net_uid(net, sk && sk_fullsock(sk) ? sk : NULL);
}

/*
 * Hands @skb to the lower's stack and sets *@err to what the stack said,
 * corrupted first if @x says so (after the route and IPv4's header
 * checksum, as on a wire), and returns INSANE_DROP_NR. The sender's socket
 * stays the owner but is not passed on: the lower's netns must not read
 * its bound device, run its cgroup's egress program again or take a
 * packet socket for an inet one. @uid is the sender's (ip rule uidrange).
 * A frame built at its hold (frame.c), whose route the caller found still
 * in force, goes straight to the lower's dev_queue_xmit(). Without a
 * route out of the lower it returns INSANE_DROP_NO_ROUTE, if the
 * corruption found no memory INSANE_DROP_NO_MEMORY, and the caller still
 * owns @skb.
 */
static enum insane_drop insane_relay(struct insane_dev *ins,
				     struct sk_buff *skb,
				     struct net_device *lower, bool v4,
				     kuid_t uid, struct insane_extra *x,
				     int *err)
{
	struct net_device *dev = ins->dev;
	struct net *net = dev_net(lower);
	bool xnet = !net_eq(dev_net(dev), net);
	unsigned int hh = 0;
	int r;

	/* A frame built at its hold, whose route is still in force. */
	if (insane_frame_built(skb)) {
		skb->dev = lower;
		skb_dst_set_noref(skb, insane_frame_dst(skb));
		hh = skb_network_offset(skb);
		__skb_pull(skb, hh);
		goto built;
	}
	/* Crossing into the lower's netns forgets this one's state. */
	if (unlikely(xnet))
		skb_scrub_packet(skb, true);
	if (!(v4 ? insane_route_v4(ins, net, skb, lower, uid, NULL) :
		   insane_route_v6(ins, net, skb, lower, uid, NULL)))
		return INSANE_DROP_NO_ROUTE;
	/* The lower's hooks see the packet coming from the lower. */
	skb->dev = lower;
	if (v4 && !xnet && insane_ip_csum_fix(skb))
		return INSANE_DROP_NO_MEMORY;
built:
	if (unlikely(x && x->corrupt)) {
		r = insane_corrupt(skb, x->y, x->header, v4);
		if (r < 0)
			goto nomem;
		if (r)
			insane_dev_count_drop(ins, INSANE_CORRUPTED);
	}
	if (hh) {
		__skb_push(skb, hh);
		*err = dev_queue_xmit(skb);
	} else if (unlikely(xnet))
		*err = v4 ? ip_local_out(net, NULL, skb) :
			    ip6_local_out(net, NULL, skb);
	else
		*err = v4 ? insane_output_v4(net, skb) :
			    insane_output_v6(net, skb);
	return INSANE_DROP_NR;

nomem:
	/* The caller frees it: as a frame, should it be counted on a tap. */
	__skb_push(skb, hh);
	return INSANE_DROP_NO_MEMORY;
}

/* A GSO packet stands for gso_segs wire packets in the counters. */
static unsigned int insane_wire_packets(const struct sk_buff *skb)
{
	return skb_is_gso(skb) ? max_t(u16, skb_shinfo(skb)->gso_segs, 1) : 1;
}

/* Relays @skb, inside the relay path (left here), and counts it. */
static void insane_xmit_relay_one(struct insane_dev *ins, struct sk_buff *skb,
				  struct net_device *lower, bool v4,
				  struct insane_relay_path *path, kuid_t uid,
				  struct insane_extra *x)
{
	unsigned int packets = insane_wire_packets(skb);
	unsigned int len = insane_frame_ip_len(skb);
	enum insane_drop why;
	int err;

	why = insane_relay(ins, skb, lower, v4, uid, x, &err);
	path->depth--;
	if (unlikely(why != INSANE_DROP_NR)) {
		insane_dev_count_drops(ins, why, packets);
		kfree_skb_reason(skb, insane_drop_reasons[why]);
		return;
	}
	/* From here on @skb belongs to the lower's stack. */
	if (likely(!net_xmit_eval(err)))
		dev_sw_netstats_tx_add(ins->dev, packets, len);
	else
		insane_dev_count_drops(ins, INSANE_DROP_LOWER_REFUSED, packets);
}

/*
 * Relays a checked and decided packet out of @lower, inside the relay
 * path (entered by the caller), and counts it. @a is the action in force
 * (the decision's, or at a held packet's departure the policy's now):
 * with duplicate or corrupt, the packet draws ("Rate, duplication and
 * corruption" in the uapi header); a copy follows it right behind, unless
 * the original met a loop, which the copy would meet too.
 */
static void insane_xmit_relay(struct insane_dev *ins, struct sk_buff *skb,
			      struct net_device *lower, bool v4,
			      struct insane_relay_path *path,
			      struct insane_policy *policy,
			      const struct insane_action *a)
{
	/*
	 * The sender's uid, read before a scrub, and given to the copy; a
	 * built frame is not routed again.
	 */
	kuid_t uid = insane_frame_built(skb) ? GLOBAL_ROOT_UID :
		     insane_relay_uid(dev_net(lower), skb);
	struct sk_buff *copy = NULL;
	struct insane_extra x;
	unsigned int loops;

	/* A GSO packet (held whole by an earlier policy) is left alone. */
	if (likely(!insane_action_extras(a)) || unlikely(skb_is_gso(skb))) {
		insane_xmit_relay_one(ins, skb, lower, v4, path, uid, NULL);
		return;
	}
	insane_policy_extra(policy, a, insane_policy_in_seq(skb, v4), &x);
	if (x.duplicate) {
		copy = pskb_copy(skb, GFP_ATOMIC);
		if (unlikely(!copy)) {
			insane_dev_count_drop(ins, INSANE_DUPLICATED);
			insane_dev_count_drop(ins, INSANE_DROP_NO_MEMORY);
		}
	}
	loops = path->loops;
	insane_xmit_relay_one(ins, skb, lower, v4, path, uid, &x);
	if (!copy)
		return;
	if (path->loops != loops) {
		consume_skb(copy);
		return;
	}
	insane_dev_count_drop(ins, INSANE_DUPLICATED);
	if (unlikely(!insane_relay_enter(path, ins))) {
		insane_dev_count_drop(ins, INSANE_DROP_LOOP);
		kfree_skb_reason(copy, insane_drop_reasons[INSANE_DROP_LOOP]);
		return;
	}
	insane_xmit_relay_one(ins, copy, lower, v4, path, uid, NULL);
}

/*
 * Builds a packet about to be held into its frame (frame.c), inside the
 * relay path (left here). True if POSTROUTING took it or dropped it,
 * which counts as its relay would have: then it is not held.
 */
static bool insane_xmit_build(struct insane_dev *ins, struct sk_buff *skb,
			      struct net_device *lower, bool v4,
			      struct insane_relay_path *path,
			      unsigned int packets)
{
	unsigned int len = skb->len;
	enum insane_frame_result r;

	r = insane_frame_build(ins, skb, lower, v4,
			       insane_relay_uid(dev_net(lower), skb));
	path->depth--;
	switch (r) {
	case INSANE_FRAME_TAKEN:
		dev_sw_netstats_tx_add(ins->dev, packets, len);
		return true;
	case INSANE_FRAME_REFUSED:
		insane_dev_count_drops(ins, INSANE_DROP_LOWER_REFUSED, packets);
		return true;
	default:
		return false;
	}
}

/*
 * Checks, decides and relays or drops one packet: a wire packet, or a GSO
 * packet under a policy that relays every packet. What an action with a
 * delay relays is held (delay.c), and relayed by insane_xmit_depart().
 */
static void insane_xmit_one(struct insane_dev *ins, struct sk_buff *skb,
			    struct net_device *lower,
			    struct insane_policy *policy, u64 arrival)
{
	enum skb_drop_reason reason = SKB_DROP_REASON_NOT_SPECIFIED;
	unsigned int packets = insane_wire_packets(skb);
	const struct insane_action *act;
	struct insane_relay_path *path;
	enum insane_drop why;
	bool v4;

	/* Checked first: every packet to a detached device counts here. */
	if (unlikely(!lower)) {
		why = INSANE_DROP_NO_LOWER;
		goto drop;
	}

	if (skb->protocol == htons(ETH_P_IP)) {
		v4 = true;
		if (unlikely(!insane_check_v4(skb)))
			goto malformed;
	} else if (skb->protocol == htons(ETH_P_IPV6)) {
		v4 = false;
		/* Without IPv6 (ipv6.disable=1) its routing state is absent. */
		if (unlikely(!IS_ENABLED(CONFIG_IPV6) || !ipv6_mod_enabled())) {
			why = INSANE_DROP_NOT_IP;
			reason = SKB_DROP_REASON_IPV6DISABLED;
			goto drop_reason;
		}
		if (unlikely(!insane_check_v6(skb)))
			goto malformed;
	} else {
		why = INSANE_DROP_NOT_IP;
		goto drop;
	}

	path = this_cpu_ptr(&insane_relay_path);
	if (unlikely(!insane_relay_enter(path, ins))) {
		why = INSANE_DROP_LOOP;
		goto drop;
	}

	act = insane_policy_verdict_skb(policy, skb, v4);
	if (!act) {
		path->depth--;
		why = INSANE_DROP_POLICY;
		goto drop;
	}
	if (unlikely(insane_delay_on(&act->delay))) {
		/* As netem: the socket's memory is not pinned while held. */
		skb_orphan_partial(skb);
		if (insane_xmit_build(ins, skb, lower, v4, path, packets))
			return;
		insane_delay_hold(ins, INSANE_DIRECTION_TX, skb, policy,
				  &act->delay, arrival,
				  policy->seeded &&
				  insane_policy_in_seq(skb, v4));
		return;
	}
	insane_xmit_relay(ins, skb, lower, v4, path, policy, act);
	return;

malformed:
	/* Its GSO fields are as untrusted as the rest. */
	packets = 1;
	why = INSANE_DROP_MALFORMED;
drop:
	reason = insane_drop_reasons[why];
drop_reason:
	insane_dev_count_drops(ins, why, packets);
	kfree_skb_reason(skb, reason);
}

/**
 * insane_xmit_depart - relay a held packet at its departure
 * @ins: the device
 * @skb: a packet that insane_xmit_one() checked, decided and held
 *
 * From the delay stage's release, with BHs off (the timer's softirq or
 * the transmit path), which is an RCU-bh read side. The lower in force
 * now: none counts as NO_LOWER; the relay path is entered as in
 * insane_xmit_one(), so a loop is caught.
 */
void insane_xmit_depart(struct insane_dev *ins, struct sk_buff *skb)
{
	struct insane_policy *policy = rcu_dereference_bh(ins->policy);
	struct net_device *lower = rcu_dereference_bh(ins->lower);
	struct insane_relay_path *path;
	enum insane_drop why;
	bool v4;

	if (unlikely(!lower)) {
		why = INSANE_DROP_NO_LOWER;
		goto drop;
	}
	path = this_cpu_ptr(&insane_relay_path);
	if (unlikely(!insane_relay_enter(path, ins))) {
		why = INSANE_DROP_LOOP;
		goto drop;
	}
	v4 = skb->protocol == htons(ETH_P_IP);
	/* Its route changed while it was held: it is relayed whole. */
	if (insane_frame_built(skb) && !insane_frame_kept(ins, skb, lower))
		insane_frame_unbuild(skb);
	insane_xmit_relay(ins, skb, lower, v4, path, policy,
			  policy->extras ? insane_policy_action_now(policy) :
			  &policy->act);
	return;

drop:
	insane_dev_count_drops(ins, why, insane_wire_packets(skb));
	kfree_skb_reason(skb, insane_drop_reasons[why]);
}

/*
 * Policies decide per wire packet. GSO packets reach insane_xmit() whole,
 * whatever the policy: the device has no ndo_features_check that would
 * have the core cut them first, because the core's cut cannot be counted
 * by insane, and __dev_direct_xmit() (AF_PACKET with PACKET_QDISC_BYPASS)
 * drops a packet the core cut; insane_xmit() cuts them itself under any
 * policy but pass, and each piece is decided and counted.
 */
/* Called with rcu_read_lock_bh() held and BHs off. */
netdev_tx_t insane_xmit(struct sk_buff *skb, struct net_device *dev)
{
	struct insane_dev *ins = netdev_priv(dev);
	struct insane_policy *policy = rcu_dereference_bh(ins->policy);
	struct net_device *lower = rcu_dereference_bh(ins->lower);
	struct sk_buff *segs, *next;
	/* A held packet's delay counts from here ("Delay" in the header). */
	u64 arrival = unlikely(policy->delays) ? ktime_get_ns() : 0;

	/*
	 * A GSO packet under any policy but pass (or pass with a rate,
	 * duplicate or corrupt), or whose GSO fields come from user space
	 * (DODGY: not trusted), is cut here, and each piece decided by the
	 * policy in force now.
	 */
	if (unlikely(skb_is_gso(skb) && lower &&
		     (policy->mode != INSANE_MODE_PASS || policy->cuts ||
		      (skb_shinfo(skb)->gso_type & SKB_GSO_DODGY)))) {
		segs = skb_gso_segment(skb, dev->features & ~NETIF_F_GSO_MASK);
		if (IS_ERR(segs)) {
			insane_dev_count_drops(ins, INSANE_DROP_MALFORMED, 1);
			kfree_skb_reason(skb, SKB_DROP_REASON_SKB_GSO_SEG);
			return NETDEV_TX_OK;
		}
		if (segs) {
			consume_skb(skb);
			skb_list_walk_safe(segs, skb, next) {
				skb_mark_not_on_list(skb);
				insane_xmit_one(ins, skb, lower, policy,
						arrival);
			}
			return NETDEV_TX_OK;
		}
	}
	insane_xmit_one(ins, skb, lower, policy, arrival);
	return NETDEV_TX_OK;
}
