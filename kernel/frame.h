/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Held frames: a relayed packet that the delay stage holds is built into
 * the frame the lower sends before its hold, as a qdisc's packet is.
 */
#ifndef _INSANE_FRAME_H
#define _INSANE_FRAME_H

#include <linux/ip.h>
#include <linux/skbuff.h>
#include <linux/types.h>
#include <asm/checksum.h>
#include <linux/uidgid.h>

struct insane_dev;
struct net_device;

/* What insane_frame_build() did with a packet. */
enum insane_frame_result {
	INSANE_FRAME_UNBUILT,	/* held as an IP packet: still the caller's */
	INSANE_FRAME_BUILT,	/* a frame: still the caller's */
	INSANE_FRAME_TAKEN,	/* POSTROUTING queued or stole it */
	INSANE_FRAME_REFUSED,	/* POSTROUTING or the header dropped it */
};

enum insane_frame_result insane_frame_build(struct insane_dev *ins,
					    struct sk_buff *skb,
					    struct net_device *lower, bool v4,
					    kuid_t uid);
bool insane_frame_kept(struct insane_dev *ins, struct sk_buff *skb,
		       struct net_device *lower);
void insane_frame_unbuild(struct sk_buff *skb);
struct dst_entry *insane_frame_dst(const struct sk_buff *skb);

/* A built frame starts at its link-layer header; an IP packet does not. */
static inline bool insane_frame_built(const struct sk_buff *skb)
{
	return skb_network_offset(skb) > 0;
}

/*
 * The length of the IP packet that @skb is or carries (its data never
 * starts past the network header).
 */
static inline unsigned int insane_frame_ip_len(const struct sk_buff *skb)
{
	return skb->len - skb_network_offset(skb);
}

int __insane_ip_csum_fix(struct sk_buff *skb);

/**
 * insane_ip_csum_fix - write a sent IPv4 header's checksum again if wrong
 * @skb: the packet, its data at the network header
 *
 * __ip_local_out() wrote it in the device's netns, and NAT keeps it right:
 * written again only if wrong, and then into a private header, never
 * under a clone (a tap's) that shares it.
 *
 * Return: 0, or -ENOMEM if the header could not be made private.
 */
static inline int insane_ip_csum_fix(struct sk_buff *skb)
{
	if (likely(!ip_fast_csum(skb_network_header(skb), ip_hdr(skb)->ihl)))
		return 0;
	return __insane_ip_csum_fix(skb);
}

#endif /* _INSANE_FRAME_H */
