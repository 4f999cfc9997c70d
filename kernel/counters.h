/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one list of insane's counters, shared by the module and the ip(8)
 * plugin. It includes nothing and only defines macros, so any C program
 * that includes the uapi header can include it too.
 *
 * INSANE_COUNTERS(X) expands X(ATTR, name, reason) once per counter, in the
 * order of enum insane_stats_attr from INSANE_STATS_A_RELAYED_PACKETS on:
 *
 *   ATTR    the suffix of the INSANE_STATS_A_* attribute
 *   name    the counter's name in ethtool -S and in JSON
 *   reason  for a drop cause, the suffix of the SKB_DROP_REASON_* that the
 *           module frees the packet with (6.1's list); unused otherwise
 *
 * The enum grew in two rounds: the transmit direction's relayed counters
 * and drop causes, then the receive direction's (INSANE_STATS_A_RX_*);
 * then the delay stage's drop causes of each direction and its gauges
 * (INSANE_STATS_A_[RX_]HELD_*: what is held now, never reset); then
 * DROP_NO_MEMORY and the marks of duplication and corruption.
 * INSANE_DROP_CAUSES and INSANE_RX_DROP_CAUSES list every cause of a
 * direction; INSANE_COUNTERS lists every counter in the enum's order.
 *
 * Adding a drop cause: append its attribute to enum insane_stats_attr in
 * include/uapi/linux/insane.h and one line to a new _3 list of its
 * direction, added to the end of INSANE_DROP_CAUSES (transmit) or
 * INSANE_RX_DROP_CAUSES (receive) and to INSANE_COUNTERS in the enum's
 * order. Nothing else lists the counters.
 */
#ifndef _INSANE_COUNTERS_H
#define _INSANE_COUNTERS_H

#define INSANE_RELAY_COUNTERS(X)					\
	X(RELAYED_PACKETS,	relayed_packets,	NOT_SPECIFIED)	\
	X(RELAYED_BYTES,	relayed_bytes,		NOT_SPECIFIED)

#define INSANE_DROP_CAUSES_1(X)						\
	X(DROP_POLICY,		drop_policy,		NOT_SPECIFIED)	\
	X(DROP_NO_LOWER,	drop_no_lower,		DEV_READY)	\
	X(DROP_NO_ROUTE,	drop_no_route,		IP_OUTNOROUTES)	\
	X(DROP_LOWER_REFUSED,	drop_lower_refused,	NOT_SPECIFIED)	\
	X(DROP_NOT_IP,		drop_not_ip,		UNHANDLED_PROTO) \
	X(DROP_LOOP,		drop_loop,		NOT_SPECIFIED)	\
	X(DROP_MALFORMED,	drop_malformed,		IP_INHDR)

#define INSANE_RX_RELAY_COUNTERS(X)					\
	X(RX_RELAYED_PACKETS,	rx_relayed_packets,	NOT_SPECIFIED)	\
	X(RX_RELAYED_BYTES,	rx_relayed_bytes,	NOT_SPECIFIED)

#define INSANE_RX_DROP_CAUSES_1(X)					\
	X(RX_DROP_POLICY,	rx_drop_policy,		NOT_SPECIFIED)	\
	X(RX_DROP_NO_MEMORY,	rx_drop_no_memory,	NOMEM)		\
	X(RX_DROP_MALFORMED,	rx_drop_malformed,	SKB_GSO_SEG)

/* The delay stage's causes (issue 24), appended to the enum after those. */
#define INSANE_DROP_CAUSES_2(X)						\
	X(DROP_QUEUE_FULL,	drop_queue_full,	QDISC_DROP)	\
	X(DROP_FLUSHED,		drop_flushed,		DEV_READY)

#define INSANE_RX_DROP_CAUSES_2(X)					\
	X(RX_DROP_QUEUE_FULL,	rx_drop_queue_full,	QDISC_DROP)	\
	X(RX_DROP_FLUSHED,	rx_drop_flushed,	DEV_READY)

/*
 * Gauges: what the delay stage holds now. Never reset, never a drop; the
 * module reads them from the delay stage (delay.c), not from counters.
 */
#define INSANE_GAUGES(X)						\
	X(HELD_PACKETS,		held_packets,		NOT_SPECIFIED)	\
	X(HELD_BYTES,		held_bytes,		NOT_SPECIFIED)	\
	X(RX_HELD_PACKETS,	rx_held_packets,	NOT_SPECIFIED)	\
	X(RX_HELD_BYTES,	rx_held_bytes,		NOT_SPECIFIED)

/* Duplication and corruption (issue 25): a drop cause, then the marks. */
#define INSANE_DROP_CAUSES_3(X)						\
	X(DROP_NO_MEMORY,	drop_no_memory,		NOMEM)

/*
 * Marks: not drops, and not in the interface's dropped counts. A mark
 * counts what happened to packets that are also counted as relayed or
 * dropped (a copy of a duplicated packet is itself counted too).
 */
#define INSANE_MARKS(X)							\
	X(DUPLICATED,		duplicated,		NOT_SPECIFIED)	\
	X(CORRUPTED,		corrupted,		NOT_SPECIFIED)	\
	X(RX_DUPLICATED,	rx_duplicated,		NOT_SPECIFIED)	\
	X(RX_CORRUPTED,		rx_corrupted,		NOT_SPECIFIED)

/* Every drop cause of each direction. */
#define INSANE_DROP_CAUSES(X)		\
	INSANE_DROP_CAUSES_1(X)		\
	INSANE_DROP_CAUSES_2(X)		\
	INSANE_DROP_CAUSES_3(X)

#define INSANE_RX_DROP_CAUSES(X)	\
	INSANE_RX_DROP_CAUSES_1(X)	\
	INSANE_RX_DROP_CAUSES_2(X)

/* Every counter, in the order of enum insane_stats_attr. */
#define INSANE_COUNTERS(X)		\
	INSANE_RELAY_COUNTERS(X)	\
	INSANE_DROP_CAUSES_1(X)		\
	INSANE_RX_RELAY_COUNTERS(X)	\
	INSANE_RX_DROP_CAUSES_1(X)	\
	INSANE_DROP_CAUSES_2(X)		\
	INSANE_RX_DROP_CAUSES_2(X)	\
	INSANE_GAUGES(X)		\
	INSANE_DROP_CAUSES_3(X)		\
	INSANE_MARKS(X)

#ifdef __KERNEL__
/*
 * The module's drop causes, transmit then receive: INSANE_DROP_POLICY, ...,
 * INSANE_RX_DROP_POLICY, ... in the lists' order.
 */
#define INSANE_DROP_ENUM(attr, name, reason) INSANE_##attr,
enum insane_drop {
	INSANE_DROP_CAUSES(INSANE_DROP_ENUM)
	INSANE_RX_DROP_CAUSES(INSANE_DROP_ENUM)
	INSANE_DROP_NR,
	/* The marks follow, counted in the same per-CPU array. */
	INSANE_MARK_FIRST = INSANE_DROP_NR - 1,
	INSANE_MARKS(INSANE_DROP_ENUM)
	INSANE_COUNT_NR
};

#undef INSANE_DROP_ENUM
#define INSANE_DROP_ONE(attr, name, reason) + 1
/* The transmit causes are 0 .. INSANE_TX_DROP_NR - 1, the rest receive's. */
#define INSANE_TX_DROP_NR	(0 INSANE_DROP_CAUSES(INSANE_DROP_ONE))
/* The gauges: held packets and bytes, transmit then receive. */
#define INSANE_GAUGE_NR		(0 INSANE_GAUGES(INSANE_DROP_ONE))
#endif /* __KERNEL__ */

#endif /* _INSANE_COUNTERS_H */
