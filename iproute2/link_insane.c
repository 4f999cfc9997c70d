// SPDX-License-Identifier: GPL-2.0
/*
 * link_insane.so: the "insane" link type for iproute2's ip(8).
 *
 *   ip link add link eth0 name insane0 type insane mode percent 80 seed 7
 *   ip link set insane0 type insane mode time 50 100
 *   ip link set insane0 type insane rx mode percent 90   (receive policy)
 *   ip link set insane0 type insane rx off
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
 * The grammar is the insane CLI's: a bare integer time counts 10 ms ticks, as
 * in the original driver; a time with a unit (500ms, 1.5s, 1m30s) is exact.
 */

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <linux/insane.h>

#include "ip_plugin.h"
#include "../kernel/counters.h"

/* The request buffer of ip link add/set, as its own link types assume. */
#define REQ_MAX 1024

#define TICK_NS 10000000ULL
#define NS_MAX 0x7fffffffffffffffULL

static const char time_help[] =
	"use a unit (500ms, 1s, 250us) or an integer of 10 ms ticks";

static const char usage_text[] =
	"Usage: ... insane [ [ tx ] POLICY ] [ rx { POLICY | off } ]\n"
	"\n"
	"POLICY := { mode pass | mode percent P [ seed S ] | mode time ON OFF }\n"
	"tx, rx := the direction of the POLICY words that follow: what is sent\n"
	"          through the device (the default), or the replies of the hosts\n"
	"          routed through it, which the receive policy decides (rx off,\n"
	"          the default, leaves received traffic untouched)\n"
	"P := the percentage of packets relayed, 0 to 100, to a millionth (12.5)\n"
	"ON OFF := relay for ON, then drop for OFF, repeating; with a unit\n"
	"          (500ms, 1s, 250us, 100ns) or a bare integer of 10 ms ticks\n"
	"          (mode time 50 100 relays 500ms and drops 1s)\n"
	"S := a 64-bit seed that makes the percent decisions reproducible\n"
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

/* Reads a percentage into millionths of a percent, rounding to nearest. */
static int parse_percent(const char *s, __u32 *units)
{
	__u64 whole = 0, frac = 0;
	const char *p = s;
	int ndigits = 0, scale;
	bool round_up = false;

	while (*p >= '0' && *p <= '9' && whole <= 100) {
		whole = whole * 10 + (__u64)(*p++ - '0');
		ndigits++;
	}
	if (*p == '.') {
		p++;
		for (scale = 0; *p >= '0' && *p <= '9'; p++, scale++) {
			if (scale < 6)
				frac = frac * 10 + (__u64)(*p - '0');
			else if (scale == 6)
				round_up = *p >= '5';
			ndigits++;
		}
		for (; scale < 6; scale++)
			frac *= 10;
	}
	if (*p == '%')
		p++;
	if (*p || !ndigits)
		return bad("\"%s\" is not a percentage", s);
	whole = whole * INSANE_PERCENT_SCALE + frac + round_up;
	if (whole > INSANE_PERCENT_MAX)
		return bad("percentage \"%s\" is not between 0 and 100", s);
	*units = (__u32)whole;
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
 * Reads a time in nanoseconds: a bare integer of 10 ms ticks, or numbers
 * with units in sequence, as Go's time.ParseDuration reads them ("1m30s",
 * "1.5ms"); digits beyond a nanosecond are dropped.
 */
static int parse_time(const char *s, __u64 *ns)
{
	const char *p = s;
	__u64 sum = 0;

	if (*p >= '0' && *p <= '9' && p[strspn(p, "0123456789")] == '\0') {
		errno = 0;
		sum = strtoull(p, NULL, 10);
		if (errno || sum > NS_MAX / TICK_NS)
			return bad("time \"%s\" is too large", s);
		*ns = sum * TICK_NS;
		return 0;
	}
	if (!*p)
		return bad("\"%s\" is not a time: %s", s, time_help);
	while (*p) {
		__u64 whole = 0, frac = 0, fdiv = 1;
		bool digits = false;
		size_t i, len;

		for (; *p >= '0' && *p <= '9'; p++, digits = true) {
			if (whole > NS_MAX / 10)
				return bad("time \"%s\" is too large", s);
			whole = whole * 10 + (__u64)(*p - '0');
		}
		if (*p == '.') {
			for (p++; *p >= '0' && *p <= '9'; p++, digits = true) {
				if (fdiv < 1000000000000000000ULL) {
					frac = frac * 10 + (__u64)(*p - '0');
					fdiv *= 10;
				}
			}
		}
		if (!digits)
			return bad("\"%s\" is not a time: %s", s, time_help);
		len = strcspn(p, "0123456789.");
		for (i = 0; i < ARRAY_SIZE(time_units); i++)
			if (strlen(time_units[i].name) == len &&
			    !strncmp(p, time_units[i].name, len))
				break;
		if (!len || i == ARRAY_SIZE(time_units))
			return bad("\"%s\" is not a time: %s", s, time_help);
		if (!add_scaled(&sum, whole, time_units[i].ns, 1) ||
		    !add_scaled(&sum, frac, time_units[i].ns, fdiv))
			return bad("time \"%s\" is too large", s);
		p += len;
	}
	*ns = sum;
	return 0;
}

static int parse_seed(const char *s, __u64 *seed)
{
	char *end;

	if (*s < '0' || *s > '9')
		return bad("seed \"%s\" is not a 64-bit unsigned integer", s);
	errno = 0;
	*seed = strtoull(s, &end, 0);
	if (errno || *end)
		return bad("seed \"%s\" is not a 64-bit unsigned integer", s);
	return 0;
}

struct policy {
	int mode;		/* -1: none given */
	__u32 percent;
	__u64 on, off;
};

/* Reads "pass", "percent P" or "time ON OFF"; returns the words used. */
static int parse_mode(int argc, char **argv, struct policy *p)
{
	if (argc < 1)
		return bad("mode needs pass, percent P or time ON OFF");
	if (!strcmp(argv[0], "pass")) {
		p->mode = INSANE_MODE_PASS;
		return 1;
	}
	if (!strcmp(argv[0], "percent")) {
		if (argc < 2)
			return bad("mode percent needs a percentage");
		if (parse_percent(argv[1], &p->percent))
			return -1;
		p->mode = INSANE_MODE_PERCENT;
		return 2;
	}
	if (!strcmp(argv[0], "time")) {
		if (argc < 3)
			return bad("mode time needs ON and OFF times");
		if (parse_time(argv[1], &p->on) || parse_time(argv[2], &p->off))
			return -1;
		if (p->on + p->off == 0 || p->on + p->off > NS_MAX)
			return bad("mode time %s %s: ON + OFF must be 1 ns to 2^63 - 1 ns",
				   argv[1], argv[2]);
		p->mode = INSANE_MODE_TIME;
		return 3;
	}
	return bad("unknown mode \"%s\": want pass, percent or time", argv[0]);
}

static int put_policy(struct nlmsghdr *n, const struct policy *p,
		      const __u64 *seed)
{
	if (addattr32(n, REQ_MAX, INSANE_POLICY_A_MODE, (__u32)p->mode))
		return -1;
	switch (p->mode) {
	case INSANE_MODE_PERCENT:
		if (addattr32(n, REQ_MAX, INSANE_POLICY_A_PERCENT, p->percent))
			return -1;
		if (seed && addattr64(n, REQ_MAX, INSANE_POLICY_A_SEED, *seed))
			return -1;
		break;
	case INSANE_MODE_TIME:
		if (addattr64(n, REQ_MAX, INSANE_POLICY_A_ON_NS, p->on) ||
		    addattr64(n, REQ_MAX, INSANE_POLICY_A_OFF_NS, p->off))
			return -1;
		break;
	}
	return 0;
}

/* The words of one direction: its policy and seed. */
struct direction {
	const char *prefix;	/* "" or "rx " in messages */
	struct policy p;
	bool have_seed;
	__u64 seed;
};

static int insane_parse_opt(struct link_util *lu, int argc, char **argv,
			    struct nlmsghdr *n)
{
	struct direction dirs[2] = {
		{ .prefix = "", .p = { .mode = -1 } },
		{ .prefix = "rx ", .p = { .mode = -1 } },
	};
	struct direction *d = &dirs[0];
	struct rtattr *nest;
	bool rx_off = false;
	int i = 0, used, k;

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
			    strcmp(argv[i + 1], "seed"))
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
		} else {
			return bad("unknown option \"%s\"", argv[i]);
		}
	}

	for (k = 0; k < 2; k++)
		if (dirs[k].have_seed && dirs[k].p.mode != INSANE_MODE_PERCENT)
			return bad("%sseed goes with mode percent",
				   dirs[k].prefix);
	if (dirs[0].p.mode >= 0 &&
	    put_policy(n, &dirs[0].p, dirs[0].have_seed ? &dirs[0].seed : NULL))
		return -1;
	if (dirs[1].p.mode >= 0) {
		nest = addattr_nest(n, REQ_MAX, INSANE_POLICY_A_RX | NLA_F_NESTED);
		if (!nest ||
		    put_policy(n, &dirs[1].p, dirs[1].have_seed ? &dirs[1].seed : NULL))
			return -1;
		addattr_nest_end(n, nest);
	}
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

/* Nanoseconds in the largest of s, ms, us and ns that divides them. */
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

static void print_policy(struct rtattr *tb[])
{
	static const char *const modes[] = {
		[INSANE_MODE_PASS] = "pass",
		[INSANE_MODE_PERCENT] = "percent",
		[INSANE_MODE_TIME] = "time",
	};
	__u64 seed, on, off;
	__u32 mode, percent;
	char buf[32];

	if (!tb || !get_u32(tb[INSANE_POLICY_A_MODE], &mode))
		return;
	if (mode < ARRAY_SIZE(modes) && modes[mode]) {
		print_color_string(IP_PRINT_ANY, IP_COLOR_NONE, "mode",
				   "mode %s ", modes[mode]);
	} else {
		snprintf(buf, sizeof(buf), "%u", mode);
		print_color_string(IP_PRINT_ANY, IP_COLOR_NONE, "mode",
				   "mode %s ", buf);
	}

	if (get_u32(tb[INSANE_POLICY_A_PERCENT], &percent)) {
		format_percent(percent, buf, sizeof(buf));
		if (is_json_context()) {
			struct json_writer *jw = get_json_writer();

			/* The exact decimal as a JSON number. */
			jsonw_name(jw, "percent");
			jsonw_printf(jw, "%s", buf);
		} else {
			print_color_string(IP_PRINT_FP, IP_COLOR_NONE, NULL,
					   "%s ", buf);
		}
	}
	if (get_u64(tb[INSANE_POLICY_A_SEED], &seed))
		print_color_u64(IP_PRINT_ANY, IP_COLOR_NONE, "seed",
				"seed %llu ", seed);
	if (get_u64(tb[INSANE_POLICY_A_ON_NS], &on) &&
	    get_u64(tb[INSANE_POLICY_A_OFF_NS], &off)) {
		if (is_json_context()) {
			print_color_u64(IP_PRINT_JSON, IP_COLOR_NONE, "on_ns",
					NULL, on);
			print_color_u64(IP_PRINT_JSON, IP_COLOR_NONE, "off_ns",
					NULL, off);
		} else {
			format_time(on, buf, sizeof(buf));
			print_color_string(IP_PRINT_FP, IP_COLOR_NONE, NULL,
					   "%s ", buf);
			format_time(off, buf, sizeof(buf));
			print_color_string(IP_PRINT_FP, IP_COLOR_NONE, NULL,
					   "%s ", buf);
		}
	}
}

static void insane_print_opt(struct link_util *lu, FILE *f,
			     struct rtattr *tb[])
{
	struct rtattr *rx[INSANE_POLICY_A_MAX + 1] = { NULL };
	struct rtattr *rta;
	int len;

	if (!tb)
		return;
	print_policy(tb);
	if (!tb[INSANE_POLICY_A_RX])
		return;
	/* The receive policy: "rx mode ...", or an "rx" object in JSON. */
	len = (int)RTA_PAYLOAD(tb[INSANE_POLICY_A_RX]);
	for (rta = RTA_DATA(tb[INSANE_POLICY_A_RX]); RTA_OK(rta, len);
	     rta = RTA_NEXT(rta, len))
		if (rta->rta_type <= INSANE_POLICY_A_MAX)
			rx[rta->rta_type] = rta;
	print_color_string(IP_PRINT_FP, IP_COLOR_NONE, NULL, "%s", "rx ");
	open_json_object("rx");
	print_policy(rx);
	close_json_object();
}

/*
 * The counters, from the module's own list in uapi order: the attribute and
 * the name of ethtool -S and JSON ("drop_no_lower"). The text shows a short
 * name after "relayed:" or "dropped:" ("no-lower"), see short_name().
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

/* The name without "rx_", "drop_" or "relayed_", with '-' for '_'. */
static void short_name(const struct counter *c, char *buf, size_t len)
{
	const char *s = base_name(c) + (is_drop(c) ? strlen("drop_") : 0);
	size_t i;

	if (!strncmp(s, "relayed_", strlen("relayed_")))
		s += strlen("relayed_");
	for (i = 0; s[i] && i + 1 < len; i++)
		buf[i] = s[i] == '_' ? '-' : s[i];
	buf[i] = '\0';
}

static void insane_print_xstats(struct link_util *lu, FILE *f,
				struct rtattr *xstats)
{
	static const char *const relayed_fp[2] = {
		"    relayed:", "    rx relayed:"
	};
	static const char *const dropped_key[2] = { "dropped", "rx_dropped" };
	static const char *const dropped_fp[2] = {
		"    dropped: total %llu", "    rx dropped: total %llu"
	};
	__u64 v[INSANE_STATS_A_MAX + 1] = { 0 };
	__u64 dropped[2] = { 0, 0 };
	struct rtattr *rta;
	char fmt[48], label[32];
	int dir = -1, len;
	bool in_drops = false;
	size_t i;

	len = (int)RTA_PAYLOAD(xstats);
	for (rta = RTA_DATA(xstats); RTA_OK(rta, len); rta = RTA_NEXT(rta, len))
		if (rta->rta_type <= INSANE_STATS_A_MAX)
			get_u64(rta, &v[rta->rta_type]);
	for (i = 0; i < ARRAY_SIZE(counters); i++)
		if (is_drop(&counters[i]))
			dropped[is_rx(&counters[i])] += v[counters[i].attr];

	/*
	 * Like the insane CLI's -s lines, the transmit direction's then the
	 * receive direction's; counters since the last reset.
	 */
	for (i = 0; i < ARRAY_SIZE(counters); i++) {
		const struct counter *c = &counters[i];

		if (is_rx(c) != dir) {
			dir = is_rx(c);
			in_drops = false;
			print_nl();
			print_color_string(IP_PRINT_FP, IP_COLOR_NONE, NULL,
					   "%s", relayed_fp[dir]);
		}
		if (is_drop(c) && !in_drops) {
			print_nl();
			print_color_u64(IP_PRINT_ANY, IP_COLOR_NONE,
					dropped_key[dir], dropped_fp[dir],
					dropped[dir]);
			in_drops = true;
		}
		short_name(c, label, sizeof(label));
		snprintf(fmt, sizeof(fmt), " %s %%llu", label);
		print_color_u64(IP_PRINT_ANY, IP_COLOR_NONE, c->name, fmt,
				v[c->attr]);
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
