/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * insane: a stacked virtual network interface for fault injection.
 *
 * An insane device sits on a lower device (the 2000 article called it the
 * "slave"). Every IPv4 or IPv6 packet routed through it is either relayed
 * out of the lower device or dropped, as decided by the device's policy.
 * Anything else is dropped, and every packet is counted once (see
 * "Counters"). The device also has a receive policy, off by default: while
 * it is set, the replies of the hosts routed through the device come in
 * through it too, and the receive policy decides them (see "Receive").
 *
 * This header is the single source of truth for every number shared by the
 * kernel module, the Go client and the CLI. Every enum here is append-only.
 *
 * Link type
 * ---------
 * rtnetlink kind "insane". IFLA_LINK names the lower device (optional: a
 * device created without one is detached; see "Carrier and counters").
 * The lower cannot be the loopback device, an L3 master (VRF) device or
 * the device itself (EINVAL), and stacking that would close a cycle is
 * refused (EBUSY). IFLA_MTU, if given, must not exceed the lower's MTU
 * (EINVAL). IFLA_INFO_DATA, at most once, holds exactly the attributes of
 * enum insane_policy_attr: the transmit policy's, the same set that
 * INSANE_DEVICE_A_POLICY nests in generic netlink, plus, in IFLA_INFO_DATA
 * only, INSANE_POLICY_A_RX (NLA_NESTED: a complete receive policy, the
 * same set again without INSANE_POLICY_A_RX and INSANE_POLICY_A_RX_OFF) and
 * INSANE_POLICY_A_RX_OFF (NLA_FLAG: turn the receive policy off; it
 * contradicts INSANE_POLICY_A_RX). Replies carry INSANE_POLICY_A_RX while
 * the receive policy is on, and neither attribute while it is off.
 * Long policies: a schedule of 64 steps puts about 3.5 KB in a policy, and
 * a device with two such policies over 7 KB in IFLA_INFO_DATA. A dump of
 * links read with a small buffer (no IFLA_EXT_MASK: the kernel fills
 * NLMSG_GOODSIZE, or the reader's buffer, about 4 KB, as glibc's
 * getifaddrs() and Go's net.Interfaces() do) could not hold the message,
 * and the dump would end there, every later link missing. So an
 * IFLA_INFO_DATA that does not fit in a fresh dump message is written
 * compact: each schedule without INSANE_POLICY_A_STEPS and with
 * INSANE_POLICY_A_STEPS_OMITTED (NLA_U32) = the number of steps left out,
 * every other attribute as usual. A single RTM_GETLINK, every
 * notification, a dump read with a large buffer, and generic netlink
 * always carry the full policy.
 * IFLA_INFO_XSTATS, in replies only, holds the INSANE_STATS_A_* counters
 * of INSANE_DEVICE_A_STATS. A change of an existing device (RTM_NEWLINK
 * without NLM_F_CREATE) replaces the whole transmit policy when
 * IFLA_INFO_DATA holds any transmit policy attribute and keeps it
 * otherwise; it replaces the receive policy with INSANE_POLICY_A_RX, turns
 * it off with INSANE_POLICY_A_RX_OFF and keeps it otherwise.
 *
 * Generic netlink
 * ---------------
 * Family INSANE_GENL_NAME, version INSANE_GENL_VERSION, multicast group
 * INSANE_GENL_MCGRP_EVENTS. Every command is strict: unknown attributes, and
 * attributes that do not belong to a command or a mode, are refused with
 * EINVAL and an extended-ack message naming the attribute.
 *
 * INSANE_CMD_GET_DEVICE
 *   Open to any user. Without NLM_F_DUMP, the request names one device:
 *
 *     INSANE_DEVICE_A_IFINDEX: NLA_U32
 *     INSANE_DEVICE_A_IFNAME: NLA_NUL_STRING, maxlen IFNAMSIZ - 1
 *
 *   exactly one of the two. With NLM_F_DUMP the request carries no
 *   attribute and the reply lists every insane device in the caller's
 *   network namespace. Each reply message is:
 *
 *     INSANE_DEVICE_A_IFINDEX: NLA_U32
 *     INSANE_DEVICE_A_IFNAME: NLA_NUL_STRING
 *     INSANE_DEVICE_A_LOWER_IFINDEX: NLA_U32, only while attached; the
 *         index in the lower's own network namespace
 *     INSANE_DEVICE_A_LOWER_IFNAME: NLA_NUL_STRING, only while attached
 *     INSANE_DEVICE_A_POLICY: NLA_NESTED
 *         INSANE_POLICY_A_MODE: NLA_U32, enum insane_mode
 *         INSANE_POLICY_A_PERCENT: NLA_U32, only in INSANE_MODE_PERCENT
 *             and INSANE_MODE_BURST
 *         INSANE_POLICY_A_BURST: NLA_U32, only in INSANE_MODE_BURST
 *         INSANE_POLICY_A_GE_P, INSANE_POLICY_A_GE_R,
 *         INSANE_POLICY_A_GE_LOSS_BAD, INSANE_POLICY_A_GE_LOSS_GOOD:
 *             NLA_U32, only in INSANE_MODE_GILBERT, all four (the
 *             defaults filled in)
 *         INSANE_POLICY_A_SEED: NLA_U64, only if the policy has a seed
 *         INSANE_POLICY_A_ON_NS: NLA_U64, only in INSANE_MODE_TIME
 *         INSANE_POLICY_A_OFF_NS: NLA_U64, only in INSANE_MODE_TIME
 *         INSANE_POLICY_A_STEPS: NLA_NESTED, only in INSANE_MODE_SCHEDULE
 *         INSANE_POLICY_A_ONCE: NLA_FLAG, only in a schedule that has it
 *         INSANE_POLICY_A_STEP_INDEX: NLA_U32, in INSANE_MODE_TIME and
 *             INSANE_MODE_SCHEDULE: the step in force when the reply was
 *             made (time mode: 0 is the ON window, 1 the OFF window)
 *         INSANE_POLICY_A_STEP_LEFT_NS: NLA_U64, beside STEP_INDEX: the
 *             time left in that step; absent while the last step of a
 *             schedule with INSANE_POLICY_A_ONCE holds for good
 *         INSANE_POLICY_A_CARRIER, INSANE_POLICY_A_EVENTS: NLA_FLAG, only
 *             in a time or schedule policy that has them
 *     INSANE_DEVICE_A_RX_POLICY: NLA_NESTED, the receive policy, only while
 *         it is on; the same attributes as INSANE_DEVICE_A_POLICY
 *     INSANE_DEVICE_A_STATS: NLA_NESTED, counters since creation or the
 *         last INSANE_DEVICE_F_RESET_STATS
 *         INSANE_STATS_A_RELAYED_PACKETS: NLA_U64
 *         INSANE_STATS_A_RELAYED_BYTES: NLA_U64
 *         INSANE_STATS_A_DROP_POLICY: NLA_U64
 *         INSANE_STATS_A_DROP_NO_LOWER: NLA_U64
 *         INSANE_STATS_A_DROP_NO_ROUTE: NLA_U64
 *         INSANE_STATS_A_DROP_LOWER_REFUSED: NLA_U64
 *         INSANE_STATS_A_DROP_NOT_IP: NLA_U64
 *         INSANE_STATS_A_DROP_LOOP: NLA_U64
 *         INSANE_STATS_A_DROP_MALFORMED: NLA_U64
 *         INSANE_STATS_A_RX_RELAYED_PACKETS: NLA_U64
 *         INSANE_STATS_A_RX_RELAYED_BYTES: NLA_U64
 *         INSANE_STATS_A_RX_DROP_POLICY: NLA_U64
 *         INSANE_STATS_A_RX_DROP_NO_MEMORY: NLA_U64
 *         INSANE_STATS_A_RX_DROP_MALFORMED: NLA_U64
 *         INSANE_STATS_A_DROP_QUEUE_FULL, INSANE_STATS_A_DROP_FLUSHED,
 *         INSANE_STATS_A_RX_DROP_QUEUE_FULL, INSANE_STATS_A_RX_DROP_FLUSHED,
 *         INSANE_STATS_A_HELD_PACKETS, INSANE_STATS_A_HELD_BYTES,
 *         INSANE_STATS_A_RX_HELD_PACKETS, INSANE_STATS_A_RX_HELD_BYTES:
 *             NLA_U64 (see "Delay")
 *
 * INSANE_CMD_SET_DEVICE
 *   Requires CAP_NET_ADMIN in the user namespace that owns the device's
 *   network namespace. Attributes:
 *
 *     INSANE_DEVICE_A_IFINDEX or INSANE_DEVICE_A_IFNAME: exactly one
 *     INSANE_DEVICE_A_LOWER_IFINDEX or INSANE_DEVICE_A_LOWER_IFNAME: at most
 *         one; attaches the device to that lower (looked up in the insane
 *         device's network namespace), replacing any current lower
 *     INSANE_DEVICE_A_FLAGS: NLA_U32, a mask of enum insane_device_flag
 *     INSANE_DEVICE_A_POLICY: NLA_NESTED, a complete new policy
 *     INSANE_DEVICE_A_RX_POLICY: NLA_NESTED, a complete new receive policy
 *         (the same attributes), which turns the receive direction on
 *
 *   Everything in one request is checked before anything is changed.
 *   INSANE_DEVICE_F_DETACH together with a lower is refused, and so is
 *   INSANE_DEVICE_F_RX_OFF together with INSANE_DEVICE_A_RX_POLICY.
 *   Turning the receive policy on, or attaching a device whose receive
 *   policy is on, fails with EBUSY when the receive hook cannot be had on
 *   the lower (see "Receive"); the message says what holds it.
 *
 * INSANE_CMD_EVENT
 *   Never a request. Sent to INSANE_GENL_MCGRP_EVENTS in the device's network
 *   namespace whenever a device's policy changes (INSANE_EVENT_POLICY),
 *   its receive policy is set or turned off (INSANE_EVENT_RX_POLICY), it is
 *   attached or detached, or its counters are reset. The message carries
 *   INSANE_DEVICE_A_EVENT (NLA_U32, enum insane_event) followed by the
 *   same attributes as a GET_DEVICE reply, taken after the change. Policies
 *   with INSANE_POLICY_A_EVENTS also send INSANE_EVENT_EDGE at each edge of
 *   their windows, with attributes of their own (see "Edges").
 *
 * Carrier and counters
 * --------------------
 * While attached, the device's carrier and operational state follow the
 * lower's (and a policy's carrier flaps: see "Carrier flaps"). A detached
 * device keeps its carrier but is dormant: ip link shows NO-CARRIER and
 * state DORMANT, and every packet routed to it is counted in
 * INSANE_STATS_A_DROP_NO_LOWER. (While an attached device's lower has no
 * carrier, neither has the device, and the kernel discards what is routed
 * to it before the driver sees it, as for any device without carrier.)
 * Interface statistics: TX packets and bytes are the relayed packets, TX
 * dropped is the sum of every transmit drop counter, RX packets and bytes
 * are the packets the receive policy passed up, RX dropped the sum of the
 * INSANE_STATS_A_RX_DROP_* counters; they are never reset.
 *
 * Each packet is checked in this order, and the first check that fails
 * names its drop cause: a lower device (NO_LOWER); IPv4 or IPv6 (NOT_IP,
 * also for IPv6 on a kernel booted with ipv6.disable=1); a well-formed
 * header (MALFORMED: IPv4 with version 4, ihl >= 5, the whole header
 * present and tot_len equal to the packet's length; IPv6 with version 6
 * and a non-zero payload_len that matches the packet's length); not already
 * being relayed by this device (LOOP); the policy (POLICY); a route out of
 * the lower (NO_ROUTE): the lookup has the lower as output interface, and a
 * result that is not unicast (local, broadcast, multicast, anycast) or that
 * leaves by another device is refused, as is IPv6 on a lower where IPv6 is
 * disabled (an IPv4 destination with no route is taken to be on-link, as
 * the kernel does for a lookup with an output interface); the lower's stack
 * taking it (LOWER_REFUSED, else RELAYED). Only packets that reach the
 * policy, and are not multicast, are "handled" in the sense of the seeded
 * sequence below.
 *
 * MTU
 * ---
 * While attached, the device's MTU is at most the lower's (ip link set
 * refuses more, with the core's extended-ack message) and follows the
 * lower's MTU, up and down, unless the user chose one (IFLA_MTU at creation
 * or a later change): a chosen MTU is kept, and lowered only when the
 * lower's drops below it.
 *
 * Relay and netfilter
 * -------------------
 * A relayed packet is routed again in the lower's network namespace with
 * the lower as output interface, and leaves with the lower as its device
 * (skb->dev), without the sending socket (skb->sk stays its owner, but the
 * lower's stack is not given it). When the lower is in the device's own
 * network namespace, the packet has already passed OUTPUT (and any NAT
 * there) on its way to the device, so the relay skips OUTPUT and runs only
 * POSTROUTING again, now with the lower as output device (a delayed
 * packet when it is held: see "Delay"): NAT is decided once, by rules that
 * see the insane device as the output device. When the
 * lower is in another network namespace, the packet arrives there scrubbed
 * (no conntrack entry, no mark) and passes that namespace's OUTPUT and
 * POSTROUTING as a locally sent packet. A packet that comes back to a
 * device that is relaying it (a route, a tunnel or NAT of the lower's
 * namespace leading back) is dropped as LOOP before the kernel's own
 * recursion limit; a loop through a qdisc added to the device is not
 * synchronous and is not caught.
 *
 * Receive
 * -------
 * While the receive policy is off (the default), insane does not touch
 * received traffic at all: no hook is installed on the lower, and nothing
 * is counted in the RX_* counters.
 *
 * While it is on and the device is attached, insane holds the lower's
 * rx_handler (one shared by every insane device on that lower). A packet
 * received on the lower is taken over by an insane device when all of
 * these hold: it is an IPv4 or IPv6 packet addressed to this host at the
 * link layer (PACKET_HOST, no VLAN tag left), with a readable header
 * (IPv4 version 4 and ihl >= 5, IPv6 version 6), not IPv6 neighbour
 * discovery, with neither address IPv6 link-local (fe80::/10: like ND,
 * it belongs to the lower's link, whatever route insane0's own fe80::/64
 * is), and a destination that is not multicast or limited broadcast;
 * across namespaces (the insane device's is not the lower's), a
 * destination that is a local address of the insane device's namespace
 * (ipvlan's rule: that namespace never takes what the lower's namespace
 * is sent); and the route to its source address, looked up in the
 * insane device's network namespace as for a reply (the
 * main lookup with the policy rules, the packet's destination as source
 * and its mark; a multipath route by its first nexthop), is a unicast
 * route out of that insane device, which is up. Several insane devices on
 * one lower each take the packets whose source routes through them. Every
 * other packet (other sources, ARP, ND, link-local, non-IP, malformed,
 * and across namespaces what is not addressed to the insane device's)
 * stays on the lower, untouched, and is counted by none of them.
 *
 * Setting a receive policy (IFLA_INFO_DATA in RTM_NEWLINK or RTM_SETLINK,
 * INSANE_CMD_SET_DEVICE), or attaching a device whose receive policy is
 * on, needs CAP_NET_ADMIN over the lower's network namespace as well when
 * it is not the device's: else EPERM, with a message. Turning the receive
 * policy off needs only what any change of the device needs.
 *
 * The receive policy decides, and the counters count, wire packets. A
 * GSO packet (a sender's TSO packet passed whole by a veth, or one that
 * GRO built) is cut into its wire packets before insane0 receives them,
 * each decided on its own, in order, under any policy but pass (and
 * whatever the policy if it is SKB_GSO_DODGY: its fields come from user
 * space); under pass it goes up whole and counts as its gso_segs packets.
 * A GSO packet that cannot be cut is counted once, in RX_DROP_NO_MEMORY
 * or RX_DROP_MALFORMED.
 *
 * A packet taken over is received on the insane device: its ptype taps
 * (tcpdump -i insane0) and tc ingress see it first, then the receive
 * policy decides it. Passed, it goes up the stack as received on the
 * insane device (netfilter's iif, rp_filter and sockets bound to the
 * device see the insane device), counted in RX_RELAYED_* and in RX packets;
 * dropped, it is counted in RX_DROP_POLICY. Since the reply of a host comes
 * in on the device its route points at, strict reverse path filtering
 * (rp_filter=1) holds with no sysctl change. A lower in another network
 * namespace than the insane device works: the lookup is made in the insane
 * device's namespace, and the packet is scrubbed (no mark, no conntrack
 * state) as it crosses. ARP stays on the lower, where strict rp_filter
 * still validates an ARP request's source against the lower: a routed host
 * learns this host's address from this host's own ARP requests.
 *
 * The lower's rx_handler is a single slot: a bridge, bond, team, macvlan,
 * ipvlan or Open vSwitch port already holds it, and then setting a
 * receive policy (or attaching a device whose receive policy is on) fails
 * with EBUSY and a message that names the holder; the transmit direction
 * is unaffected. Conversely, while insane holds it, such a device cannot
 * take the lower. The insane device's own rx_handler is where the receive
 * decision is made, so it must be free too.
 *
 * Policies
 * --------
 * A policy is complete: INSANE_POLICY_A_MODE is required whenever any policy
 * attribute is given, and each mode takes exactly its own attributes.
 *
 * INSANE_MODE_PASS    relays every packet. No other attribute.
 * INSANE_MODE_PERCENT relays INSANE_POLICY_A_PERCENT / INSANE_PERCENT_SCALE
 *                     percent of packets: 80000000 relays 80 % and drops
 *                     20 %. At most INSANE_PERCENT_MAX. Optional
 *                     INSANE_POLICY_A_SEED.
 * INSANE_MODE_TIME    relays for INSANE_POLICY_A_ON_NS, then drops for
 *                     INSANE_POLICY_A_OFF_NS, repeating. Both required; their
 *                     sum must be positive and must not overflow. The first
 *                     ON window opens when the policy is set. It is the
 *                     schedule "ON pass OFF drop" (see below), and reports
 *                     its step in the same way.
 * INSANE_MODE_DROP    drops every packet. No other attribute.
 * INSANE_MODE_BURST   relays INSANE_POLICY_A_PERCENT of the packets on
 *                     average, as percent mode does, and drops the others
 *                     in bursts whose mean length is INSANE_POLICY_A_BURST
 *                     (in thousandths of a packet: 5000 is 5 packets). Both
 *                     required; optional INSANE_POLICY_A_SEED. PERCENT must
 *                     be above 0; BURST must be at least INSANE_BURST_SCALE
 *                     (a burst has at least one packet) and at least
 *                     (100 % - PERCENT) / PERCENT packets (below that the
 *                     chance of starting a burst would exceed 1). Independent
 *                     loss at the same PERCENT has a mean burst length of
 *                     100 % / PERCENT packets. It is the Gilbert chain below
 *                     with
 *                         p = (INSANE_PERCENT_MAX - PERCENT) * INSANE_BURST_SCALE
 *                             / (PERCENT * BURST)
 *                         r = INSANE_BURST_SCALE / BURST
 *                     a bad state that drops every packet and a good state
 *                     that drops none: its share of bad packets is
 *                     p / (p + r) = 1 - PERCENT / 100 %, and a burst lasts
 *                     1 / r = BURST packets on average (geometrically).
 * INSANE_MODE_GILBERT the two-state Gilbert-Elliott chain with its raw
 *                     parameters, in millionths of a percent as PERCENT is:
 *                     INSANE_POLICY_A_GE_P, the chance that a packet in the
 *                     good state moves the chain to the bad one, and
 *                     INSANE_POLICY_A_GE_R, the chance of moving back
 *                     (both required; R must be above 0, or a burst would
 *                     never end); INSANE_POLICY_A_GE_LOSS_BAD, the chance
 *                     that a packet is lost in the bad state (default
 *                     100 %), and INSANE_POLICY_A_GE_LOSS_GOOD, in the good
 *                     state (default 0). The two loss chances are what
 *                     tc-netem's "loss gemodel p r 1-h 1-k" takes as its
 *                     third and fourth numbers (1-h and 1-k, not h and k).
 *                     Each at most INSANE_PERCENT_MAX. Optional
 *                     INSANE_POLICY_A_SEED.
 * INSANE_MODE_SCHEDULE runs INSANE_POLICY_A_STEPS in order, each for its
 *                     duration, from when the policy is set, and starts
 *                     over after the last, or, with INSANE_POLICY_A_ONCE,
 *                     keeps the last step's action for good once the last
 *                     step has run its duration. STEPS holds 1 to
 *                     INSANE_SCHEDULE_STEPS_MAX attributes of type
 *                     INSANE_STEPS_A_STEP, nothing else; each STEP nests a
 *                     policy (enum insane_policy_attr again) of mode pass,
 *                     drop, percent, burst or gilbert, with that mode's
 *                     attributes but no seed, plus INSANE_POLICY_A_DURATION_NS
 *                     (required, above 0; only valid in a step). The sum of
 *                     the durations must not exceed 2^63 - 1 ns. Optional
 *                     INSANE_POLICY_A_SEED, for the steps that draw
 *                     (percent, burst, gilbert). A refusal inside a step
 *                     points at the step's attribute.
 *
 * Two flags apply to time and schedule policies, the only ones with
 * windows (refused, with a message, on every other mode and inside a step):
 *
 * INSANE_POLICY_A_CARRIER (NLA_FLAG, transmit policy only) flaps the
 *     device's carrier with the windows: see "Carrier flaps".
 * INSANE_POLICY_A_EVENTS (NLA_FLAG, transmit or receive policy) sends an
 *     INSANE_EVENT_EDGE at every window or step boundary: see "Edges".
 *
 * With either flag every window must last at least INSANE_EDGE_MIN_NS
 * (10 ms): in time mode both ON_NS and OFF_NS, in a schedule every step's
 * DURATION_NS (EINVAL, naming the attribute). Shorter windows would turn
 * the carrier changes or the events into a flood: each carrier change runs
 * the kernel's link watch under RTNL and reaches every rtnetlink listener.
 * Replies carry both flags as set.
 *
 * Delay
 * -----
 * Any policy but a schedule, and any step of a schedule, may hold a delay
 * stage; the policy's action decides first, and what it relays is held,
 * then sent on at its departure time. Attributes (EINVAL with a message
 * naming the attribute for every refusal below):
 *
 *     INSANE_POLICY_A_DELAY_NS: NLA_U64, D, 1 .. INSANE_DELAY_MAX_NS; in a
 *         schedule only inside the steps
 *     INSANE_POLICY_A_JITTER_NS: NLA_U64, J, needs DELAY_NS
 *     INSANE_POLICY_A_DISTRIBUTION: NLA_U32, enum insane_distribution,
 *         needs JITTER_NS; default INSANE_DISTRIBUTION_UNIFORM
 *     INSANE_POLICY_A_CORRELATION: NLA_U32, rho in millionths of a percent
 *         as PERCENT is, below INSANE_PERCENT_MAX; needs JITTER_NS
 *     INSANE_POLICY_A_REORDER: NLA_FLAG, needs DELAY_NS (see "Order")
 *     INSANE_POLICY_A_LIMIT: NLA_U32, 1 .. INSANE_DELAY_LIMIT_MAX, the
 *         packets of one direction that each CPU holds at most; default
 *         INSANE_DELAY_LIMIT_DEFAULT; top level only, with or without a
 *         delay (it holds for the steps too)
 *
 * The drawn delay d of a packet (see "Delay draws") is D exactly without
 * jitter; with it, d = D - J + (2J * u >> 32) for uniform (so J must not
 * exceed D), and D + (J * z >> 16) for the others, z a standardized draw
 * in Q16 (mean 0, standard deviation 1), clamped at 0 from below. The
 * largest d a distribution can draw (D + J * z_max) must not exceed
 * INSANE_DELAY_MAX_NS, and pareto refuses a J whose smallest draw
 * (D + J * z_min, z_min = -37837 / 65536) would be below 0.
 *
 * Transmit: a relayed packet is held after the checks and the decision,
 * its delay counted from the moment the device's transmit took it (its
 * checks, decision and hold take none of it). Before its hold it is made
 * into the frame the lower will send, as a qdisc's packet is: routed out
 * of the lower, passed through POSTROUTING (the lower as output device)
 * and given its resolved neighbour's link-layer header. At its departure
 * the frame goes to the lower's queue (dev_queue_xmit()) if its route is
 * still the one in force, on the same lower; if not, it is routed and
 * relayed again then, and passes POSTROUTING a second time. A packet that
 * cannot be built (a lower in another namespace or a VRF's, or without a
 * link-layer header; an IPsec or lightweight-tunnel route; fragments
 * needed; no resolved neighbour) is held as it is, and routed and relayed
 * at its departure. Either way the lower in force at the departure
 * counts: a packet whose lower is gone counts in DROP_NO_LOWER, without a
 * route in DROP_NO_ROUTE; a loop is caught as without delay. A packet
 * that POSTROUTING drops at its hold counts in DROP_LOWER_REFUSED then;
 * one that a rule queues to user space (NFQUEUE) leaves at its verdict,
 * unheld. A held packet no longer charges its socket's send
 * buffer (skb_orphan_partial(), as netem does), so TCP through a delay
 * reaches what its window allows.
 *
 * Receive: the delay comes first. A packet taken over (after the
 * namespace check and the cut of a GSO packet into wire packets) is held
 * from the moment the lower received it, with the delay of the step in
 * force then; at its departure it is received on the insane device: its
 * taps and tc ingress see it once, late, as a receiver behind a slow link
 * would, then the receive policy decides it (in the step in force then).
 *
 * Each CPU holds its own queue of each direction, in departure order,
 * released by a timer pinned to that CPU: no lock is shared. A packet
 * never departs before its time. A dense transmit stream (holds on a CPU
 * less than 10 us apart on average) is also released by its own packets,
 * as netem's queue is: each hold sends on what is due, and the timer then
 * runs up to 20 us past the head's departure. A packet that finds its
 * CPU's queue holding LIMIT packets is dropped and counted in
 * DROP_QUEUE_FULL (RX_DROP_QUEUE_FULL). HELD_PACKETS and HELD_BYTES
 * (RX_HELD_*) report what the device holds now, and are not reset by
 * INSANE_DEVICE_F_RESET_STATS. Replacing the policy, or detaching the
 * lower, leaves held packets and their departure times as they are.
 * When the device goes down (deleted, moved to another namespace, its
 * namespace deleted, the module unloaded: each closes it first) every
 * held packet is freed and counted in DROP_FLUSHED (RX_DROP_FLUSHED).
 *
 * Order: without INSANE_POLICY_A_REORDER, no packet of a flow departs
 * before an earlier packet of the same flow, whatever the jitter, the
 * steps or the CPUs that sent them: a packet's departure is the later of
 * its arrival plus d and the last departure of its flow. A flow is the
 * packet's skb_get_hash() bucket in a table of INSANE_DELAY_FLOWS
 * (flows that share a bucket share an order). A packet whose flow still
 * has a packet held on another CPU (its sender moved) is handed over to
 * that CPU's queue, so that a flow leaves from one CPU and nothing
 * downstream (per-CPU backlogs) reorders it; it still leaves only after
 * its predecessor. With REORDER, each packet departs at its arrival plus
 * d, as netem does. A held received packet no longer charges its
 * sender's socket (a veth peer's), as ip_rcv() would not.
 *
 * Delay draws. The k-th packet of a direction that draws a delay (it has
 * a JITTER_NS; k from 0 each time the policy is set, counting only such
 * packets) under seed S takes
 *
 *     x = mix64((S ^ INSANE_DELAY_SALT) + (k + 1) * 0x9e3779b97f4a7c15)
 *
 * with the mixing steps of "Percent decisions"; u1 = x >> 32, u2 = x &
 * 0xffffffff. Without a seed, x comes from this CPU's sequence. N(u) and
 * P(u) read the tables of kernel/dist_tables.h (written with the Go
 * predictor's by go/internal/distgen) at u: T[i] + ((T[i + 1] - T[i]) * f
 * >> 20) with i = u >> 20 and f = u & 0xfffff (signed, the shift
 * arithmetic). normal: z = N(u1); pareto: z = P(u1), the Pareto of shape 3
 * standardized; paretonormal: z = (N(u1) * 32768 + P(u2) * 56756) >> 16.
 * With CORRELATION rho (a Gaussian copula, which keeps the distribution
 * and so its mean and spread): rq = rho * 65536 / INSANE_PERCENT_MAX
 * (rounded down), s = floor(sqrt(2^32 - rq^2)); a latent g_0 = N(u1),
 * g_k = (rq * g_(k-1) + s * N(u1)) >> 16, clamped to +-N's last knot; normal
 * takes z = g_k, the others use Phi(g_k) (the CDF table, read at g_k + 8
 * * 65536 with i = that >> 8 and f its low 8 bits, shifted by 8) in place
 * of u1 (at g = 8 * 65536, i = 4096: the last knot). Seeded, k and g
 * advance together in one atomic word, (k << 24) | (g & 0xffffff), as
 * the Gilbert chain's state does. "g_0" is the first draw with
 * CORRELATION since the policy was set (in a schedule, draws of steps
 * without CORRELATION take a k and leave g as it is); unseeded, each CPU
 * keeps its own g, from its own first correlated draw.
 *
 * INSANE_POLICY_A_SEED is taken beside JITTER_NS whatever the mode (pass
 * included); the draws of the delay and the decisions of percent, burst
 * and gilbert have their own k. A transmitted multicast packet (never
 * relayed) that an action with jitter relays draws from this CPU's
 * sequence and takes no k, as for the decisions. In time mode the
 * policy's delay holds in both windows.
 *
 * INSANE_POLICY_A_STEP_INDEX and INSANE_POLICY_A_STEP_LEFT_NS are reported,
 * never set: a request that carries them is refused.
 *
 * Rate, duplication and corruption
 * --------------------------------
 * Any policy but a schedule, and any step of a schedule, may also hold
 * (EINVAL with a message naming the attribute for every refusal below):
 *
 *     INSANE_POLICY_A_RATE: NLA_U64, R in bits per second,
 *         INSANE_RATE_MIN .. INSANE_RATE_MAX
 *     INSANE_POLICY_A_OVERHEAD: NLA_U32, bytes added to each wire packet's
 *         length, 0 .. INSANE_RATE_OVERHEAD_MAX, default 0; needs RATE
 *     INSANE_POLICY_A_BUFFER_NS: NLA_U64, B, 1 .. INSANE_DELAY_MAX_NS;
 *         needs RATE
 *     INSANE_POLICY_A_DUPLICATE: NLA_U32, in millionths of a percent as
 *         PERCENT is, 1 .. INSANE_PERCENT_MAX
 *     INSANE_POLICY_A_CORRUPT: NLA_U32, the same scale and range
 *     INSANE_POLICY_A_CORRUPT_HEADER: NLA_FLAG, needs CORRUPT
 *
 * Rate. Each direction of a device has one serialization clock F, shared
 * by every CPU and kept while the device is up (a new policy, a step's
 * edge or a new rate starts from where F is; when the device goes down,
 * its held packets are flushed and F starts over). A packet of L bytes
 * (from the network header on, as the counters count bytes) takes
 * t = (L + OVERHEAD) * 8 * 10^9 / R ns on the wire (rounded down, to the
 * nanosecond; an OVERHEAD of 38 counts Ethernet's header, FCS, preamble and
 * inter-frame gap; the default 0 counts the IP packet alone). It starts
 * at s = max(now, F), F becomes s + t in one atomic step, and the packet
 * departs at s + t, then waits its delay d if the action has one (so its
 * departure is s + t + d, and the order rule of "Delay" still applies).
 * With BUFFER_NS, a packet that would wait more than B before its first
 * bit (s - now > B) is refused and counted in DROP_QUEUE_FULL
 * (RX_DROP_QUEUE_FULL) without moving F: B is the queue's length in time
 * at the rate. LIMIT bounds the packets held per CPU as for a delay (the
 * queue it fills is the delay stage's). Rate is charged per wire packet: a
 * GSO packet under a policy with RATE, DUPLICATE or CORRUPT in any action
 * is cut into its wire packets first, each charged with its own headers.
 *
 * Duplication and corruption draws. A packet meets its action's DUPLICATE
 * and CORRUPT when it leaves the delay stage (without one, right after
 * the decision on transmit, and when it is taken over on receive), under
 * the action in force then: the step's, in time and schedule modes. The
 * k-th packet of a direction to meet an action with DUPLICATE or CORRUPT
 * (k from 0 each time the policy is set, counting only such packets)
 * under seed S takes
 *
 *     x = mix64((S ^ INSANE_EXTRA_SALT) + (k + 1) * 0x9e3779b97f4a7c15)
 *
 * with the mixing steps of "Percent decisions"; unseeded, or for a
 * transmitted multicast packet (which takes no k), x comes from this
 * CPU's sequence. The packet is duplicated iff (x >> 32) <
 * thr(DUPLICATE / INSANE_PERCENT_MAX) and corrupted iff (x & 0xffffffff) <
 * thr(CORRUPT / INSANE_PERCENT_MAX) (thr as in "Gilbert decisions"). The
 * bit flipped is b = (y * N) >> 32 with y = mix64(x ^ INSANE_CORRUPT_SALT)
 * >> 32 and N = 8 * (the bytes it may touch): from the end of the IPv4
 * header (ihl * 4) or of IPv6's fixed 40 bytes to the packet's end, or,
 * with CORRUPT_HEADER, from the network header on but for the destination
 * address (IPv4's bytes 16 to 19, IPv6's 24 to 39: on a wire the link
 * layer's header takes the packet to its next hop whatever its IP header
 * says, and a relay resolves that hop from the destination, so the flip
 * never touches it); bit b is bit (b & 7) (value 1 << (b & 7)) of byte
 * b >> 3 of that span, the destination left out of the count. A packet
 * with no byte in its span (an IPv4 or IPv6 header alone) leaves intact
 * and is not counted as corrupted. A GSO packet held whole (by a policy without
 * RATE, DUPLICATE or CORRUPT, replaced while it was held) is neither.
 *
 * Duplicate. A duplicated packet is copied as it is then (before its
 * corruption, if any); the copy is counted in DUPLICATED (RX_DUPLICATED),
 * is never duplicated or corrupted itself, takes no k, and follows the
 * original right behind: transmit, relayed right after it (the copy is not
 * charged at the rate, and the decision is behind both); receive,
 * received on the device right after it, through the device's taps and
 * the receive policy's decision, which decides the copy as any packet.
 * Each copy is then counted as relayed or under a drop cause, so the
 * packets handled plus DUPLICATED equal RELAYED plus the drop causes. A
 * copy that cannot be allocated counts in DUPLICATED and in
 * DROP_NO_MEMORY (RX_DROP_NO_MEMORY). On transmit, a copy whose original
 * met a loop while it was relayed is not sent and not counted: the loop is
 * counted once, in DROP_LOOP.
 *
 * Corrupt. Transmit: at the relay, after the route (the packet as it
 * leaves): a CHECKSUM_PARTIAL checksum is completed first, then the bit
 * is flipped, after IPv4's header checksum is written, so that a receiver
 * finds a bad transport checksum (a bad header checksum, or a wrong
 * header field, with CORRUPT_HEADER), as after a bit error on a wire; a
 * relay across namespaces writes IPv4's header checksum again after the
 * flip. Receive: before the packet is received on the device, so that its
 * taps see the corrupted packet; its checksum state is reset
 * (CHECKSUM_NONE) so that the stack verifies it. Counted in CORRUPTED
 * (RX_CORRUPTED); a packet that cannot be made writable is dropped and
 * counted in DROP_NO_MEMORY (RX_DROP_NO_MEMORY).
 *
 * Percent decisions. Without a seed each packet draws from its CPU's own
 * pseudo-random sequence, x = mix(state += 0x9e3779b97f4a7c15) with the
 * mixing steps below (SplitMix64), each CPU's state started at a random
 * value when the module loads: uniform and cheap, not cryptographic, and
 * not reproducible. With a seed S, the decision for the k-th packet
 * handled since the policy was set (k = 0, 1, 2, ...) is a pure function
 * of S and k, whichever CPU sends it (a receive policy has its own k,
 * counting the packets it decided, and its own time epoch, from when it
 * was set):
 *
 *     x = S + (k + 1) * 0x9e3779b97f4a7c15          (mod 2^64)
 *     x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
 *     x = (x ^ (x >> 27)) * 0x94d049bb133111eb
 *     x = x ^ (x >> 31)
 *     relay iff (x >> 32) * INSANE_PERCENT_MAX < PERCENT << 32
 *
 * Without a seed, the same comparison is made with a random 32-bit value in
 * place of (x >> 32). Setting the same seed again replays the same sequence.
 *
 * What counts toward k: a packet is handled when it reaches the policy
 * (it passed the checks before POLICY above; packets dropped before it
 * take no k) and its destination is not multicast (IPv4 224.0.0.0/4, IPv6
 * ff00::/8). Multicast is what the kernel sends through the device on its
 * own, unasked and at times of its timers' choosing: IGMP and MLD reports,
 * IPv6 router solicitations (the device is NOARP: no neighbour discovery,
 * no DAD); and multicast is never relayed (NO_ROUTE), whoever sent it. A
 * seeded policy decides a multicast packet like an unseeded one, by a draw
 * of this CPU's sequence, in the step in force and (burst, gilbert) the
 * chain state the next handled packet would start from, and leaves k and
 * that state as they were. The receive direction takes only unicast
 * packets, so every packet a receive policy decides is handled. Every
 * other packet counts, whoever sent it: a kernel's unicast replies (TCP
 * acknowledgements, ICMP errors and echo replies) routed through the
 * device are part of the traffic. To replay a sequence from its start, set
 * the policy again (the same attributes will do): every set starts k at 0
 * and the chain in the good state, and the first handled packet after the
 * reply takes k = 0.
 *
 * Gilbert decisions (burst and gilbert modes, alone or as steps). For a
 * probability num / den, thr(num / den) = ceil(num * 2^32 / den), computed
 * exactly; "u < thr(q)" happens with probability q for a uniform 32-bit u.
 * So PERCENT relays iff (x >> 32) < thr(PERCENT / INSANE_PERCENT_MAX), the
 * comparison above. The chain has a state s, good or bad, good when the
 * policy is set. A packet it decides takes a 64-bit value x, with u = x >> 32
 * and w = x & 0xffffffff, and:
 *
 *     if s is good: s becomes bad  iff u < thr(p)
 *     if s is bad:  s becomes good iff u < thr(r)
 *     the packet is dropped iff w < thr(s is bad ? LOSS_BAD : LOSS_GOOD)
 *
 * (the state is moved first, and the packet is decided in the new state:
 * the packet that starts a burst of burst mode is its first loss). With a
 * seed S, x is the x above for the packet's k, and k and s advance together
 * in one atomic step, so the drop set is a pure function of S and k, as for
 * percent, whichever CPU sends. In a schedule, k counts the packets decided
 * by its steps that draw (percent, burst, gilbert), and one chain state
 * carries over between its burst and gilbert steps (each with its own p, r
 * and losses); pass and drop steps touch neither. Without a seed, each CPU
 * draws x from its own SplitMix64 sequence (the unseeded percent draw, all
 * 64 bits) and keeps its own chain state for each policy, so that bursts
 * follow each CPU's packets, and no state is shared between CPUs.
 *
 * Edges
 * -----
 * The edges of a time or schedule policy are the instants where a step
 * begins, other than the first: in time mode, each ON window's end (the
 * state goes DOWN) and each OFF window's end (UP); in a schedule, every
 * step boundary, repeating, or, with INSANE_POLICY_A_ONCE, only up to the
 * start of the last step (nsteps - 1 edges, then none). Edge n (n = 1, 2,
 * ...) is the n-th since the policy was set. An edge's nominal time is the
 * policy's epoch (when it was set) plus the durations before it: the
 * datapath decides by the new step from exactly that CLOCK_MONOTONIC
 * instant. A step is DOWN (enum insane_edge_state) when its mode is drop
 * (time mode's OFF window), UP otherwise.
 *
 * While a device has a policy with INSANE_POLICY_A_CARRIER or
 * INSANE_POLICY_A_EVENTS and is up, a timer runs for that policy: an
 * hrtimer on CLOCK_MONOTONIC, absolute, expiring in softirq context
 * (HRTIMER_MODE_ABS_SOFT). An hrtimer because its deadline is the edge's
 * own nanosecond on the epoch's clock (a delayed work item would round
 * every edge up to a jiffy, 4 ms at HZ=250, and then wait for a worker);
 * softirq expiry because the callback allocates the event (GFP_ATOMIC) and
 * changes the carrier, which is allowed there and not in hard interrupt
 * context. The timer is started when the policy is set on a device that is
 * up, or when the device is brought up; it is stopped, and waited for,
 * when the policy is replaced or turned off, when the device goes down or
 * is deleted (also by its network namespace's deletion or the module's
 * unload). A device that is down has no timer: no edge events, no carrier
 * changes; when it comes up, its carrier takes the step then in force at
 * once (not an edge: no event), and the timer is armed for the next edge.
 * The epoch does not move. A timer that runs late past more than one edge
 * (a stalled machine) acts once, for the latest edge, whose number says how
 * many were skipped.
 *
 * INSANE_CMD_EVENT with INSANE_EVENT_EDGE, sent at each edge of a policy
 * with INSANE_POLICY_A_EVENTS to INSANE_GENL_MCGRP_EVENTS in the device's
 * network namespace, carries only:
 *
 *     INSANE_DEVICE_A_EVENT: NLA_U32, INSANE_EVENT_EDGE
 *     INSANE_DEVICE_A_IFINDEX: NLA_U32
 *     INSANE_DEVICE_A_IFNAME: NLA_NUL_STRING
 *     INSANE_DEVICE_A_EDGE: NLA_NESTED
 *         INSANE_EDGE_A_DIRECTION: NLA_U32, enum insane_direction: the
 *             transmit policy's edge or the receive policy's
 *         INSANE_EDGE_A_SEQ: NLA_U64, the edge's number n
 *         INSANE_EDGE_A_STEP_INDEX: NLA_U32, the step that begins (time
 *             mode: 0 the ON window, 1 the OFF window)
 *         INSANE_EDGE_A_MODE: NLA_U32, that step's mode
 *         INSANE_EDGE_A_STATE: NLA_U32, enum insane_edge_state
 *         INSANE_EDGE_A_TIME_NS: NLA_U64, the nominal time, CLOCK_MONOTONIC
 *         INSANE_EDGE_A_REALTIME_NS: NLA_U64, the same instant on
 *             CLOCK_REALTIME (converted with the kernel's offset between
 *             the two clocks when the event is made)
 *         INSANE_EDGE_A_FIRED_NS: NLA_U64, CLOCK_MONOTONIC when the timer
 *             ran: FIRED_NS - TIME_NS is the kernel's own lateness
 *         INSANE_EDGE_A_CARRIER: NLA_U8, only when the transmit policy has
 *             INSANE_POLICY_A_CARRIER: 1 if the device has carrier after
 *             the edge (the lower's state included), else 0
 *
 * The events are sent with GFP_ATOMIC: a listener that falls behind, or a
 * failed allocation, loses events, and the listener's socket reports
 * ENOBUFS as for any multicast group.
 *
 * Carrier flaps
 * -------------
 * With INSANE_POLICY_A_CARRIER, the device's carrier is off during every
 * DOWN step and on during every UP step, as a cable pulled and plugged
 * back: the kernel's link watch then sets the operational state
 * (LOWERLAYERDOWN while attached, the kernel's state for any stacked
 * device without carrier, whatever the lower's; DOWN while detached),
 * sends RTM_NEWLINK (ip monitor link shows NO-CARRIER), counts the change
 * (IFLA_CARRIER_UP_COUNT and IFLA_CARRIER_DOWN_COUNT: ip -s -d link), and
 * marks the routes through the device linkdown. The lower's state wins:
 * while the lower has no carrier, neither has the device, whatever the
 * step; a detached device's carrier follows the steps alone (and it stays
 * dormant). When the policy is replaced by one without the flag, the
 * carrier follows the lower again at once.
 *
 * The link watch runs an attached device's changes at once, as for any
 * stacked device (a work item, normally well within a millisecond of the
 * edge). A detached device is not stacked in the kernel's eyes, and its
 * carrier losses wait for the link watch's rate limit (one run a second
 * for all such changes): its RTM_NEWLINK and operational state can lag an
 * edge by up to a second and cover several edges at once. IFF_LOWER_UP and
 * IFLA_CARRIER (RTM_GETLINK), the carrier counts and the edge events
 * follow every edge at once.
 *
 * What is dropped while the carrier is off: from when the link watch has
 * run until the carrier is back, the kernel gives the device its noop
 * queue, which frees every packet routed to the device before the driver
 * sees it and counts it nowhere (not in the device's TX dropped, not in any
 * qdisc's statistics); the sender is not told (NET_XMIT_CN). insane cannot
 * count those packets. It counts what it sees: packets that reach it in a
 * DOWN step, before the link watch has run, are dropped by that step and
 * counted in INSANE_STATS_A_DROP_POLICY. The receive direction is not cut
 * by the carrier: give the receive policy the same windows to cut both.
 */

#ifndef _UAPI_LINUX_INSANE_H
#define _UAPI_LINUX_INSANE_H

#define INSANE_GENL_NAME		"insane"
#define INSANE_GENL_VERSION		1
#define INSANE_GENL_MCGRP_EVENTS	"events"

/* rtnetlink link kind */
#define INSANE_LINK_KIND		"insane"

/* INSANE_POLICY_A_PERCENT is in millionths of a percent. */
#define INSANE_PERCENT_SCALE		1000000U
#define INSANE_PERCENT_MAX		(100U * INSANE_PERCENT_SCALE)

/* INSANE_POLICY_A_BURST is in thousandths of a packet. */
#define INSANE_BURST_SCALE		1000U

/* The most steps a schedule holds. */
#define INSANE_SCHEDULE_STEPS_MAX	64

/* The shortest window allowed with INSANE_POLICY_A_CARRIER or _EVENTS. */
#define INSANE_EDGE_MIN_NS		10000000ULL

/* The delay stage (see "Delay"). */
#define INSANE_DELAY_MAX_NS		60000000000ULL
/* 2^17: a second at 100,000 packets/s, with 31 % to spare. */
#define INSANE_DELAY_LIMIT_DEFAULT	131072U
#define INSANE_DELAY_LIMIT_MAX		10000000U
#define INSANE_DELAY_FLOWS		1024U
#define INSANE_DELAY_SALT		0x51b54a32d192ed03ULL

/* Rate, duplication and corruption (see "Rate, duplication and corruption"). */
#define INSANE_RATE_MIN			8ULL
#define INSANE_RATE_MAX			1000000000000ULL
#define INSANE_RATE_OVERHEAD_MAX	4096U
#define INSANE_EXTRA_SALT		0x2545f4914f6cdd1dULL
#define INSANE_CORRUPT_SALT		0x9fb21c651e98df25ULL

enum insane_cmd {
	INSANE_CMD_UNSPEC,
	INSANE_CMD_GET_DEVICE,
	INSANE_CMD_SET_DEVICE,
	INSANE_CMD_EVENT,
	__INSANE_CMD_MAX
};

#define INSANE_CMD_MAX (__INSANE_CMD_MAX - 1)

enum insane_device_flag {
	INSANE_DEVICE_F_DETACH = 1U << 0,
	INSANE_DEVICE_F_RESET_STATS = 1U << 1,
	/* turn the receive policy off */
	INSANE_DEVICE_F_RX_OFF = 1U << 2,
	__INSANE_DEVICE_F_ALL = INSANE_DEVICE_F_DETACH |
				INSANE_DEVICE_F_RESET_STATS |
				INSANE_DEVICE_F_RX_OFF
};

enum insane_device_attr {
	INSANE_DEVICE_A_UNSPEC,
	INSANE_DEVICE_A_IFINDEX,
	INSANE_DEVICE_A_IFNAME,
	INSANE_DEVICE_A_LOWER_IFINDEX,
	INSANE_DEVICE_A_LOWER_IFNAME,
	INSANE_DEVICE_A_FLAGS,
	INSANE_DEVICE_A_POLICY,
	INSANE_DEVICE_A_STATS,
	INSANE_DEVICE_A_EVENT,
	INSANE_DEVICE_A_RX_POLICY,
	/* in INSANE_EVENT_EDGE events only: enum insane_edge_attr */
	INSANE_DEVICE_A_EDGE,
	__INSANE_DEVICE_A_MAX
};

#define INSANE_DEVICE_A_MAX (__INSANE_DEVICE_A_MAX - 1)

/* INSANE_POLICY_A_DISTRIBUTION: the shape of the jitter (see "Delay"). */
enum insane_distribution {
	INSANE_DISTRIBUTION_UNIFORM,
	INSANE_DISTRIBUTION_NORMAL,
	INSANE_DISTRIBUTION_PARETO,
	INSANE_DISTRIBUTION_PARETONORMAL,
	__INSANE_DISTRIBUTION_MAX
};

#define INSANE_DISTRIBUTION_MAX (__INSANE_DISTRIBUTION_MAX - 1)

enum insane_mode {
	INSANE_MODE_PASS,
	INSANE_MODE_PERCENT,
	INSANE_MODE_TIME,
	INSANE_MODE_DROP,
	INSANE_MODE_BURST,
	INSANE_MODE_GILBERT,
	INSANE_MODE_SCHEDULE,
	__INSANE_MODE_MAX
};

#define INSANE_MODE_MAX (__INSANE_MODE_MAX - 1)

enum insane_policy_attr {
	INSANE_POLICY_A_UNSPEC,
	INSANE_POLICY_A_PAD,
	INSANE_POLICY_A_MODE,
	INSANE_POLICY_A_PERCENT,
	INSANE_POLICY_A_SEED,
	INSANE_POLICY_A_ON_NS,
	INSANE_POLICY_A_OFF_NS,
	/* IFLA_INFO_DATA only: the receive policy, nested */
	INSANE_POLICY_A_RX,
	/* IFLA_INFO_DATA only: NLA_FLAG, turn the receive policy off */
	INSANE_POLICY_A_RX_OFF,
	INSANE_POLICY_A_BURST,
	INSANE_POLICY_A_GE_P,
	INSANE_POLICY_A_GE_R,
	INSANE_POLICY_A_GE_LOSS_BAD,
	INSANE_POLICY_A_GE_LOSS_GOOD,
	INSANE_POLICY_A_STEPS,
	/* in a step of INSANE_POLICY_A_STEPS only */
	INSANE_POLICY_A_DURATION_NS,
	INSANE_POLICY_A_ONCE,
	/* replies only */
	INSANE_POLICY_A_STEP_INDEX,
	INSANE_POLICY_A_STEP_LEFT_NS,
	/* NLA_FLAG: time and schedule, transmit policy only */
	INSANE_POLICY_A_CARRIER,
	/* NLA_FLAG: time and schedule */
	INSANE_POLICY_A_EVENTS,
	/* replies only: NLA_U32, the steps left out (see "Long policies") */
	INSANE_POLICY_A_STEPS_OMITTED,
	/* NLA_U64: the delay stage (see "Delay"), in a policy or a step */
	INSANE_POLICY_A_DELAY_NS,
	/* NLA_U64, beside DELAY_NS */
	INSANE_POLICY_A_JITTER_NS,
	/* NLA_U32, in millionths of a percent, beside JITTER_NS */
	INSANE_POLICY_A_CORRELATION,
	/* NLA_U32, enum insane_distribution, beside JITTER_NS */
	INSANE_POLICY_A_DISTRIBUTION,
	/* NLA_FLAG, beside DELAY_NS */
	INSANE_POLICY_A_REORDER,
	/* NLA_U32: packets held per CPU (see "Delay"); not in a step */
	INSANE_POLICY_A_LIMIT,
	/* NLA_U64, bits per second (see "Rate, duplication and corruption") */
	INSANE_POLICY_A_RATE,
	/* NLA_U32, bytes per wire packet, beside RATE */
	INSANE_POLICY_A_OVERHEAD,
	/* NLA_U64, beside RATE */
	INSANE_POLICY_A_BUFFER_NS,
	/* NLA_U32, in millionths of a percent */
	INSANE_POLICY_A_DUPLICATE,
	/* NLA_U32, in millionths of a percent */
	INSANE_POLICY_A_CORRUPT,
	/* NLA_FLAG, beside CORRUPT */
	INSANE_POLICY_A_CORRUPT_HEADER,
	__INSANE_POLICY_A_MAX
};

#define INSANE_POLICY_A_MAX (__INSANE_POLICY_A_MAX - 1)

/* The attributes nested in INSANE_POLICY_A_STEPS. */
enum insane_steps_attr {
	INSANE_STEPS_A_UNSPEC,
	/* NLA_NESTED: one step, a policy of enum insane_policy_attr */
	INSANE_STEPS_A_STEP,
	__INSANE_STEPS_A_MAX
};

#define INSANE_STEPS_A_MAX (__INSANE_STEPS_A_MAX - 1)

/*
 * Counters. Every packet that reaches the device is counted exactly once:
 * as relayed, or under the one drop cause that stopped it; so is every
 * copy of a duplicated packet (counted in [RX_]DUPLICATED when made). The RX_* ones
 * count the packets the device took over on receive (see "Receive").
 */
enum insane_stats_attr {
	INSANE_STATS_A_UNSPEC,
	INSANE_STATS_A_PAD,
	/* handed to the lower device's stack, which took it */
	INSANE_STATS_A_RELAYED_PACKETS,
	/* the bytes of the relayed packets, from the network header on */
	INSANE_STATS_A_RELAYED_BYTES,
	/* dropped by the policy */
	INSANE_STATS_A_DROP_POLICY,
	/* dropped because the device has no lower device */
	INSANE_STATS_A_DROP_NO_LOWER,
	/* no unicast route leaves by the lower device */
	INSANE_STATS_A_DROP_NO_ROUTE,
	/* the lower device's stack refused the relayed packet */
	INSANE_STATS_A_DROP_LOWER_REFUSED,
	/* neither IPv4 nor IPv6, or IPv6 on a kernel where it is disabled */
	INSANE_STATS_A_DROP_NOT_IP,
	/* came back into an insane device it had already been relayed by */
	INSANE_STATS_A_DROP_LOOP,
	/* an IPv4 or IPv6 header that the stack would refuse on receive */
	INSANE_STATS_A_DROP_MALFORMED,
	/* received on the device and passed up the stack by the receive policy */
	INSANE_STATS_A_RX_RELAYED_PACKETS,
	/* the bytes of those packets, from the network header on */
	INSANE_STATS_A_RX_RELAYED_BYTES,
	/* received on the device and dropped by the receive policy */
	INSANE_STATS_A_RX_DROP_POLICY,
	/*
	 * a shared received packet could not be copied to be taken over, or
	 * a GSO packet taken over could not be cut for want of memory
	 */
	INSANE_STATS_A_RX_DROP_NO_MEMORY,
	/* a GSO packet taken over that could not be cut into wire packets */
	INSANE_STATS_A_RX_DROP_MALFORMED,
	/*
	 * refused by the delay stage: this CPU already held
	 * INSANE_POLICY_A_LIMIT packets of the direction (see "Delay")
	 */
	INSANE_STATS_A_DROP_QUEUE_FULL,
	/* held by the delay stage when the device went down, and freed */
	INSANE_STATS_A_DROP_FLUSHED,
	/* received, refused by the delay stage: this CPU held LIMIT packets */
	INSANE_STATS_A_RX_DROP_QUEUE_FULL,
	/* received, held by the delay stage when the device went down */
	INSANE_STATS_A_RX_DROP_FLUSHED,
	/* gauge, never reset: packets the transmit delay stage holds now */
	INSANE_STATS_A_HELD_PACKETS,
	/* gauge, never reset: their bytes, from the network header on */
	INSANE_STATS_A_HELD_BYTES,
	/* gauge, never reset: packets the receive delay stage holds now */
	INSANE_STATS_A_RX_HELD_PACKETS,
	/* gauge, never reset: their bytes, from the network header on */
	INSANE_STATS_A_RX_HELD_BYTES,
	/* a copy of a duplicated packet, or a corruption, found no memory */
	INSANE_STATS_A_DROP_NO_MEMORY,
	/* copies of duplicated packets (see "Duplicate"), not a drop */
	INSANE_STATS_A_DUPLICATED,
	/* relayed packets with one bit flipped (see "Corrupt"), not a drop */
	INSANE_STATS_A_CORRUPTED,
	/* copies of duplicated packets taken over on receive, not a drop */
	INSANE_STATS_A_RX_DUPLICATED,
	/* packets taken over on receive with one bit flipped, not a drop */
	INSANE_STATS_A_RX_CORRUPTED,
	__INSANE_STATS_A_MAX
};

#define INSANE_STATS_A_MAX (__INSANE_STATS_A_MAX - 1)

enum insane_event {
	INSANE_EVENT_UNSPEC,
	INSANE_EVENT_POLICY,
	INSANE_EVENT_ATTACH,
	INSANE_EVENT_DETACH,
	INSANE_EVENT_RESET_STATS,
	INSANE_EVENT_RX_POLICY,
	/* an edge of a policy with INSANE_POLICY_A_EVENTS (see "Edges") */
	INSANE_EVENT_EDGE,
	__INSANE_EVENT_MAX
};

#define INSANE_EVENT_MAX (__INSANE_EVENT_MAX - 1)

enum insane_direction {
	INSANE_DIRECTION_TX,
	INSANE_DIRECTION_RX,
	__INSANE_DIRECTION_MAX
};

#define INSANE_DIRECTION_MAX (__INSANE_DIRECTION_MAX - 1)

/* The state a step puts the device in: DOWN for mode drop, else UP. */
enum insane_edge_state {
	INSANE_EDGE_STATE_UP,
	INSANE_EDGE_STATE_DOWN,
	__INSANE_EDGE_STATE_MAX
};

#define INSANE_EDGE_STATE_MAX (__INSANE_EDGE_STATE_MAX - 1)

/* The attributes nested in INSANE_DEVICE_A_EDGE. */
enum insane_edge_attr {
	INSANE_EDGE_A_UNSPEC,
	INSANE_EDGE_A_PAD,
	INSANE_EDGE_A_DIRECTION,
	INSANE_EDGE_A_SEQ,
	INSANE_EDGE_A_STEP_INDEX,
	INSANE_EDGE_A_MODE,
	INSANE_EDGE_A_STATE,
	INSANE_EDGE_A_TIME_NS,
	INSANE_EDGE_A_REALTIME_NS,
	INSANE_EDGE_A_FIRED_NS,
	INSANE_EDGE_A_CARRIER,
	__INSANE_EDGE_A_MAX
};

#define INSANE_EDGE_A_MAX (__INSANE_EDGE_A_MAX - 1)

#endif /* _UAPI_LINUX_INSANE_H */
