// SPDX-License-Identifier: GPL-2.0
/*
 * link_insane.so: the "insane" link type for iproute2's ip(8).
 *
 *   ip link add link eth0 name insane0 type insane mode percent 80 seed 7
 *   ip link set insane0 type insane mode time 50 100
 *   ip link set insane0 type insane mode burst 95 5 seed 1
 *   ip link set insane0 type insane mode schedule 30s pass 5s drop
 *   ip link set insane0 type insane mode time 500ms 500ms carrier events
 *   ip link set insane0 type insane rx mode percent 90   (receive policy)
 *   ip link set insane0 type insane rx off
 *   ip link set insane0 type insane mode pass delay 50ms jitter 10ms
 *   ip link set insane0 type insane mode pass rate 10mbit overhead 38
 *   ip link set insane0 type insane mode percent 99 duplicate 1 corrupt 0.1 seed 3
 *   ip -d link show insane0            (the policy)
 *   ip -s -d link show insane0         (the policy and the per-cause counters)
 *   ip link help insane
 *
 * ip looks up an unknown kind as the symbol <kind>_link_util, first in
 * $IP_LIB_DIR/link_<kind>.so (IP_LIB_DIR defaults to /usr/lib/<multiarch>/ip),
 * and calls back into its own exported helpers. iproute2 installs no headers
 * for this interface, so the few declarations needed are written out, after
 * iproute2 6.1 (Debian 12) in ip_plugin.h, and the VM tests run this plugin
 * under that ip.
 *
 * The grammar is the insane CLI's (its cases, which both must read alike, are
 * go/genl/policytest/cases.txt; make check-cases runs them through this
 * file): a bare integer time of mode time counts 10 ms ticks, as in the
 * original driver; a time with a unit (500ms, 1.5s, 1m30s) is exact, and a
 * schedule's durations need one.
 */

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <linux/insane.h>

#include "ip_plugin.h"
#include "../kernel/counters.h"

/* The delay tables' first and last knots bound the draws (see "Delay"). */
typedef __s32 s32;
typedef __u32 u32;
#include "../kernel/dist_tables.h"

/* The request buffer of ip link add/set, as its own link types assume. */
#define REQ_MAX 1024

#define TICK_NS 10000000ULL
#define NS_MAX 0x7fffffffffffffffULL
#define BURST_MAX 0xffffffffU

static const char time_help[] =
	"use a unit (500ms, 1s, 250us) or an integer of 10 ms ticks";
static const char step_actions[] =
	"pass, drop, percent P, burst P B or gilbert P R";
static const char step_kinds[] = "pass, drop, percent, burst or gilbert";
static const char mode_usage[] =
	"pass, drop, percent P, burst P B, gilbert P R, time ON OFF or schedule STEP...";
static const char mode_kinds[] =
	"pass, drop, percent, burst, gilbert, time or schedule";
static const char seed_modes[] =
	"mode percent, burst, gilbert or schedule, or a jitter, duplicate or corrupt";
static const char *const dist_names[] = {
	[INSANE_DISTRIBUTION_UNIFORM] = "uniform",
	[INSANE_DISTRIBUTION_NORMAL] = "normal",
	[INSANE_DISTRIBUTION_PARETO] = "pareto",
	[INSANE_DISTRIBUTION_PARETONORMAL] = "paretonormal",
};

static_assert(ARRAY_SIZE(dist_names) == INSANE_DISTRIBUTION_MAX + 1,
	      "a distribution of enum insane_distribution has no name");
static_assert(INSANE_DELAY_MAX_NS == 60000000000ULL &&
	      INSANE_DELAY_LIMIT_MAX == 10000000U,
	      "the messages give the longest delay as 60s");
static const char flag_modes[] = "mode time or schedule";

static_assert(INSANE_DELAY_LIMIT_DEFAULT == 131072U,
	      "the help gives the default limit as 131072");
static_assert(INSANE_RATE_MIN == 8 && INSANE_RATE_MAX == 1000000000000ULL &&
	      INSANE_RATE_OVERHEAD_MAX == 4096,
	      "the help gives the rates as 8bit to 1tbit, overheads to 4096");

static_assert(INSANE_EDGE_MIN_NS == 10000000ULL,
	      "the help gives the shortest window with carrier or events as 10ms");

static const char usage_text[] =
	"Usage: ... insane [ [ tx ] POLICY ] [ rx { POLICY | off } ]\n"
	"\n"
	"POLICY := { mode pass | mode drop | mode percent P [ seed S ] |\n"
	"            mode burst P B [ seed S ] |\n"
	"            mode gilbert P R [ H [ K ] ] [ seed S ] |\n"
	"            mode time ON OFF [ carrier ] [ events ] |\n"
	"            mode schedule STEP... [ once ] [ seed S ] [ carrier ] [ events ] }\n"
	"          [ DELAY ] [ RATE ] [ duplicate DP ] [ corrupt CP [ header ] ]\n"
	"          [ limit N ]  (a schedule's DELAY, RATE, duplicate and corrupt\n"
	"          go in its steps)\n"
	"STEP := DURATION { pass | drop | percent P | burst P B |\n"
	"                   gilbert P R [ H [ K ] ] }\n"
	"        [ DELAY ] [ RATE ] [ duplicate DP ] [ corrupt CP [ header ] ]\n"
	"DELAY := delay D [ jitter J [ correlation C ] ]\n"
	"         [ distribution { uniform | normal | pareto | paretonormal } ]\n"
	"         [ reorder ]\n"
	"RATE := rate BITS [ overhead BYTES ] [ buffer WAIT ]\n"
	"D J := what the policy relays waits D (with a unit: 50ms, 1s, 250us;\n"
	"       at most 60s), spread by J: uniform from D - J to D + J, or\n"
	"       normal, pareto or paretonormal of mean D and deviation J; a\n"
	"       packet never leaves before an earlier one of its flow, unless\n"
	"       reorder (netem's behaviour)\n"
	"C := the correlation of each delay with the previous one, in percent\n"
	"     (below 100); the distribution's mean and spread stay as they are\n"
	"BITS := what the policy relays leaves at that rate, one packet after\n"
	"        the other (one clock per direction), before its delay D; bits\n"
	"        per second as tc writes them: bit (or a bare number), kbit,\n"
	"        mbit, gbit, tbit (x1000), kibit, mibit, gibit, tibit (x1024),\n"
	"        or bytes: bps, kbps, ..., tibps; fractions allowed (1.5mbit);\n"
	"        8bit to 1tbit (mode pass rate 10mbit; rx mode pass rate 2mbit:\n"
	"        a slow downlink)\n"
	"BYTES := added to each packet's length on the wire, 0 to 4096 (38\n"
	"         counts Ethernet's header, FCS, preamble and gap; 0, the\n"
	"         default, the IP packet alone)\n"
	"WAIT := a packet that would wait for the wire longer than WAIT (with a\n"
	"        unit: 50ms; at most 60s) is dropped and counted (queue-full)\n"
	"DP CP := the percentage of packets sent twice, the copy right behind\n"
	"         (duplicate), or with one bit flipped past the IP header,\n"
	"         which the transport checksum then finds (corrupt; with header,\n"
	"         anywhere from the IP header on); above 0 to 100, to a\n"
	"         millionth; ip -s counts them as marked, not as dropped\n"
	"N := the packets of a direction each CPU holds at most (default\n"
	"     131072); one beyond is dropped and counted (ip -s)\n"
	"tx, rx := the direction of the POLICY words that follow: what is sent\n"
	"          through the device (the default), or the replies of the hosts\n"
	"          routed through it, which the receive policy decides (rx off,\n"
	"          the default, leaves received traffic untouched)\n"
	"P := the percentage of packets relayed, 0 to 100, to a millionth (12.5)\n"
	"B := the mean length of a burst of drops, in packets, to a thousandth\n"
	"     (burst relays P percent on average and drops the rest in bursts;\n"
	"     B is at least 1 and at least (100 - P) / P)\n"
	"P R H K := gilbert's Gilbert-Elliott chain, as percentages: the chance\n"
	"           to go from the good state to the bad one (P) and back (R),\n"
	"           the loss in the bad state (H, default 100) and in the good\n"
	"           state (K, default 0); tc-netem's \"loss gemodel p r 1-h 1-k\"\n"
	"ON OFF := relay for ON, then drop for OFF, repeating; with a unit\n"
	"          (500ms, 1s, 250us, 100ns) or a bare integer of 10 ms ticks\n"
	"          (mode time 50 100 relays 500ms and drops 1s)\n"
	"DURATION := how long a step lasts, with a unit (500ms, 30s, 1m, 1.5h);\n"
	"            the steps run in turn and start over, or with once keep\n"
	"            the last step's action after it; at most 64 steps, of\n"
	"            which ip's request holds about 39 pass or drop steps, or\n"
	"            16 gilbert ones (mode schedule 30s pass 5s drop 10s percent 50)\n"
	"S := a 64-bit seed that makes the decisions, delays, duplicates and\n"
	"     corruptions that draw reproducible (mode pass delay 30ms jitter\n"
	"     20ms seed 5, mode pass duplicate 1 seed 3)\n"
	"carrier := the device's carrier is off during every drop window (time's\n"
	"           OFF, a schedule's drop steps) and on after, as a cable pulled\n"
	"           and plugged back: ip monitor link shows NO-CARRIER; tx only\n"
	"events := an edge event at every window or step boundary (insane\n"
	"          monitor prints them); with carrier or events, every window\n"
	"          (ON, OFF, each DURATION) lasts at least 10ms\n"
	"\n"
	"Without a mode a new device relays everything and an existing one keeps\n"
	"its policy; a mode replaces the whole policy of its direction. The lower device is\n"
	"\"link DEV\" of ip link add; the insane CLI attaches and detaches it.\n";

static void insane_print_help(struct link_util *lu, int argc, char **argv,
			      FILE *f)
{
	fputs(usage_text, f);
}

/* One line on stderr, as ip's own link types say it; returns -1. */
__printf(1, 2)
static int bad(const char *fmt, ...)
{
	va_list ap;

	fputs("insane: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("; try \"ip link help insane\"\n", stderr);
	return -1;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Reads a decimal number at the start of s: digits, an optional '.' and
 * more digits, at least one digit in all (12.5, .5, 7.). Its value goes to
 * *v in units of 10^-scale, rounded to the nearest on the first digit
 * dropped, and is limit + 1 for anything above limit (at most 2^32).
 * Returns the end of the number, or NULL if s does not start with one.
 */
static const char *scan_decimal(const char *s, int scale, __u64 limit,
				__u64 *v)
{
	__u64 whole = 0, frac = 0, mult = 1;
	const char *p = s;
	bool digits = false, round_up = false;
	int i;

	for (; is_digit(*p); p++, digits = true)
		if (whole <= limit)
			whole = whole * 10 + (__u64)(*p - '0');
	i = 0;
	if (*p == '.') {
		for (p++; is_digit(*p); p++, i++, digits = true) {
			if (i < scale)
				frac = frac * 10 + (__u64)(*p - '0');
			else if (i == scale)
				round_up = *p >= '5';
		}
	}
	if (!digits)
		return NULL;
	for (; i < scale; i++)
		frac *= 10;
	for (i = 0; i < scale; i++)
		mult *= 10;
	/* whole <= 10 * limit + 9, so this cannot overflow. */
	whole = whole * mult + frac + round_up;
	*v = whole > limit ? limit + 1 : whole;
	return p;
}

/* Whether s is a number and nothing else, with a '%' if percent. */
static bool is_number(const char *s, bool percent)
{
	const char *end;
	__u64 v;

	end = scan_decimal(s, 0, 0, &v);
	if (end && percent && *end == '%')
		end++;
	return end && !*end;
}

/*
 * Reads a percentage into millionths of a percent, rounding to nearest;
 * at, the prefix of the messages ("" or "step 2: ").
 */
static int parse_percent(const char *s, __u32 *units, const char *at)
{
	const char *end;
	__u64 v;

	end = scan_decimal(s, 6, INSANE_PERCENT_MAX, &v);
	if (end && *end == '%')
		end++;
	if (!end || *end)
		return bad("%s\"%s\" is not a percentage", at, s);
	if (v > INSANE_PERCENT_MAX)
		return bad("%spercentage \"%s\" is not between 0 and 100", at, s);
	*units = (__u32)v;
	return 0;
}

/* As parse_percent(), without a message: -1 if s is not 0 to 100. */
static int parse_percent_quiet(const char *s, __u32 *units)
{
	const char *end;
	__u64 v;

	end = scan_decimal(s, 6, INSANE_PERCENT_MAX, &v);
	if (end && *end == '%')
		end++;
	if (!end || *end || v > INSANE_PERCENT_MAX)
		return -1;
	*units = (__u32)v;
	return 0;
}

/* Reads a mean burst length into thousandths of a packet. */
static int parse_burst(const char *s, __u32 *units, const char *at)
{
	const char *end;
	__u64 v;

	end = scan_decimal(s, 3, BURST_MAX, &v);
	if (!end || *end)
		return bad("%s\"%s\" is not a mean burst length", at, s);
	if (v > BURST_MAX)
		return bad("%smean burst length \"%s\" is above 4294967.295",
			   at, s);
	*units = (__u32)v;
	return 0;
}

static const struct {
	const char *name;
	__u64 ns;
} time_units[] = {
	{ "ns", 1 }, { "us", 1000 }, { "\xc2\xb5s", 1000 }, { "ms", 1000000 },
	{ "s", 1000000000 }, { "m", 60000000000ULL }, { "h", 3600000000000ULL },
};

/* Adds v * mul / div to *sum, refusing a result above NS_MAX. */
static bool add_scaled(__u64 *sum, __u64 v, __u64 mul, __u64 div)
{
	unsigned __int128 t = (unsigned __int128)v * mul / div + *sum;

	if (t > NS_MAX)
		return false;
	*sum = (__u64)t;
	return true;
}

/*
 * Reads numbers with units in sequence into nanoseconds, as Go's
 * time.ParseDuration reads them ("1m30s", "1.5ms"), without a sign; digits
 * beyond a nanosecond are dropped. Returns 0, -EINVAL for anything else
 * (a bare number included) or -ERANGE above 2^63 - 1 ns.
 */
static int scan_time(const char *s, __u64 *ns)
{
	const char *p = s;
	__u64 sum = 0;

	if (!*p)
		return -EINVAL;
	while (*p) {
		__u64 whole = 0, frac = 0, fdiv = 1;
		bool digits = false;
		size_t i, len;

		for (; is_digit(*p); p++, digits = true) {
			if (whole > NS_MAX / 10)
				return -ERANGE;
			whole = whole * 10 + (__u64)(*p - '0');
		}
		if (*p == '.') {
			for (p++; is_digit(*p); p++, digits = true) {
				if (fdiv < 1000000000000000000ULL) {
					frac = frac * 10 + (__u64)(*p - '0');
					fdiv *= 10;
				}
			}
		}
		if (!digits)
			return -EINVAL;
		len = strcspn(p, "0123456789.");
		for (i = 0; i < ARRAY_SIZE(time_units); i++)
			if (strlen(time_units[i].name) == len &&
			    !strncmp(p, time_units[i].name, len))
				break;
		if (!len || i == ARRAY_SIZE(time_units))
			return -EINVAL;
		if (!add_scaled(&sum, whole, time_units[i].ns, 1) ||
		    !add_scaled(&sum, frac, time_units[i].ns, fdiv))
			return -ERANGE;
		p += len;
	}
	*ns = sum;
	return 0;
}

/* Reads a time of mode time: a bare integer of 10 ms ticks, or with units. */
static int parse_time(const char *s, __u64 *ns)
{
	__u64 ticks;

	if (is_digit(*s) && s[strspn(s, "0123456789")] == '\0') {
		errno = 0;
		ticks = strtoull(s, NULL, 10);
		if (errno || ticks > NS_MAX / TICK_NS)
			return bad("time \"%s\" is too large", s);
		*ns = ticks * TICK_NS;
		return 0;
	}
	switch (scan_time(s, ns)) {
	case 0:
		return 0;
	case -ERANGE:
		return bad("time \"%s\" is too large", s);
	default:
		return bad("\"%s\" is not a time: %s", s, time_help);
	}
}

/*
 * Reads the duration of step n of a schedule, which needs a unit. 2562047h
 * is the whole hours of the most there can be, 2^63 - 1 ns.
 */
static int parse_duration(const char *s, __u64 *ns, int n)
{
	if (is_number(s, false))
		return bad("step %d: duration \"%s\" needs a unit (500ms, 30s, 1m)",
			   n, s);
	switch (scan_time(s, ns)) {
	case 0:
		break;
	case -ERANGE:
		return bad("step %d: duration \"%s\" is longer than 2562047h",
			   n, s);
	default:
		return bad("step %d: \"%s\" is not a duration", n, s);
	}
	if (!*ns)
		return bad("step %d: duration %s must be above 0", n, s);
	return 0;
}

static int parse_seed(const char *s, __u64 *seed)
{
	char *end;

	if (!is_digit(*s))
		return bad("seed \"%s\" is not a 64-bit unsigned integer", s);
	errno = 0;
	*seed = strtoull(s, &end, 0);
	if (errno || *end)
		return bad("seed \"%s\" is not a 64-bit unsigned integer", s);
	return 0;
}

/* Millionths of a percent as an exact decimal: 12500000 is "12.5". */
static void format_percent(__u32 units, char *buf, size_t len)
{
	__u32 frac = units % INSANE_PERCENT_SCALE;
	int n;

	n = snprintf(buf, len, "%u", units / INSANE_PERCENT_SCALE);
	if (frac && n > 0 && (size_t)n < len) {
		snprintf(buf + n, len - (size_t)n, ".%06u", frac);
		n = (int)strlen(buf);
		while (buf[n - 1] == '0')
			buf[--n] = '\0';
	}
}

/* Nanoseconds in the largest of s, ms, us that divides them, else ns. */
static void format_time(__u64 ns, char *buf, size_t len)
{
	static const struct {
		__u64 ns;
		const char *name;
	} units[] = { { 1000000000, "s" }, { 1000000, "ms" }, { 1000, "us" } };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(units); i++) {
		if (ns % units[i].ns == 0) {
			snprintf(buf, len, "%llu%s", ns / units[i].ns,
				 units[i].name);
			return;
		}
	}
	snprintf(buf, len, "%lluns", ns);
}

/* Thousandths of a packet as an exact decimal: 2334 is "2.334". */
static void format_burst(__u64 units, char *buf, size_t len)
{
	__u64 frac = units % INSANE_BURST_SCALE;
	int n;

	n = snprintf(buf, len, "%llu", units / INSANE_BURST_SCALE);
	if (frac && n > 0 && (size_t)n < len) {
		snprintf(buf + n, len - (size_t)n, ".%03llu", frac);
		n = (int)strlen(buf);
		while (buf[n - 1] == '0')
			buf[--n] = '\0';
	}
}

/*
 * The shortest mean burst length at percent units, in thousandths: a
 * burst has a packet at least, and (100 % - P) / P packets at least, below
 * which the chance of starting a burst would exceed 1 (see the uapi).
 */
static __u64 burst_min(__u32 percent)
{
	__u64 v = (__u64)(INSANE_PERCENT_MAX - percent) * INSANE_BURST_SCALE;

	v = (v + percent - 1) / percent;
	return v < INSANE_BURST_SCALE ? INSANE_BURST_SCALE : v;
}

/* One mode's parameters: a policy's, or a step's of a schedule. */
struct action {
	__u32 mode;
	__u32 percent;		/* percent and burst */
	__u32 burst;		/* burst */
	__u32 ge_p, ge_r, ge_loss_bad, ge_loss_good;	/* gilbert */
	__u64 on, off;		/* time */
	__u64 duration;		/* a step's */
	/* The delay stage: delay 0 for none. */
	__u64 delay, jitter;
	__u32 correlation, distribution;
	bool reorder;
	/* Rate (bits/s), duplicate and corrupt: 0 for none. */
	__u64 rate, buffer;
	__u32 overhead, duplicate, corrupt;
	bool corrupt_header;
};

/*
 * Where an action's words are: the prefix of its messages (at: "" or
 * "step 2: ") and the word before the mode's name in them ("mode " for a
 * policy, "" in a step): "mode burst needs ..." or "step 2: burst needs".
 */
struct where {
	const char *at;
	const char *mode;
};

static const char dist_needs_jitter[] =
	"%sdistribution needs a jitter: delay D jitter J distribution %s";
static const char uniform_below_0[] =
	"%sjitter %s with delay %s: uniform would draw below 0 (jitter at most the delay)";
static const char pareto_below_0[] =
	"%sjitter %s with delay %s: pareto would draw below 0 (jitter at most %s)";
static const char unknown_dist[] =
	"%sunknown distribution \"%s\": want uniform, normal, pareto or paretonormal";

/* The words that follow "delay D", which mean nothing elsewhere. */
static bool is_delay_word(const char *s)
{
	return !strcmp(s, "jitter") || !strcmp(s, "correlation") ||
	       !strcmp(s, "distribution") || !strcmp(s, "reorder");
}

/* The words that follow "rate R" or "corrupt P", nothing elsewhere. */
static bool is_rate_word(const char *s)
{
	return !strcmp(s, "overhead") || !strcmp(s, "buffer");
}

/* A word that only follows another: the delay's, the rate's, "header". */
static bool is_sub_word(const char *s)
{
	return is_delay_word(s) || is_rate_word(s) || !strcmp(s, "header");
}

/* The keywords of rate, duplication and corruption, in full. */
static bool is_extra_keyword(const char *s)
{
	return !strcmp(s, "rate") || !strcmp(s, "duplicate") ||
	       !strcmp(s, "corrupt");
}

/* Refuses a word of is_sub_word() met away from its own, as the Go parser. */
static int stray_sub_word(const char *s)
{
	if (!strcmp(s, "jitter"))
		return bad("jitter goes with delay D, before seed and limit: delay D jitter J");
	if (!strcmp(s, "reorder"))
		return bad("reorder goes with delay D, before seed and limit: delay D reorder");
	if (!strcmp(s, "overhead"))
		return bad("overhead goes with rate R, before seed and limit: rate R overhead N");
	if (!strcmp(s, "buffer"))
		return bad("buffer goes with rate R, before seed and limit: rate R buffer B");
	if (!strcmp(s, "header"))
		return bad("header goes with corrupt P, before seed and limit: corrupt P header");
	return bad("%s goes with delay D jitter J, before seed and limit: delay D jitter J %s", s,
		   !strcmp(s, "correlation") ? "correlation C" :
		   "distribution normal");
}

/*
 * Reads delay D, jitter J or buffer B: a duration with a unit, at most 60s,
 * the longest of what ("delay", "buffer").
 */
static int parse_max_time(const char *word, const char *s, __u64 *ns,
			  const char *at, const char *what)
{
	if (is_number(s, false))
		return bad("%s%s \"%s\" needs a unit (50ms, 1s, 250us)",
			   at, word, s);
	switch (scan_time(s, ns)) {
	case 0:
	case -ERANGE:
		break;
	default:
		return bad("%s%s \"%s\" is not a duration", at, word, s);
	}
	if (*ns > INSANE_DELAY_MAX_NS || scan_time(s, ns) == -ERANGE)
		return bad("%s%s \"%s\" is above 60s, the longest %s",
			   at, word, s, what);
	return 0;
}

static int parse_delay_time(const char *word, const char *s, __u64 *ns,
			    const char *at)
{
	return parse_max_time(word, s, ns, at, "delay");
}

/* floor(j * z / 2^16) for a Q16 z, saturated to the s64 range. */
static __s64 mul_q16(__u64 j, __s64 z)
{
	__int128 t = (__int128)j * z;

	if (t < 0)
		t = -((-t + 0xffff) >> 16);
	else
		t >>= 16;
	if (t > INT64_MAX)
		return INT64_MAX;
	if (t < INT64_MIN)
		return INT64_MIN;
	return (__s64)t;
}

/* The largest standardized draw of a distribution, its table's last knot. */
static __s64 z_max(__u32 dist)
{
	const int last = INSANE_DIST_KNOTS - 1;

	switch (dist) {
	case INSANE_DISTRIBUTION_NORMAL:
		return insane_dist_normal[last];
	case INSANE_DISTRIBUTION_PARETO:
		return insane_dist_pareto[last];
	case INSANE_DISTRIBUTION_PARETONORMAL:
		return ((__s64)insane_dist_normal[last] * 32768 +
			(__s64)insane_dist_pareto[last] * 56756) >> 16;
	}
	return 1 << 16;
}

/*
 * Checks a delay stage's numbers as the kernel does (genl's
 * Policy.CheckDelay says the same): uniform's jitter at most the delay,
 * pareto's smallest draw not below 0, the largest draw at most 60s.
 */
static int check_delay(const struct action *a, const char *at)
{
	char d[32], j[32], m[32];
	__s64 most, lo;

	if (!a->jitter) {
		if (a->correlation)
			return bad("%scorrelation needs a jitter: delay D jitter J correlation C",
				   at);
		if (a->distribution)
			return bad(dist_needs_jitter, at,
				   dist_names[a->distribution]);
		return 0;
	}
	format_time(a->delay, d, sizeof(d));
	format_time(a->jitter, j, sizeof(j));
	if (a->distribution == INSANE_DISTRIBUTION_UNIFORM &&
	    a->jitter > a->delay)
		return bad(uniform_below_0, at, j, d);
	if (a->distribution == INSANE_DISTRIBUTION_PARETO) {
		lo = mul_q16(a->jitter, insane_dist_pareto[0]);
		if ((__s64)a->delay + lo < 0) {
			format_time((a->delay << 16) /
				    (__u64)-insane_dist_pareto[0], m,
				    sizeof(m));
			return bad(pareto_below_0, at, j, d, m);
		}
	}
	if (a->distribution == INSANE_DISTRIBUTION_UNIFORM)
		most = (__s64)(a->delay + a->jitter);
	else
		most = mul_q16(a->jitter, z_max(a->distribution));
	if (a->distribution != INSANE_DISTRIBUTION_UNIFORM)
		most = most > INT64_MAX - (__s64)a->delay ? INT64_MAX :
		       most + (__s64)a->delay;
	if ((__u64)most > INSANE_DELAY_MAX_NS) {
		format_time((__u64)most, m, sizeof(m));
		return bad("%sjitter %s with delay %s: %s would draw up to %s, above 60s",
			   at, j, d, dist_names[a->distribution], m);
	}
	return 0;
}

/*
 * Reads "delay D" and the words after it (jitter J, correlation C,
 * distribution NAME, reorder) in any order, each at most once, into a;
 * at, the prefix of the messages. Returns the words used, or -1.
 */
static int parse_delay(int argc, char **argv, struct action *a,
		       const char *at)
{
	bool seen[4] = { false };
	int i = 2, w;

	if (argc < 2)
		return bad("%sdelay needs a duration (50ms, 1s, 250us)", at);
	if (parse_delay_time("delay", argv[1], &a->delay, at))
		return -1;
	if (!a->delay)
		return bad("%sdelay %s must be above 0", at, argv[1]);
	while (i < argc && is_delay_word(argv[i])) {
		w = !strcmp(argv[i], "jitter") ? 0 :
		    !strcmp(argv[i], "correlation") ? 1 :
		    !strcmp(argv[i], "distribution") ? 2 : 3;
		if (seen[w])
			return bad("%s%s given twice", at, argv[i]);
		seen[w] = true;
		if (w == 3) {
			a->reorder = true;
			i++;
			continue;
		}
		if (i + 1 >= argc)
			return bad("%s%s needs a value", at, argv[i]);
		if (w == 0 && parse_delay_time("jitter", argv[i + 1],
					       &a->jitter, at))
			return -1;
		if (w == 1) {
			if (parse_percent(argv[i + 1], &a->correlation, at))
				return -1;
			if (a->correlation >= INSANE_PERCENT_MAX)
				return bad("%scorrelation \"%s\" is not below 100",
					   at, argv[i + 1]);
		}
		if (w == 2) {
			for (a->distribution = 0;
			     a->distribution < ARRAY_SIZE(dist_names);
			     a->distribution++)
				if (!strcmp(argv[i + 1],
					    dist_names[a->distribution]))
					break;
			if (a->distribution == ARRAY_SIZE(dist_names))
				return bad(unknown_dist, at, argv[i + 1]);
		}
		i += 2;
	}
	if (check_delay(a, at))
		return -1;
	return i;
}

/* A rate's units as tc writes them, in bits per second, any case. */
static const struct {
	const char *name;
	__u64 bps;
} rate_units[] = {
	{ "bit", 1 }, { "kbit", 1000 }, { "mbit", 1000000 },
	{ "gbit", 1000000000 }, { "tbit", 1000000000000ULL },
	{ "kibit", 1ULL << 10 }, { "mibit", 1ULL << 20 },
	{ "gibit", 1ULL << 30 }, { "tibit", 1ULL << 40 },
	{ "bps", 8 }, { "kbps", 8000 }, { "mbps", 8000000 },
	{ "gbps", 8000000000ULL }, { "tbps", 8000000000000ULL },
	{ "kibps", 8ULL << 10 }, { "mibps", 8ULL << 20 },
	{ "gibps", 8ULL << 30 }, { "tibps", 8ULL << 40 },
};

static const char rate_units_help[] =
	"want bit, kbit, mbit, gbit, tbit, kibit, ..., tibit, or bps, kbps, ..., tibps (bytes)";

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/*
 * Reads a rate into bits per second, exactly as genl.ParseRate: a decimal
 * number (digits, an optional '.', digits) and a unit of rate_units, or
 * none for bits; refused unless a whole number of bits per second from
 * INSANE_RATE_MIN to INSANE_RATE_MAX. The number's digits are multiplied
 * by the unit in decimal, so that any length is exact.
 */
static int parse_rate(const char *s, __u64 *bps, const char *at)
{
	const char *p = s, *unit, *dot = NULL;
	unsigned char *d;
	size_t frac = 0, len, i, u;
	__u64 mult = 1, carry, v;
	bool digits = false;

	for (; is_digit(*p) || (*p == '.' && !dot); p++) {
		if (*p == '.')
			dot = p;
		else
			digits = true;
	}
	unit = p;
	while (is_alpha(*p))
		p++;
	if (!digits || *p)
		return bad("%srate \"%s\" is not a rate (10mbit, 1.5gbit, 100kbps)",
			   at, s);
	if (*unit) {
		for (u = 0; u < ARRAY_SIZE(rate_units); u++)
			if (!strcasecmp(unit, rate_units[u].name))
				break;
		if (u == ARRAY_SIZE(rate_units))
			return bad("%srate \"%s\": unknown unit \"%s\": %s",
				   at, s, unit, rate_units_help);
		mult = rate_units[u].bps;
	}
	if (dot)
		frac = (size_t)(unit - dot) - 1;
	/* The digits right-aligned, with room on the left for the unit's. */
	len = (size_t)(unit - s) + 20;
	d = calloc(len, 1);
	if (!d)
		return bad("%srate \"%s\": out of memory", at, s);
	i = len;
	for (p = unit; p-- > s;)
		if (*p != '.')
			d[--i] = (unsigned char)(*p - '0');
	/* times the unit, from the least significant digit */
	carry = 0;
	for (i = len; i-- > 0;) {
		v = d[i] * mult + carry;
		d[i] = (unsigned char)(v % 10);
		carry = v / 10;
	}
	/* The fraction's digits must be 0; the rest is the rate. */
	for (i = len - frac; i < len; i++) {
		if (d[i]) {
			free(d);
			return bad("%srate \"%s\" is not a whole number of bits per second",
				   at, s);
		}
	}
	v = 0;
	for (i = 0; i < len - frac && v <= INSANE_RATE_MAX; i++)
		v = v * 10 + d[i];
	free(d);
	if (v < INSANE_RATE_MIN || v > INSANE_RATE_MAX)
		return bad("%srate \"%s\" is not between 8bit and 1tbit", at, s);
	*bps = v;
	return 0;
}

/*
 * Reads "rate R" and the words after it (overhead N, buffer B) in any
 * order, each at most once, into a; at, the prefix of the messages.
 * Returns the words used, or -1.
 */
static int parse_rate_words(int argc, char **argv, struct action *a,
			    const char *at)
{
	bool seen_overhead = false, seen_buffer = false;
	unsigned long long v;
	char *end;
	int i = 2;

	if (argc < 2)
		return bad("%srate needs a rate (10mbit, 1.5gbit, 100kbps)", at);
	if (parse_rate(argv[1], &a->rate, at))
		return -1;
	while (i < argc && is_rate_word(argv[i])) {
		bool *seen = !strcmp(argv[i], "overhead") ? &seen_overhead :
			     &seen_buffer;

		if (*seen)
			return bad("%s%s given twice", at, argv[i]);
		*seen = true;
		if (i + 1 >= argc)
			return bad("%s%s needs a value", at, argv[i]);
		if (seen == &seen_overhead) {
			errno = 0;
			v = is_digit(argv[i + 1][0]) ?
			    strtoull(argv[i + 1], &end, 10) : 0;
			if (!is_digit(argv[i + 1][0]) || errno || *end ||
			    v > INSANE_RATE_OVERHEAD_MAX)
				return bad("%soverhead \"%s\" is not between 0 and %u bytes",
					   at, argv[i + 1],
					   INSANE_RATE_OVERHEAD_MAX);
			a->overhead = (__u32)v;
		} else {
			if (parse_max_time("buffer", argv[i + 1], &a->buffer,
					   at, "buffer"))
				return -1;
			if (!a->buffer)
				return bad("%sbuffer %s must be above 0", at,
					   argv[i + 1]);
		}
		i += 2;
	}
	return i;
}

/*
 * Reads "duplicate P" or "corrupt P [header]" into a. Returns the words
 * used, or -1.
 */
static int parse_share(int argc, char **argv, struct action *a,
		       const char *at)
{
	bool dup = !strcmp(argv[0], "duplicate");
	__u32 units;

	if (argc < 2)
		return bad("%s%s needs a percentage", at, argv[0]);
	if (parse_percent_quiet(argv[1], &units))
		return bad("%s%s \"%s\" is not a percentage from 0.000001 to 100",
			   at, argv[0], argv[1]);
	if (!units && !strpbrk(argv[1], "123456789"))
		return bad("%s%s %s must be above 0", at, argv[0], argv[1]);
	if (!units)
		return bad("%s%s %s is below 0.000001, the least", at, argv[0],
			   argv[1]);
	if (dup) {
		a->duplicate = units;
		return 2;
	}
	a->corrupt = units;
	if (argc > 2 && !strcmp(argv[2], "header")) {
		a->corrupt_header = true;
		return 3;
	}
	return 2;
}

/* Reads a keyword of is_extra_keyword() and its words into a. */
static int parse_extra(int argc, char **argv, struct action *a,
		       const char *at)
{
	if (!strcmp(argv[0], "rate"))
		return parse_rate_words(argc, argv, a, at);
	return parse_share(argc, argv, a, at);
}

/* Reads the word after "limit": packets, 1 to INSANE_DELAY_LIMIT_MAX. */
static int parse_limit(const char *s, __u32 *limit)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = is_digit(*s) ? strtoull(s, &end, 10) : 0;
	if (!is_digit(*s) || errno || *end || v < 1 ||
	    v > INSANE_DELAY_LIMIT_MAX)
		return bad("limit \"%s\" is not between 1 and %u", s,
			   INSANE_DELAY_LIMIT_MAX);
	*limit = (__u32)v;
	return 0;
}

/* Reads "burst P B". */
static int parse_burst_mode(int argc, char **argv, struct action *a,
			    const struct where *w)
{
	char min[32], pct[16], what[80];
	__u64 m;

	if (argc < 3)
		return bad("%s%sburst needs a percentage and a mean burst length",
			   w->at, w->mode);
	if (parse_percent(argv[1], &a->percent, w->at) ||
	    parse_burst(argv[2], &a->burst, w->at))
		return -1;
	snprintf(what, sizeof(what), "%s%sburst %s %s", w->at, w->mode,
		 argv[1], argv[2]);
	if (!a->percent)
		return bad("%s: the percentage must be above 0", what);
	m = burst_min(a->percent);
	if (a->burst < m) {
		format_burst(m, min, sizeof(min));
		format_percent(a->percent, pct, sizeof(pct));
		return bad("%s: the mean burst length must be at least %s at %s percent",
			   what, min, pct);
	}
	a->mode = INSANE_MODE_BURST;
	return 3;
}

/*
 * Reads "gilbert P R [H [K]]": H and K are taken while the next word is a
 * percentage, so that a seed or the next step of a schedule follows.
 */
static int parse_gilbert(int argc, char **argv, struct action *a,
			 const struct where *w)
{
	int used = 3;

	if (argc < 3)
		return bad("%s%sgilbert needs P and R percentages",
			   w->at, w->mode);
	if (parse_percent(argv[1], &a->ge_p, w->at) ||
	    parse_percent(argv[2], &a->ge_r, w->at))
		return -1;
	a->ge_loss_bad = INSANE_PERCENT_MAX;
	a->ge_loss_good = 0;
	if (argc > used && is_number(argv[used], true)) {
		if (parse_percent(argv[used], &a->ge_loss_bad, w->at))
			return -1;
		used++;
		if (argc > used && is_number(argv[used], true)) {
			if (parse_percent(argv[used], &a->ge_loss_good, w->at))
				return -1;
			used++;
		}
	}
	if (!a->ge_r)
		return bad("%s%sgilbert %s %s: R must be above 0, or a burst would never end",
			   w->at, w->mode, argv[1], argv[2]);
	a->mode = INSANE_MODE_GILBERT;
	return used;
}

/*
 * Reads an action that a policy and a schedule's step share: pass, drop,
 * percent P, burst P B or gilbert P R [H [K]]. Returns the words used, 0
 * for a word that is none of those (for the caller to refuse), or -1.
 */
static int parse_action(int argc, char **argv, struct action *a,
			const struct where *w)
{
	if (!strcmp(argv[0], "pass")) {
		a->mode = INSANE_MODE_PASS;
		return 1;
	}
	if (!strcmp(argv[0], "drop")) {
		a->mode = INSANE_MODE_DROP;
		return 1;
	}
	if (!strcmp(argv[0], "percent")) {
		if (argc < 2)
			return bad("%s%spercent needs a percentage",
				   w->at, w->mode);
		if (parse_percent(argv[1], &a->percent, w->at))
			return -1;
		a->mode = INSANE_MODE_PERCENT;
		return 2;
	}
	if (!strcmp(argv[0], "burst"))
		return parse_burst_mode(argc, argv, a, w);
	if (!strcmp(argv[0], "gilbert"))
		return parse_gilbert(argc, argv, a, w);
	return 0;
}

struct policy {
	int mode;		/* -1: none given */
	struct action a;	/* every mode's but schedule's */
	struct action steps[INSANE_SCHEDULE_STEPS_MAX];
	int nsteps;
	bool once;
};

/* A step begins with its duration, which begins with a digit or '.'. */
static bool is_step(const char *s)
{
	return is_digit(*s) || *s == '.';
}

static bool is_flag(const char *s)
{
	return !strcmp(s, "carrier") || !strcmp(s, "events");
}

/* The words that end a schedule's steps besides a next option of ip's. */
static bool ends_steps(const char *s)
{
	return !strcmp(s, "once") || !strcmp(s, "seed") || !strcmp(s, "rx") ||
	       !strcmp(s, "tx") || is_flag(s) || !strcmp(s, "delay") ||
	       !strcmp(s, "limit") || is_sub_word(s) || is_extra_keyword(s);
}

/*
 * Reads a step's words after its action from argv[*i]: delay, rate,
 * duplicate and corrupt with theirs, in any order, each at most once.
 */
static int parse_step_words(int argc, char **argv, int *i, struct action *s,
			    const char *at)
{
	static const char *const kws[] = { "delay", "rate", "duplicate",
					   "corrupt" };
	bool seen[ARRAY_SIZE(kws)] = { false };
	size_t k;
	int used;

	while (*i < argc) {
		for (k = 0; k < ARRAY_SIZE(kws); k++)
			if (!strcmp(argv[*i], kws[k]))
				break;
		if (k == ARRAY_SIZE(kws))
			return 0;
		if (seen[k])
			return bad("%s%s given twice", at, kws[k]);
		seen[k] = true;
		if (k == 0)
			used = parse_delay(argc - *i, argv + *i, s, at);
		else
			used = parse_extra(argc - *i, argv + *i, s, at);
		if (used < 0)
			return -1;
		*i += used;
	}
	return 0;
}

/*
 * Reads "schedule STEP... [once]"; the steps end at the first word that
 * does not begin like a duration.
 */
static int parse_schedule(int argc, char **argv, struct policy *p)
{
	__u64 sum = 0;
	int i = 1, n, used;

	while (i < argc && is_step(argv[i])) {
		struct action *s = &p->steps[p->nsteps];
		char at[24];
		struct where w = { at, "" };

		if (p->nsteps == INSANE_SCHEDULE_STEPS_MAX)
			return bad("a schedule has at most %d steps",
				   INSANE_SCHEDULE_STEPS_MAX);
		n = p->nsteps + 1;
		if (parse_duration(argv[i], &s->duration, n))
			return -1;
		if (i + 1 >= argc)
			return bad("step %d (%s) needs an action: %s",
				   n, argv[i], step_actions);
		snprintf(at, sizeof(at), "step %d: ", n);
		used = parse_action(argc - i - 1, argv + i + 1, s, &w);
		if (used < 0)
			return -1;
		/*
		 * Another step, or a word that ends the steps, means the
		 * action is missing rather than unknown (as the Go parser).
		 */
		if (!used && (is_step(argv[i + 1]) || ends_steps(argv[i + 1])))
			return bad("step %d (%s) needs an action: %s",
				   n, argv[i], step_actions);
		if (!used)
			return bad("step %d: unknown action \"%s\": want %s",
				   n, argv[i + 1], step_kinds);
		i += 1 + used;
		/* Its delay, rate, duplicate and corrupt, in any order. */
		if (parse_step_words(argc, argv, &i, s, at))
			return -1;
		p->nsteps++;
	}
	if (!p->nsteps)
		return bad("mode schedule needs steps: DURATION ACTION, such as 30s pass 5s drop");
	/*
	 * carrier and events end the steps; another step after them would
	 * take them, which a step cannot.
	 */
	for (n = i; n < argc && is_flag(argv[n]); n++)
		;
	if (n > i && n < argc && is_step(argv[n]))
		return bad("a step takes no carrier or events: they follow the last step");
	if (i + 2 < argc && !strcmp(argv[i], "limit") && is_step(argv[i + 2]))
		return bad("a step takes no limit: it follows the last step");
	for (n = 0; n < p->nsteps; n++) {
		/* Each duration is at most NS_MAX: no overflow. */
		sum += p->steps[n].duration;
		if (sum > NS_MAX)
			return bad("the steps of the schedule last more than 2^63 - 1 ns");
	}
	if (i < argc && !strcmp(argv[i], "once")) {
		p->once = true;
		i++;
	}
	p->mode = INSANE_MODE_SCHEDULE;
	return i;
}

/* Reads the words after "mode"; returns the words used. */
static int parse_mode(int argc, char **argv, struct policy *p)
{
	static const struct where top = { "", "mode " };
	struct action *a = &p->a;
	int used;

	if (argc < 1)
		return bad("mode needs %s", mode_usage);
	used = parse_action(argc, argv, a, &top);
	if (used) {
		if (used > 0)
			p->mode = (int)a->mode;
		return used;
	}
	if (!strcmp(argv[0], "time")) {
		if (argc < 3)
			return bad("mode time needs ON and OFF times");
		if (parse_time(argv[1], &a->on) || parse_time(argv[2], &a->off))
			return -1;
		if (a->on + a->off == 0 || a->on + a->off > NS_MAX)
			return bad("mode time %s %s: ON + OFF must be 1 ns to 2^63 - 1 ns",
				   argv[1], argv[2]);
		a->mode = INSANE_MODE_TIME;
		p->mode = INSANE_MODE_TIME;
		return 3;
	}
	if (!strcmp(argv[0], "schedule"))
		return parse_schedule(argc, argv, p);
	return bad("unknown mode \"%s\": want %s", argv[0], mode_kinds);
}

static const char *const mode_names[] = {
	[INSANE_MODE_PASS] = "pass",
	[INSANE_MODE_PERCENT] = "percent",
	[INSANE_MODE_TIME] = "time",
	[INSANE_MODE_DROP] = "drop",
	[INSANE_MODE_BURST] = "burst",
	[INSANE_MODE_GILBERT] = "gilbert",
	[INSANE_MODE_SCHEDULE] = "schedule",
};

static_assert(ARRAY_SIZE(mode_names) == INSANE_MODE_MAX + 1,
	      "a mode of enum insane_mode has no name");

static bool takes_seed(int mode)
{
	return mode == INSANE_MODE_PERCENT || mode == INSANE_MODE_BURST ||
	       mode == INSANE_MODE_GILBERT || mode == INSANE_MODE_SCHEDULE;
}

/*
 * The policy attributes are written to a scratch message first, which
 * holds the largest policy, then copied into ip's request if they fit.
 * Each step takes at most its nest, MODE, DURATION_NS and gilbert's four.
 */
#define STEP_MAX_LEN (RTA_LENGTH(0) + RTA_LENGTH(4) + RTA_LENGTH(8) + \
		      4 * RTA_LENGTH(4) + 2 * RTA_LENGTH(8) + \
		      2 * RTA_LENGTH(4) + RTA_LENGTH(0) + \
		      2 * RTA_LENGTH(8) + 3 * RTA_LENGTH(4) + RTA_LENGTH(0))
#define SCRATCH_LEN 16384

static_assert(RTA_LENGTH(0) + 24 * RTA_LENGTH(8) +
	      INSANE_SCHEDULE_STEPS_MAX * STEP_MAX_LEN <= SCRATCH_LEN,
	      "the scratch message cannot hold the longest policy");

struct scratch {
	struct nlmsghdr n;
	char buf[SCRATCH_LEN];
};

/* A mode and its attributes: a whole policy but a schedule's steps. */
static void put_action(struct nlmsghdr *n, const struct action *a)
{
	addattr32(n, sizeof(struct scratch), INSANE_POLICY_A_MODE, a->mode);
	switch (a->mode) {
	case INSANE_MODE_PERCENT:
		addattr32(n, sizeof(struct scratch), INSANE_POLICY_A_PERCENT,
			  a->percent);
		break;
	case INSANE_MODE_BURST:
		addattr32(n, sizeof(struct scratch), INSANE_POLICY_A_PERCENT,
			  a->percent);
		addattr32(n, sizeof(struct scratch), INSANE_POLICY_A_BURST,
			  a->burst);
		break;
	case INSANE_MODE_GILBERT:
		addattr32(n, sizeof(struct scratch), INSANE_POLICY_A_GE_P,
			  a->ge_p);
		addattr32(n, sizeof(struct scratch), INSANE_POLICY_A_GE_R,
			  a->ge_r);
		addattr32(n, sizeof(struct scratch),
			  INSANE_POLICY_A_GE_LOSS_BAD, a->ge_loss_bad);
		addattr32(n, sizeof(struct scratch),
			  INSANE_POLICY_A_GE_LOSS_GOOD, a->ge_loss_good);
		break;
	case INSANE_MODE_TIME:
		addattr64(n, sizeof(struct scratch), INSANE_POLICY_A_ON_NS,
			  a->on);
		addattr64(n, sizeof(struct scratch), INSANE_POLICY_A_OFF_NS,
			  a->off);
		break;
	}
	if (a->delay)
		addattr64(n, sizeof(struct scratch), INSANE_POLICY_A_DELAY_NS,
			  a->delay);
	if (a->jitter)
		addattr64(n, sizeof(struct scratch), INSANE_POLICY_A_JITTER_NS,
			  a->jitter);
	if (a->correlation)
		addattr32(n, sizeof(struct scratch),
			  INSANE_POLICY_A_CORRELATION, a->correlation);
	if (a->distribution)
		addattr32(n, sizeof(struct scratch),
			  INSANE_POLICY_A_DISTRIBUTION, a->distribution);
	if (a->reorder)
		addattr_l(n, sizeof(struct scratch), INSANE_POLICY_A_REORDER,
			  NULL, 0);
	if (a->rate)
		addattr64(n, sizeof(struct scratch), INSANE_POLICY_A_RATE,
			  a->rate);
	if (a->overhead)
		addattr32(n, sizeof(struct scratch), INSANE_POLICY_A_OVERHEAD,
			  a->overhead);
	if (a->buffer)
		addattr64(n, sizeof(struct scratch), INSANE_POLICY_A_BUFFER_NS,
			  a->buffer);
	if (a->duplicate)
		addattr32(n, sizeof(struct scratch), INSANE_POLICY_A_DUPLICATE,
			  a->duplicate);
	if (a->corrupt)
		addattr32(n, sizeof(struct scratch), INSANE_POLICY_A_CORRUPT,
			  a->corrupt);
	if (a->corrupt_header)
		addattr_l(n, sizeof(struct scratch),
			  INSANE_POLICY_A_CORRUPT_HEADER, NULL, 0);
}

/* The words of one direction: its policy, seed and edge flags. */
struct direction {
	const char *prefix;	/* "" or "rx " in messages */
	struct policy p;
	bool have_seed;
	__u64 seed;
	bool carrier, events;
	bool have_delay;	/* "delay" at the policy's level, in dl */
	struct action dl;
	/* rate, duplicate and corrupt at the policy's level, in ex */
	bool have_rate, have_duplicate, have_corrupt;
	struct action ex;
	__u32 limit;		/* 0: none given */
};

/*
 * Refuses carrier and events without a mode that has windows, or with a
 * window shorter than INSANE_EDGE_MIN_NS; the Go parser says the same.
 */
static int check_flags(const struct direction *d)
{
	const char *flags = "carrier and events", *verb = "need";
	const struct policy *p = &d->p;
	char min[32], got[32];
	__u64 least = INSANE_EDGE_MIN_NS;
	int i;

	if (!d->carrier && !d->events)
		return 0;
	if (p->mode < 0)
		return bad("%s%s goes with %s", d->prefix,
			   d->carrier ? "carrier" : "events", flag_modes);
	if (p->mode != INSANE_MODE_TIME && p->mode != INSANE_MODE_SCHEDULE)
		return bad("%s%s goes with %s, not mode %s", d->prefix,
			   d->carrier ? "carrier" : "events", flag_modes,
			   mode_names[p->mode]);
	if (!d->events) {
		flags = "carrier";
		verb = "needs";
	} else if (!d->carrier) {
		flags = "events";
	}
	format_time(least, min, sizeof(min));
	if (p->mode == INSANE_MODE_TIME) {
		if (p->a.on < least || p->a.off < least) {
			format_time(p->a.on < least ? p->a.on : p->a.off, got,
				    sizeof(got));
			return bad("%s%s %s windows of at least %s: %s lasts %s",
				   d->prefix, flags, verb, min,
				   p->a.on < least ? "ON" : "OFF", got);
		}
		return 0;
	}
	for (i = 0; i < p->nsteps; i++) {
		if (p->steps[i].duration < least) {
			format_time(p->steps[i].duration, got, sizeof(got));
			return bad("%s%s %s windows of at least %s: step %d lasts %s",
				   d->prefix, flags, verb, min, i + 1, got);
		}
	}
	return 0;
}

/*
 * Writes a direction's policy into the request, nested in nest_type if it
 * is not 0 (the receive policy), refusing one that does not fit.
 */
static int put_policy(struct nlmsghdr *n, int nest_type,
		      const struct direction *d)
{
	static struct scratch s;
	const struct policy *p = &d->p;
	struct rtattr *outer = NULL, *steps, *step;
	__u32 len, at;
	int i;

	memset(&s.n, 0, sizeof(s.n));
	s.n.nlmsg_len = NLMSG_HDRLEN;
	if (nest_type)
		outer = addattr_nest(&s.n, sizeof(s), nest_type | NLA_F_NESTED);
	if (p->mode == INSANE_MODE_SCHEDULE) {
		addattr32(&s.n, sizeof(s), INSANE_POLICY_A_MODE,
			  INSANE_MODE_SCHEDULE);
		steps = addattr_nest(&s.n, sizeof(s),
				     INSANE_POLICY_A_STEPS | NLA_F_NESTED);
		for (i = 0; i < p->nsteps; i++) {
			step = addattr_nest(&s.n, sizeof(s),
					    INSANE_STEPS_A_STEP | NLA_F_NESTED);
			put_action(&s.n, &p->steps[i]);
			addattr64(&s.n, sizeof(s), INSANE_POLICY_A_DURATION_NS,
				  p->steps[i].duration);
			addattr_nest_end(&s.n, step);
		}
		addattr_nest_end(&s.n, steps);
		if (p->once)
			addattr_l(&s.n, sizeof(s), INSANE_POLICY_A_ONCE, NULL, 0);
	} else {
		put_action(&s.n, &p->a);
	}
	if (d->have_seed)
		addattr64(&s.n, sizeof(s), INSANE_POLICY_A_SEED, d->seed);
	if (d->limit)
		addattr32(&s.n, sizeof(s), INSANE_POLICY_A_LIMIT, d->limit);
	if (d->carrier)
		addattr_l(&s.n, sizeof(s), INSANE_POLICY_A_CARRIER, NULL, 0);
	if (d->events)
		addattr_l(&s.n, sizeof(s), INSANE_POLICY_A_EVENTS, NULL, 0);
	if (outer)
		addattr_nest_end(&s.n, outer);

	len = s.n.nlmsg_len - NLMSG_HDRLEN;
	at = NLMSG_ALIGN(n->nlmsg_len);
	if (at + len > REQ_MAX)
		return bad("the %spolicy takes %u bytes, and ip's request has room for %u more: %s",
			   d->prefix, len, at < REQ_MAX ? REQ_MAX - at : 0,
			   "use fewer steps, or the insane CLI");
	memcpy((char *)n + at, s.buf, len);
	n->nlmsg_len = at + len;
	return 0;
}

/*
 * Puts the policy-level delay words on the mode: refused without a mode,
 * and on a schedule, whose steps take them.
 */
static int set_delay(struct direction *d)
{
	struct action *a = &d->p.a;

	if (d->have_delay) {
		if (d->p.mode < 0)
			return bad("%sdelay goes with a mode: mode pass delay D",
				   d->prefix);
		if (d->p.mode == INSANE_MODE_SCHEDULE)
			return bad("%sa schedule's delay goes in its steps: 10s pass delay 50ms",
				   d->prefix);
		a->delay = d->dl.delay;
		a->jitter = d->dl.jitter;
		a->correlation = d->dl.correlation;
		a->distribution = d->dl.distribution;
		a->reorder = d->dl.reorder;
	}
	if (d->limit && d->p.mode < 0)
		return bad("%slimit goes with a mode: mode pass limit N",
			   d->prefix);
	return 0;
}

/*
 * Puts the policy-level rate, duplicate and corrupt on the mode: refused
 * without a mode, and on a schedule, whose steps take them.
 */
static int set_extras(struct direction *d)
{
	static const struct {
		const char *word, *example;
	} words[] = {
		{ "rate", "rate R" }, { "duplicate", "duplicate P" },
		{ "corrupt", "corrupt P" },
	};
	static const char *const steps[] = {
		"rate 10mbit", "duplicate 1", "corrupt 0.1",
	};
	const bool have[] = { d->have_rate, d->have_duplicate,
			      d->have_corrupt };
	struct action *a = &d->p.a;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(words); i++) {
		if (!have[i])
			continue;
		if (d->p.mode < 0)
			return bad("%s%s goes with a mode: mode pass %s",
				   d->prefix, words[i].word, words[i].example);
		if (d->p.mode == INSANE_MODE_SCHEDULE)
			return bad("%sa schedule's %s goes in its steps: 10s pass %s",
				   d->prefix, words[i].word, steps[i]);
	}
	a->rate = d->ex.rate;
	a->overhead = d->ex.overhead;
	a->buffer = d->ex.buffer;
	a->duplicate = d->ex.duplicate;
	a->corrupt = d->ex.corrupt;
	a->corrupt_header = d->ex.corrupt_header;
	return 0;
}

static int insane_parse_opt(struct link_util *lu, int argc, char **argv,
			    struct nlmsghdr *n)
{
	/* Static: two schedules of 64 steps are too much for a stack. */
	static struct direction dirs[2];
	struct direction *d = &dirs[0];
	bool rx_off = false;
	int i = 0, used, k;

	memset(dirs, 0, sizeof(dirs));
	dirs[0].prefix = "";
	dirs[0].p.mode = -1;
	dirs[1].prefix = "rx ";
	dirs[1].p.mode = -1;
	while (i < argc) {
		if (!strcmp(argv[i], "help")) {
			insane_print_help(lu, 0, NULL, stderr);
			return -1;
		} else if (!strcmp(argv[i], "tx") || !strcmp(argv[i], "rx")) {
			bool rx = argv[i][0] == 'r';

			d = &dirs[rx];
			if (i + 1 >= argc)
				return bad("%s needs a policy (mode ... or seed S)%s",
					   argv[i], rx ? " or off" : "");
			if (rx && !strcmp(argv[i + 1], "off")) {
				if (rx_off || d->p.mode >= 0 || d->have_seed)
					return bad("rx off given with another receive policy");
				rx_off = true;
				i += 2;
				continue;
			}
			if (strcmp(argv[i + 1], "mode") &&
			    strcmp(argv[i + 1], "seed") &&
			    strcmp(argv[i + 1], "delay") &&
			    strcmp(argv[i + 1], "limit") && !is_flag(argv[i + 1]) &&
			    !is_extra_keyword(argv[i + 1]))
				return bad("%s needs a policy (mode ... or seed S), not \"%s\"",
					   argv[i], argv[i + 1]);
			if (rx && rx_off)
				return bad("rx off given with another receive policy (rx %s)",
					   argv[i + 1]);
			i++;
		} else if (!strcmp(argv[i], "mode")) {
			if (d->p.mode >= 0)
				return bad("%smode given twice", d->prefix);
			used = parse_mode(argc - i - 1, argv + i + 1, &d->p);
			if (used < 0)
				return -1;
			i += 1 + used;
		} else if (!strcmp(argv[i], "seed")) {
			if (d->have_seed)
				return bad("%sseed given twice", d->prefix);
			if (i + 1 >= argc)
				return bad("seed needs a value");
			if (parse_seed(argv[i + 1], &d->seed))
				return -1;
			d->have_seed = true;
			i += 2;
		} else if (!strcmp(argv[i], "delay")) {
			if (d->have_delay)
				return bad("%sdelay given twice", d->prefix);
			used = parse_delay(argc - i, argv + i, &d->dl, "");
			if (used < 0)
				return -1;
			d->have_delay = true;
			i += used;
		} else if (!strcmp(argv[i], "limit")) {
			if (d->limit)
				return bad("%slimit given twice", d->prefix);
			if (i + 1 >= argc)
				return bad("limit needs a number of packets");
			if (parse_limit(argv[i + 1], &d->limit))
				return -1;
			i += 2;
		} else if (is_extra_keyword(argv[i])) {
			bool *have = argv[i][0] == 'r' ? &d->have_rate :
				     argv[i][0] == 'd' ? &d->have_duplicate :
				     &d->have_corrupt;

			if (*have)
				return bad("%s%s given twice", d->prefix, argv[i]);
			used = parse_extra(argc - i, argv + i, &d->ex, "");
			if (used < 0)
				return -1;
			*have = true;
			i += used;
		} else if (is_sub_word(argv[i])) {
			return stray_sub_word(argv[i]);
		} else if (!strcmp(argv[i], "carrier")) {
			if (d == &dirs[1])
				return bad("carrier goes with the transmit policy only");
			if (d->carrier)
				return bad("carrier given twice");
			d->carrier = true;
			i++;
		} else if (!strcmp(argv[i], "events")) {
			if (d->events)
				return bad("%sevents given twice", d->prefix);
			d->events = true;
			i++;
		} else {
			return bad("unknown option \"%s\"", argv[i]);
		}
	}

	for (k = 0; k < 2; k++) {
		d = &dirs[k];
		if (set_delay(d) || set_extras(d))
			return -1;
		if (d->have_seed && !takes_seed(d->p.mode) && !d->p.a.jitter &&
		    !d->p.a.duplicate && !d->p.a.corrupt) {
			if (d->p.mode < 0)
				return bad("%sseed goes with %s", d->prefix,
					   seed_modes);
			return bad("%sseed goes with %s, not mode %s",
				   d->prefix, seed_modes, mode_names[d->p.mode]);
		}
		if (check_flags(d))
			return -1;
	}
	if (dirs[0].p.mode >= 0 && put_policy(n, 0, &dirs[0]))
		return -1;
	if (dirs[1].p.mode >= 0 &&
	    put_policy(n, INSANE_POLICY_A_RX, &dirs[1]))
		return -1;
	if (rx_off && addattr_l(n, REQ_MAX, INSANE_POLICY_A_RX_OFF, NULL, 0))
		return -1;
	return 0;
}

/* Attribute payloads, checked for length; NULL when absent or malformed. */

static const void *attr_data(const struct rtattr *rta, size_t len)
{
	if (!rta || RTA_PAYLOAD(rta) < len)
		return NULL;
	return RTA_DATA(rta);
}

static bool get_u32(const struct rtattr *rta, __u32 *v)
{
	const void *d = attr_data(rta, sizeof(*v));

	if (d)
		memcpy(v, d, sizeof(*v));
	return d;
}

static bool get_u64(const struct rtattr *rta, __u64 *v)
{
	const void *d = attr_data(rta, sizeof(*v));

	if (d)
		memcpy(v, d, sizeof(*v));
	return d;
}

/*
 * The policy attributes nested in rta, by type without the flags (the
 * kernel marks its nests NLA_F_NESTED); the first of each type counts.
 */
static void parse_nested(struct rtattr *tb[], const struct rtattr *rta)
{
	struct rtattr *a;
	int len = (int)RTA_PAYLOAD(rta);
	unsigned int type;

	memset(tb, 0, sizeof(*tb) * (INSANE_POLICY_A_MAX + 1));
	for (a = RTA_DATA(rta); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		type = a->rta_type & NLA_TYPE_MASK;
		if (type <= INSANE_POLICY_A_MAX && !tb[type])
			tb[type] = a;
	}
}

/*
 * The time left in a step, for people: in the largest of s, ms and us that
 * it reaches, to three decimals, cut (not rounded) and without trailing
 * zeros (3.25s, 12.5ms, 999.999us); below a microsecond in ns.
 */
static void format_left(__u64 ns, char *buf, size_t len)
{
	static const struct {
		__u64 ns;
		const char *name;
	} units[] = { { 1000000000, "s" }, { 1000000, "ms" }, { 1000, "us" } };
	__u64 frac;
	size_t i;
	int n;

	if (!ns) {
		snprintf(buf, len, "0s");
		return;
	}
	for (i = 0; i < ARRAY_SIZE(units) && ns < units[i].ns; i++)
		;
	if (i == ARRAY_SIZE(units)) {
		snprintf(buf, len, "%lluns", ns);
		return;
	}
	frac = ns % units[i].ns / (units[i].ns / 1000);
	n = snprintf(buf, len, "%llu", ns / units[i].ns);
	if (frac && n > 0 && (size_t)n < len) {
		snprintf(buf + n, len - (size_t)n, ".%03llu", frac);
		n = (int)strlen(buf);
		while (buf[n - 1] == '0')
			buf[--n] = '\0';
	}
	if (n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, "%s", units[i].name);
}

/* A number as text ("12.5 ") and as the same exact JSON number. */
static void print_decimal(const char *key, const char *value)
{
	if (is_json_context()) {
		struct json_writer *jw = get_json_writer();

		jsonw_name(jw, key);
		jsonw_printf(jw, "%s", value);
	} else {
		print_color_string(IP_PRINT_FP, IP_COLOR_NONE, NULL, "%s ",
				   value);
	}
}

static void print_percent(const char *key, __u32 units)
{
	char buf[16];

	format_percent(units, buf, sizeof(buf));
	print_decimal(key, buf);
}

/* A time as text in its exact unit ("1500ms "), in JSON as key: ns. */
static void print_time(const char *key, __u64 ns)
{
	char buf[32];

	if (is_json_context()) {
		print_color_u64(IP_PRINT_JSON, IP_COLOR_NONE, key, NULL, ns);
	} else {
		format_time(ns, buf, sizeof(buf));
		print_color_string(IP_PRINT_FP, IP_COLOR_NONE, NULL, "%s ",
				   buf);
	}
}

/* A flag of the policy: its word in text, in JSON key: true. */
static void print_flag(struct rtattr *tb[], int type, const char *name)
{
	if (!tb[type])
		return;
	if (is_json_context())
		print_color_bool(IP_PRINT_JSON, IP_COLOR_NONE, name, NULL, true);
	else
		print_color_string(IP_PRINT_FP, IP_COLOR_NONE, NULL, "%s ",
				   name);
}

/* A word in text only ("delay "): its value follows. */
static void print_word(const char *word)
{
	print_color_string(IP_PRINT_FP, IP_COLOR_NONE, NULL, "%s ", word);
}

/*
 * The delay stage as the grammar writes it: "delay 50ms jitter 10ms
 * correlation 25 distribution normal reorder ", the default uniform
 * distribution left out; in JSON delay_ns, jitter_ns, correlation,
 * distribution (whenever there is a jitter) and reorder.
 */
static void print_delay(struct rtattr *tb[])
{
	__u64 delay, jitter;
	__u32 corr = 0, dist = INSANE_DISTRIBUTION_UNIFORM;
	char buf[32];

	if (!get_u64(tb[INSANE_POLICY_A_DELAY_NS], &delay))
		return;
	print_word("delay");
	print_time("delay_ns", delay);
	if (get_u64(tb[INSANE_POLICY_A_JITTER_NS], &jitter) && jitter) {
		print_word("jitter");
		print_time("jitter_ns", jitter);
		if (get_u32(tb[INSANE_POLICY_A_CORRELATION], &corr) && corr) {
			print_word("correlation");
			print_percent("correlation", corr);
		}
		get_u32(tb[INSANE_POLICY_A_DISTRIBUTION], &dist);
		if (dist < ARRAY_SIZE(dist_names))
			snprintf(buf, sizeof(buf), "%s", dist_names[dist]);
		else
			snprintf(buf, sizeof(buf), "%u", dist);
		print_color_string(IP_PRINT_JSON, IP_COLOR_NONE,
				   "distribution", NULL, buf);
		if (dist != INSANE_DISTRIBUTION_UNIFORM)
			print_color_string(IP_PRINT_FP, IP_COLOR_NONE, NULL,
					   "distribution %s ", buf);
	}
	print_flag(tb, INSANE_POLICY_A_REORDER, "reorder");
}

/* Bits per second in the largest SI unit of bits that divides them. */
static void format_rate(__u64 bps, char *buf, size_t len)
{
	static const struct {
		__u64 bps;
		const char *name;
	} units[] = {
		{ 1000000000000ULL, "tbit" }, { 1000000000, "gbit" },
		{ 1000000, "mbit" }, { 1000, "kbit" },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(units); i++) {
		if (bps && bps % units[i].bps == 0) {
			snprintf(buf, len, "%llu%s", bps / units[i].bps,
				 units[i].name);
			return;
		}
	}
	snprintf(buf, len, "%llubit", bps);
}

/*
 * Rate, duplicate and corrupt as the grammar writes them: "rate 10mbit
 * overhead 38 buffer 50ms duplicate 1 corrupt 0.5 header ", an overhead of
 * 0 (the default) left out; in JSON rate (bits per second), overhead,
 * buffer_ns, duplicate, corrupt and corrupt_header.
 */
static void print_extras(struct rtattr *tb[])
{
	__u64 rate, buffer;
	__u32 overhead, share;
	char buf[32];

	if (get_u64(tb[INSANE_POLICY_A_RATE], &rate)) {
		format_rate(rate, buf, sizeof(buf));
		print_color_u64(IP_PRINT_JSON, IP_COLOR_NONE, "rate", NULL,
				rate);
		print_color_string(IP_PRINT_FP, IP_COLOR_NONE, NULL,
				   "rate %s ", buf);
	}
	if (get_u32(tb[INSANE_POLICY_A_OVERHEAD], &overhead) && overhead)
		print_color_u64(IP_PRINT_ANY, IP_COLOR_NONE, "overhead",
				"overhead %llu ", overhead);
	if (get_u64(tb[INSANE_POLICY_A_BUFFER_NS], &buffer)) {
		print_word("buffer");
		print_time("buffer_ns", buffer);
	}
	if (get_u32(tb[INSANE_POLICY_A_DUPLICATE], &share)) {
		print_word("duplicate");
		print_percent("duplicate", share);
	}
	if (get_u32(tb[INSANE_POLICY_A_CORRUPT], &share)) {
		print_word("corrupt");
		print_percent("corrupt", share);
	}
	if (tb[INSANE_POLICY_A_CORRUPT_HEADER]) {
		if (is_json_context())
			print_color_bool(IP_PRINT_JSON, IP_COLOR_NONE,
					 "corrupt_header", NULL, true);
		else
			print_word("header");
	}
}

/*
 * A mode and its own attributes, as the grammar writes them: "mode burst
 * 95 5 " for a policy, "burst 95 5 " in a step. gilbert's loss
 * percentages print only when they differ from their defaults in text,
 * always in JSON.
 */
static void print_action(struct rtattr *tb[], __u32 mode, bool step)
{
	__u32 percent, burst, ge_p, ge_r, bad_loss, good_loss;
	__u64 on, off;
	char buf[32];

	if (mode < ARRAY_SIZE(mode_names))
		snprintf(buf, sizeof(buf), "%s", mode_names[mode]);
	else
		snprintf(buf, sizeof(buf), "%u", mode);
	print_color_string(IP_PRINT_ANY, IP_COLOR_NONE, "mode",
			   step ? "%s " : "mode %s ", buf);

	if (get_u32(tb[INSANE_POLICY_A_PERCENT], &percent))
		print_percent("percent", percent);
	if (get_u32(tb[INSANE_POLICY_A_BURST], &burst)) {
		format_burst(burst, buf, sizeof(buf));
		print_decimal("burst", buf);
	}
	if (get_u32(tb[INSANE_POLICY_A_GE_P], &ge_p) &&
	    get_u32(tb[INSANE_POLICY_A_GE_R], &ge_r)) {
		if (!get_u32(tb[INSANE_POLICY_A_GE_LOSS_BAD], &bad_loss))
			bad_loss = INSANE_PERCENT_MAX;
		if (!get_u32(tb[INSANE_POLICY_A_GE_LOSS_GOOD], &good_loss))
			good_loss = 0;
		print_percent("ge_p", ge_p);
		print_percent("ge_r", ge_r);
		if (is_json_context() || good_loss ||
		    bad_loss != INSANE_PERCENT_MAX)
			print_percent("ge_loss_bad", bad_loss);
		if (is_json_context() || good_loss)
			print_percent("ge_loss_good", good_loss);
	}
	if (get_u64(tb[INSANE_POLICY_A_ON_NS], &on) &&
	    get_u64(tb[INSANE_POLICY_A_OFF_NS], &off)) {
		print_time("on_ns", on);
		print_time("off_ns", off);
	}
	print_delay(tb);
	print_extras(tb);
}

/*
 * A schedule's steps: "30s pass 5s percent 50 " in text, in JSON an array
 * "steps" of objects with duration_ns, mode and the mode's attributes.
 */
static void print_steps(const struct rtattr *steps)
{
	struct rtattr *stb[INSANE_POLICY_A_MAX + 1];
	struct rtattr *a;
	int len = (int)RTA_PAYLOAD(steps);
	__u64 duration;
	__u32 mode;

	open_json_array(IP_PRINT_JSON, "steps");
	for (a = RTA_DATA(steps); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if ((a->rta_type & NLA_TYPE_MASK) != INSANE_STEPS_A_STEP)
			continue;
		parse_nested(stb, a);
		if (!get_u32(stb[INSANE_POLICY_A_MODE], &mode))
			continue;
		open_json_object(NULL);
		if (get_u64(stb[INSANE_POLICY_A_DURATION_NS], &duration))
			print_time("duration_ns", duration);
		print_action(stb, mode, true);
		close_json_object();
	}
	close_json_array(IP_PRINT_JSON, NULL);
}

/*
 * A policy: the grammar's words, then for time and schedule modes where
 * they are, in text "step 2 left 3.25s" (the steps numbered from 1, time
 * mode's ON window is step 1 and OFF step 2; no "left" while a once
 * schedule holds its last step for good). JSON has "step" as the kernel
 * reports it, from 0, and "step_left_ns".
 */
static void print_policy(struct rtattr *tb[])
{
	__u64 seed, left;
	__u32 mode, step, limit;
	char buf[32];

	if (!tb || !get_u32(tb[INSANE_POLICY_A_MODE], &mode))
		return;
	print_action(tb, mode, false);
	if (tb[INSANE_POLICY_A_STEPS])
		print_steps(tb[INSANE_POLICY_A_STEPS]);
	/* A dump read with a small buffer: see "Long policies" in the uapi. */
	if (get_u32(tb[INSANE_POLICY_A_STEPS_OMITTED], &step)) {
		print_color_u64(IP_PRINT_JSON, IP_COLOR_NONE, "steps_omitted",
				NULL, step);
		print_color_u64(IP_PRINT_FP, IP_COLOR_NONE, NULL,
				"(%llu steps left out of this dump: insane show lists them) ",
				step);
	}
	if (tb[INSANE_POLICY_A_ONCE]) {
		if (is_json_context())
			print_color_bool(IP_PRINT_JSON, IP_COLOR_NONE, "once",
					 NULL, true);
		else
			print_color_string(IP_PRINT_FP, IP_COLOR_NONE, NULL,
					   "%s", "once ");
	}
	if (get_u64(tb[INSANE_POLICY_A_SEED], &seed))
		print_color_u64(IP_PRINT_ANY, IP_COLOR_NONE, "seed",
				"seed %llu ", seed);
	if (get_u32(tb[INSANE_POLICY_A_LIMIT], &limit))
		print_color_u64(IP_PRINT_ANY, IP_COLOR_NONE, "limit",
				"limit %llu ", limit);
	print_flag(tb, INSANE_POLICY_A_CARRIER, "carrier");
	print_flag(tb, INSANE_POLICY_A_EVENTS, "events");
	if (!get_u32(tb[INSANE_POLICY_A_STEP_INDEX], &step))
		return;
	print_color_u64(IP_PRINT_JSON, IP_COLOR_NONE, "step", NULL, step);
	print_color_u64(IP_PRINT_FP, IP_COLOR_NONE, NULL, "step %llu ",
			(__u64)step + 1);
	if (get_u64(tb[INSANE_POLICY_A_STEP_LEFT_NS], &left)) {
		print_color_u64(IP_PRINT_JSON, IP_COLOR_NONE, "step_left_ns",
				NULL, left);
		format_left(left, buf, sizeof(buf));
		print_color_string(IP_PRINT_FP, IP_COLOR_NONE, NULL,
				   "left %s ", buf);
	}
}

static void insane_print_opt(struct link_util *lu, FILE *f,
			     struct rtattr *tb[])
{
	struct rtattr *rx[INSANE_POLICY_A_MAX + 1];

	if (!tb)
		return;
	print_policy(tb);
	if (!tb[INSANE_POLICY_A_RX])
		return;
	/* The receive policy: "rx mode ...", or an "rx" object in JSON. */
	parse_nested(rx, tb[INSANE_POLICY_A_RX]);
	print_color_string(IP_PRINT_FP, IP_COLOR_NONE, NULL, "%s", "rx ");
	open_json_object("rx");
	print_policy(rx);
	close_json_object();
}

/*
 * The counters, from the module's own list in uapi order: the attribute and
 * the name of ethtool -S and JSON ("drop_no_lower"). The text shows a short
 * name after "relayed:", "dropped:", "held:" or "marked:" ("no-lower"), see
 * short_name().
 */
struct counter {
	int attr;
	const char *name;
};

#define INSANE_COUNTER(attr, name, reason) { INSANE_STATS_A_##attr, #name },
static const struct counter counters[] = {
	INSANE_COUNTERS(INSANE_COUNTER)
};

#undef INSANE_COUNTER

static_assert(ARRAY_SIZE(counters) == INSANE_STATS_A_MAX - INSANE_STATS_A_PAD,
	      "kernel/counters.h and enum insane_stats_attr disagree");

static bool is_rx(const struct counter *c)
{
	return !strncmp(c->name, "rx_", strlen("rx_"));
}

/* The name without the direction's "rx_". */
static const char *base_name(const struct counter *c)
{
	return c->name + (is_rx(c) ? strlen("rx_") : 0);
}

static bool is_drop(const struct counter *c)
{
	return !strncmp(base_name(c), "drop_", strlen("drop_"));
}

/* A gauge: what the delay stage holds now ("held_packets"). */
static bool is_held(const struct counter *c)
{
	return !strncmp(base_name(c), "held_", strlen("held_"));
}

/* The marks of kernel/counters.h: duplicated, corrupted; never drops. */
#define INSANE_MARK_ATTR(attr, name, reason) INSANE_STATS_A_##attr,
static const int mark_attrs[] = { INSANE_MARKS(INSANE_MARK_ATTR) };
#undef INSANE_MARK_ATTR

static bool is_mark(const struct counter *c)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(mark_attrs); i++)
		if (mark_attrs[i] == c->attr)
			return true;
	return false;
}

/*
 * The name without "rx_", "drop_", "relayed_" or "held_", with '-' for
 * '_'.
 */
static void short_name(const struct counter *c, char *buf, size_t len)
{
	const char *s = base_name(c) + (is_drop(c) ? strlen("drop_") : 0);
	size_t i;

	if (!strncmp(s, "relayed_", strlen("relayed_")))
		s += strlen("relayed_");
	else if (is_held(c))
		s += strlen("held_");
	for (i = 0; s[i] && i + 1 < len; i++)
		buf[i] = s[i] == '_' ? '-' : s[i];
	buf[i] = '\0';
}

/*
 * The counters of direction @dir of a kind: 0 relayed, 1 drop, 2 held, 3
 * marked.
 */
static void print_kind(const __u64 *v, int dir, int kind)
{
	char fmt[48], label[32];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(counters); i++) {
		const struct counter *c = &counters[i];
		int k = is_mark(c) ? 3 : is_held(c) ? 2 : is_drop(c) ? 1 : 0;

		if (is_rx(c) != dir || k != kind)
			continue;
		short_name(c, label, sizeof(label));
		snprintf(fmt, sizeof(fmt), " %s %%llu", label);
		print_color_u64(IP_PRINT_ANY, IP_COLOR_NONE, c->name, fmt,
				v[c->attr]);
	}
}

static void insane_print_xstats(struct link_util *lu, FILE *f,
				struct rtattr *xstats)
{
	static const char *const relayed_fp[2] = {
		"    relayed:", "    rx relayed:"
	};
	static const char *const held_fp[2] = { "    held:", "    rx held:" };
	static const char *const marked_fp[2] = {
		"    marked:", "    rx marked:"
	};
	static const char *const dropped_key[2] = { "dropped", "rx_dropped" };
	static const char *const dropped_fp[2] = {
		"    dropped: total %llu", "    rx dropped: total %llu"
	};
	__u64 v[INSANE_STATS_A_MAX + 1] = { 0 };
	__u64 dropped[2] = { 0, 0 };
	struct rtattr *rta;
	int dir, len;
	size_t i;

	len = (int)RTA_PAYLOAD(xstats);
	for (rta = RTA_DATA(xstats); RTA_OK(rta, len); rta = RTA_NEXT(rta, len))
		if (rta->rta_type <= INSANE_STATS_A_MAX)
			get_u64(rta, &v[rta->rta_type]);
	/* The drop causes only: the marks count packets counted there too. */
	for (i = 0; i < ARRAY_SIZE(counters); i++)
		if (is_drop(&counters[i]) && !is_mark(&counters[i]))
			dropped[is_rx(&counters[i])] += v[counters[i].attr];

	/*
	 * Like the insane CLI's -s lines: the transmit direction's relayed,
	 * dropped, held and marked lines, then the receive direction's;
	 * counters since the last reset, gauges as they are now.
	 */
	for (dir = 0; dir < 2; dir++) {
		print_nl();
		print_color_string(IP_PRINT_FP, IP_COLOR_NONE, NULL, "%s",
				   relayed_fp[dir]);
		print_kind(v, dir, 0);
		print_nl();
		print_color_u64(IP_PRINT_ANY, IP_COLOR_NONE, dropped_key[dir],
				dropped_fp[dir], dropped[dir]);
		print_kind(v, dir, 1);
		print_nl();
		print_color_string(IP_PRINT_FP, IP_COLOR_NONE, NULL, "%s",
				   held_fp[dir]);
		print_kind(v, dir, 2);
		print_nl();
		print_color_string(IP_PRINT_FP, IP_COLOR_NONE, NULL, "%s",
				   marked_fp[dir]);
		print_kind(v, dir, 3);
	}
	/* ip goes on with the device's other details, indented. */
	print_nl();
	print_color_string(IP_PRINT_FP, IP_COLOR_NONE, NULL, "%s", "    ");
}

/* The one symbol ip looks up; everything else stays hidden. */
__attribute__((visibility("default")))
struct link_util insane_link_util = {
	.id = INSANE_LINK_KIND,
	.maxattr = INSANE_POLICY_A_MAX,
	.parse_opt = insane_parse_opt,
	.print_opt = insane_print_opt,
	.print_xstats = insane_print_xstats,
	.print_help = insane_print_help,
};
