// SPDX-License-Identifier: GPL-2.0
/*
 * check_cases: the plugin's parser and printer on the host, without ip or
 * the kernel (make check-cases).
 *
 *   check_cases CASES.TXT JSON_OUT NEWLINK_OUT WANT_OUT
 *
 * It builds link_insane.c into itself, with ip's helpers written out below
 * as iproute2 6.1 defines them (libnetlink's addattr_*, json_print's
 * print_color_* and a JSON writer), and runs every case of CASES.TXT (go/
 * genl/policytest/cases.txt, the grammar the Go parser shares) through it:
 *
 * - the words go to parse_opt in a request laid out as ip link set lays it
 *   out (IFLA_LINKINFO, IFLA_INFO_KIND, IFLA_INFO_DATA), within ip's 1024
 *   bytes. A refused case must fail with one stderr line "insane: ..." that
 *   holds the case's text.
 * - a valid case's IFLA_INFO_DATA becomes a reply as the kernel would make
 *   it (no INSANE_POLICY_A_RX_OFF; a time or schedule policy gets
 *   INSANE_POLICY_A_STEP_INDEX and STEP_LEFT_NS, here its last step with a
 *   third of it left, or no time left for a once schedule), which
 *   print_opt prints as ip -d link show would: that must be the case's
 *   policy exactly, with "step N left X" after each direction's policy
 *   where the reply has them. The same reply printed as ip -j does goes to
 *   JSON_OUT, one object a line, for jq to check (the Makefile does), and
 *   the reply as an RTM_NEWLINK message to NEWLINK_OUT, for ip 6.1 itself
 *   to print with ip -d monitor file, which must print what WANT_OUT has
 *   (the Makefile compares them).
 * - the canonical words are parsed again and must give the same bytes.
 *
 * Then its own checks: the attributes of some policies byte for byte
 * against the uapi, JSON and step output literally, the time-left format,
 * and the refusal of a schedule longer than ip's request holds.
 */

#include "link_insane.c"

#include <unistd.h>

#pragma GCC diagnostic ignored "-Wformat-nonliteral"

/* ip's helpers, after iproute2 6.1 (lib/libnetlink.c, lib/json_print.c). */

static struct rtattr *tail(struct nlmsghdr *n)
{
	return (struct rtattr *)((char *)n + NLMSG_ALIGN(n->nlmsg_len));
}

int addattr_l(struct nlmsghdr *n, int maxlen, int type, const void *data,
	      int alen)
{
	unsigned int len = RTA_LENGTH((unsigned int)alen);
	struct rtattr *rta;

	if (NLMSG_ALIGN(n->nlmsg_len) + RTA_ALIGN(len) > (unsigned int)maxlen) {
		fprintf(stderr, "%s ERROR: message exceeded bound of %d\n",
			__func__, maxlen);
		return -1;
	}
	rta = tail(n);
	rta->rta_type = (unsigned short)type;
	rta->rta_len = (unsigned short)len;
	if (alen)
		memcpy(RTA_DATA(rta), data, (size_t)alen);
	n->nlmsg_len = NLMSG_ALIGN(n->nlmsg_len) + RTA_ALIGN(len);
	return 0;
}

int addattr32(struct nlmsghdr *n, int maxlen, int type, __u32 data)
{
	return addattr_l(n, maxlen, type, &data, sizeof(data));
}

int addattr64(struct nlmsghdr *n, int maxlen, int type, __u64 data)
{
	return addattr_l(n, maxlen, type, &data, sizeof(data));
}

struct rtattr *addattr_nest(struct nlmsghdr *n, int maxlen, int type)
{
	struct rtattr *nest = tail(n);

	addattr_l(n, maxlen, type, NULL, 0);
	return nest;
}

int addattr_nest_end(struct nlmsghdr *n, struct rtattr *nest)
{
	nest->rta_len = (unsigned short)((char *)tail(n) - (char *)nest);
	return (int)n->nlmsg_len;
}

/* Output: text to out_text, or JSON to out_json while json is set. */
static FILE *out_text, *out_json;
static bool json;

struct json_writer {
	int depth;
	bool first[64];		/* no member written yet at this depth */
	bool named;		/* a name was written, its value is next */
};

static struct json_writer jw;

static void jw_sep(void)
{
	if (jw.named) {
		jw.named = false;
		return;
	}
	if (jw.depth && !jw.first[jw.depth])
		fputc(',', out_json);
	jw.first[jw.depth] = false;
}

static void jw_open(char c)
{
	jw_sep();
	fputc(c, out_json);
	jw.first[++jw.depth] = true;
}

static void jw_close(char c)
{
	jw.depth--;
	fputc(c, out_json);
}

static void jw_string(const char *s)
{
	fputc('"', out_json);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', out_json);
		fputc(*s, out_json);
	}
	fputc('"', out_json);
}

bool is_json_context(void)
{
	return json;
}

struct json_writer *get_json_writer(void)
{
	return json ? &jw : NULL;
}

void jsonw_name(struct json_writer *w, const char *name)
{
	jw_sep();
	jw_string(name);
	fputc(':', out_json);
	w->named = true;
}

void jsonw_printf(struct json_writer *w, const char *fmt, ...)
{
	va_list ap;

	jw_sep();
	va_start(ap, fmt);
	vfprintf(out_json, fmt, ap);
	va_end(ap);
}

#define JSON_CONTEXT(type) (((type) & (IP_PRINT_JSON | IP_PRINT_ANY)) && json)
#define FP_CONTEXT(type) (!json && ((type) & (IP_PRINT_FP | IP_PRINT_ANY)))

void open_json_object(const char *str)
{
	if (!json)
		return;
	if (str)
		jsonw_name(&jw, str);
	jw_open('{');
}

void close_json_object(void)
{
	if (json)
		jw_close('}');
}

void open_json_array(int type, const char *str)
{
	if (JSON_CONTEXT(type)) {
		if (str)
			jsonw_name(&jw, str);
		jw_open('[');
	} else if (FP_CONTEXT(type)) {
		fprintf(out_text, "%s", str);
	}
}

void close_json_array(int type, const char *delim)
{
	if (JSON_CONTEXT(type))
		jw_close(']');
	else if (FP_CONTEXT(type))
		fprintf(out_text, "%s", delim);
}

void print_nl(void)
{
	if (!json)
		fputc('\n', out_text);
}

int print_color_string(int type, int color, const char *key, const char *fmt,
		       const char *value)
{
	if (JSON_CONTEXT(type)) {
		if (key && !value) {
			jsonw_name(&jw, key);
		} else if (!key && value) {
			jw_sep();
			jw_string(value);
		} else {
			jsonw_name(&jw, key);
			jw_sep();
			jw_string(value);
		}
	} else if (FP_CONTEXT(type)) {
		return fprintf(out_text, fmt, value);
	}
	return 0;
}

int print_color_u64(int type, int color, const char *key, const char *fmt,
		    __u64 value)
{
	if (JSON_CONTEXT(type)) {
		if (key)
			jsonw_name(&jw, key);
		jsonw_printf(&jw, "%llu", value);
	} else if (FP_CONTEXT(type)) {
		return fprintf(out_text, fmt, value);
	}
	return 0;
}

int print_color_bool(int type, int color, const char *key, const char *fmt,
		     bool value)
{
	if (JSON_CONTEXT(type)) {
		if (key)
			jsonw_name(&jw, key);
		jsonw_printf(&jw, "%s", value ? "true" : "false");
	} else if (FP_CONTEXT(type)) {
		return fprintf(out_text, fmt, value ? "true" : "false");
	}
	return 0;
}

/* The harness. */

static int checks, failures;	/* failures: of the checks, one at most each */

__printf(1, 2)
static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	failures++;
}

#define WORDS_MAX 256

struct words {
	int n;
	char *w[WORDS_MAX];
	char buf[4096];
};

/* Splits s at blanks, as Go's strings.Fields. */
static void split(const char *s, struct words *ws)
{
	char *p;

	snprintf(ws->buf, sizeof(ws->buf), "%s", s);
	ws->n = 0;
	for (p = strtok(ws->buf, " \t\r\n"); p && ws->n < WORDS_MAX;
	     p = strtok(NULL, " \t\r\n"))
		ws->w[ws->n++] = p;
}

/* A request of ip link set DEV type insane ... (struct iplink_req). */
struct req {
	struct nlmsghdr n;
	struct ifinfomsg i;
	char buf[1024];
};

struct parsed {
	int rc;
	char err[2048];
	struct req req;
	struct rtattr *data;	/* IFLA_INFO_DATA in req */
};

/* parse_opt on words, as ip calls it, with what it says on stderr. */
static void parse(struct words *ws, struct parsed *p)
{
	struct rtattr *linkinfo;
	FILE *tmp = tmpfile();
	int saved;
	size_t len;

	memset(p, 0, sizeof(*p));
	p->req.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	addattr_l(&p->req.n, sizeof(p->req), IFLA_IFNAME, "ins0", 5);
	linkinfo = addattr_nest(&p->req.n, sizeof(p->req), IFLA_LINKINFO);
	addattr_l(&p->req.n, sizeof(p->req), IFLA_INFO_KIND, "insane", 6);
	p->data = addattr_nest(&p->req.n, sizeof(p->req), IFLA_INFO_DATA);

	fflush(stderr);
	saved = dup(2);
	if (!tmp || saved < 0 || dup2(fileno(tmp), 2) < 0) {
		perror("check_cases: stderr");
		exit(2);
	}
	p->rc = insane_link_util.parse_opt(&insane_link_util, ws->n, ws->w,
					   &p->req.n);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	len = fread(p->err, 1, sizeof(p->err) - 1, tmp);
	p->err[len] = '\0';
	fclose(tmp);

	addattr_nest_end(&p->req.n, p->data);
	addattr_nest_end(&p->req.n, linkinfo);
}

static const void *data_of(const struct rtattr *rta)
{
	return RTA_DATA(rta);
}

static int data_len(const struct rtattr *rta)
{
	return (int)RTA_PAYLOAD(rta);
}

/* What ip's parse_rtattr_nested does: the types without NLA_F_NESTED. */
static void ip_parse_nested(struct rtattr *tb[], int max,
			    const struct rtattr *rta)
{
	struct rtattr *a;
	int len = data_len(rta);
	unsigned int type;

	memset(tb, 0, sizeof(*tb) * (size_t)(max + 1));
	for (a = RTA_DATA(rta); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		type = a->rta_type & ~NLA_F_NESTED;
		if ((int)type <= max && !tb[type])
			tb[type] = a;
	}
}

/* A message to build replies in. */
struct msg {
	struct nlmsghdr n;
	char buf[16384];
};

static void msg_init(struct msg *m)
{
	memset(&m->n, 0, sizeof(m->n));
	m->n.nlmsg_len = NLMSG_HDRLEN;
}

static void copy_attr(struct msg *m, const struct rtattr *a)
{
	addattr_l(&m->n, sizeof(*m), a->rta_type, data_of(a), data_len(a));
}

/*
 * Where a reply's policy is in its steps: its last step, with a third of
 * it left, or no time left (absent) if it is a once schedule.
 */
struct state {
	bool has;
	__u32 index;
	bool has_left;
	__u64 left;
};

static struct state state_of(struct rtattr *tb[])
{
	struct state st = { 0 };
	struct rtattr *stb[INSANE_POLICY_A_MAX + 1], *a;
	__u64 last = 0;
	__u32 mode, n = 0;
	int len;

	if (!get_u32(tb[INSANE_POLICY_A_MODE], &mode))
		return st;
	if (mode == INSANE_MODE_TIME) {
		get_u64(tb[INSANE_POLICY_A_OFF_NS], &last);
		n = 2;
	} else if (mode == INSANE_MODE_SCHEDULE && tb[INSANE_POLICY_A_STEPS]) {
		len = data_len(tb[INSANE_POLICY_A_STEPS]);
		for (a = RTA_DATA(tb[INSANE_POLICY_A_STEPS]); RTA_OK(a, len);
		     a = RTA_NEXT(a, len), n++) {
			ip_parse_nested(stb, INSANE_POLICY_A_MAX, a);
			get_u64(stb[INSANE_POLICY_A_DURATION_NS], &last);
		}
	}
	if (!n)
		return st;
	st.has = true;
	st.index = n - 1;
	st.has_left = !tb[INSANE_POLICY_A_ONCE];
	st.left = last / 3;
	return st;
}

static void put_state(struct msg *m, const struct state *st)
{
	if (!st->has)
		return;
	addattr32(&m->n, sizeof(*m), INSANE_POLICY_A_STEP_INDEX, st->index);
	if (st->has_left)
		addattr64(&m->n, sizeof(*m), INSANE_POLICY_A_STEP_LEFT_NS,
			  st->left);
}

/*
 * The IFLA_INFO_DATA of the kernel's reply to a request's: the same
 * policies, no RX_OFF, and the step state of each.
 */
static struct rtattr *reply_of(struct msg *m, const struct rtattr *data,
			       struct state *tx, struct state *rx)
{
	struct rtattr *tb[INSANE_POLICY_A_MAX + 1], *rtb[INSANE_POLICY_A_MAX + 1];
	struct rtattr *out, *nest, *a, *b;
	int len = data_len(data), rlen;

	ip_parse_nested(tb, INSANE_POLICY_A_MAX, data);
	*tx = state_of(tb);
	memset(rx, 0, sizeof(*rx));
	msg_init(m);
	out = addattr_nest(&m->n, sizeof(*m), IFLA_INFO_DATA);
	for (a = RTA_DATA(data); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		switch (a->rta_type & NLA_TYPE_MASK) {
		case INSANE_POLICY_A_RX_OFF:
			break;
		case INSANE_POLICY_A_RX:
			ip_parse_nested(rtb, INSANE_POLICY_A_MAX, a);
			*rx = state_of(rtb);
			nest = addattr_nest(&m->n, sizeof(*m), a->rta_type);
			rlen = data_len(a);
			for (b = RTA_DATA(a); RTA_OK(b, rlen);
			     b = RTA_NEXT(b, rlen))
				copy_attr(m, b);
			put_state(m, rx);
			addattr_nest_end(&m->n, nest);
			break;
		default:
			copy_attr(m, a);
		}
	}
	put_state(m, tx);
	addattr_nest_end(&m->n, out);
	return out;
}

/* What the plugin prints from now on goes to f, as text or as JSON. */
static void capture_begin(FILE *f, bool as_json)
{
	json = as_json;
	if (json) {
		out_json = f;
		memset(&jw, 0, sizeof(jw));
		open_json_object(NULL);
	} else {
		out_text = f;
	}
}

/* Ends what capture_begin() started, and closes f: its buffer is ready. */
static void capture_end(FILE *f)
{
	if (json)
		close_json_object();
	json = false;
	fclose(f);
}

/* print_opt on data, as ip -d link show (text) or ip -d -j (JSON). */
static void print(const struct rtattr *data, bool as_json, char *buf,
		  size_t size)
{
	struct rtattr *tb[INSANE_POLICY_A_MAX + 1];
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);

	ip_parse_nested(tb, insane_link_util.maxattr, data);
	capture_begin(f, as_json);
	insane_link_util.print_opt(&insane_link_util, stdout, tb);
	capture_end(f);
	snprintf(buf, size, "%s", s);
	free(s);
}

/* The time left as check_cases expects it printed. */
static void want_left(__u64 ns, char *buf, size_t size)
{
	static const __u64 unit[] = { 1000000000, 1000000, 1000 };
	static const char *const name[] = { "s", "ms", "us" };
	size_t i;
	int n;

	for (i = 0; i < 3 && ns < unit[i]; i++)
		;
	if (!ns) {
		snprintf(buf, size, "0s");
		return;
	}
	if (i == 3) {
		snprintf(buf, size, "%lluns", ns);
		return;
	}
	n = snprintf(buf, size, "%llu.%03llu", ns / unit[i],
		     ns % unit[i] * 1000 / unit[i]);
	while (n > 0 && buf[n - 1] == '0')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '.')
		buf[--n] = '\0';
	snprintf(buf + n, size - (size_t)n, "%s", name[i]);
}

static void append_state(char *buf, size_t size, const struct state *st)
{
	size_t n = strlen(buf);
	char left[32];

	if (!st->has)
		return;
	n += (size_t)snprintf(buf + n, size - n, " step %u", st->index + 1);
	if (st->has_left) {
		want_left(st->left, left, sizeof(left));
		snprintf(buf + n, size - n, " left %s", left);
	}
}

static void trim(char *s)
{
	size_t n = strlen(s);

	while (n && s[n - 1] == ' ')
		s[--n] = '\0';
}

static bool same_attrs(const struct rtattr *a, const struct rtattr *b)
{
	return a->rta_len == b->rta_len && !memcmp(a, b, a->rta_len);
}

/*
 * The files for ip itself: the replies as RTM_NEWLINK messages, which ip
 * -d monitor file prints, and what it must print after "insane ".
 */
static FILE *newlink_out, *want_out;

static void write_newlink(int index, const struct rtattr *data)
{
	static struct msg m;
	struct ifinfomsg ifi = { .ifi_index = index };
	struct rtattr *li;

	msg_init(&m);
	m.n.nlmsg_type = RTM_NEWLINK;
	m.n.nlmsg_len = NLMSG_LENGTH(sizeof(ifi));
	memcpy(NLMSG_DATA(&m.n), &ifi, sizeof(ifi));
	addattr_l(&m.n, sizeof(m), IFLA_IFNAME, "ins0", 5);
	li = addattr_nest(&m.n, sizeof(m), IFLA_LINKINFO);
	addattr_l(&m.n, sizeof(m), IFLA_INFO_KIND, "insane", 6);
	copy_attr(&m, data);
	addattr_nest_end(&m.n, li);
	fwrite(&m.n, 1, m.n.nlmsg_len, newlink_out);
}

/* A case whose words are valid, with its policy as both print it. */
static void check_valid(int line, const char *words, const char *policy,
			FILE *jsonl)
{
	static struct parsed p, again;
	static struct msg reply;
	static struct words ws, canon;
	char want[8192], got[8192], txt[4096], jbuf[8192], *tx, *rx = NULL;
	struct state tx_state, rx_state;
	struct rtattr *data, *tb[INSANE_POLICY_A_MAX + 1];
	bool rx_off;

	checks++;
	split(words, &ws);
	parse(&ws, &p);
	if (p.rc || p.err[0]) {
		fail("cases.txt:%d: %s: refused (%d): %s", line, words, p.rc,
		     p.err);
		return;
	}
	ip_parse_nested(tb, INSANE_POLICY_A_MAX, p.data);
	rx_off = tb[INSANE_POLICY_A_RX_OFF];
	data = reply_of(&reply, p.data, &tx_state, &rx_state);

	/* Case.Split: "rx ..." alone, or "TX rx RX". */
	snprintf(txt, sizeof(txt), "%s", policy);
	tx = txt;
	rx = strstr(txt, " rx ");
	if (!strncmp(txt, "rx ", 3)) {
		tx = "";
		rx = txt + 3;
	} else if (rx) {
		*rx = '\0';
		rx += 4;
	}
	want[0] = '\0';
	if (*tx) {
		snprintf(want, sizeof(want), "%s", tx);
		append_state(want, sizeof(want), &tx_state);
	}
	if (rx && strcmp(rx, "off")) {
		snprintf(want + strlen(want), sizeof(want) - strlen(want),
			 "%srx %s", *tx ? " " : "", rx);
		append_state(want, sizeof(want), &rx_state);
	}
	/* ip prints no "rx off": the kernel's reply just has no RX. */
	fprintf(want_out, "%s\n", want);
	write_newlink(line, data);

	print(data, false, got, sizeof(got));
	trim(got);
	if (rx_off)
		snprintf(got + strlen(got), sizeof(got) - strlen(got),
			 "%srx off", got[0] ? " " : "");
	if (rx && !strcmp(rx, "off"))
		snprintf(want + strlen(want), sizeof(want) - strlen(want),
			 "%srx off", *tx ? " " : "");
	if (strcmp(got, want)) {
		fail("cases.txt:%d: %s: printed\n\t%s\nwant\n\t%s", line, words,
		     got, want);
		return;
	}

	print(data, true, jbuf, sizeof(jbuf));
	fprintf(jsonl, "{\"line\":%d,\"info_data\":%s}\n", line, jbuf);

	/* What ip prints reads back as the same request. */
	split(policy, &canon);
	parse(&canon, &again);
	if (again.rc || !same_attrs(p.data, again.data))
		fail("cases.txt:%d: %s: %s, as printed, reads back otherwise (%s)",
		     line, words, policy, again.err);
}

/* A case whose words must be refused with a message holding msg. */
static void check_refused(int line, const char *words, const char *msg)
{
	static struct parsed p;
	static struct words ws;
	size_t n;

	checks++;
	split(words, &ws);
	parse(&ws, &p);
	n = strlen(p.err);
	if (p.rc != -1 || strncmp(p.err, "insane: ", 8) || !n ||
	    p.err[n - 1] != '\n' || strchr(p.err, '\n') != p.err + n - 1 ||
	    !strstr(p.err, msg))
		fail("cases.txt:%d: %s: returned %d, said %s\twant one line \"insane: ...%s...\"",
		     line, words, p.rc, p.err[0] ? p.err : "nothing\n", msg);
}

static char *strip(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	trim(s);
	return s;
}

static int run_cases(const char *path, FILE *jsonl, int *valid, int *refused)
{
	static char line[65536];
	FILE *f = fopen(path, "r");
	char *s, *arrow, *want;
	int n = 0;

	if (!f) {
		perror(path);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		n++;
		line[strcspn(line, "\r\n")] = '\0';
		s = strip(line);
		if (!*s || *s == '#')
			continue;
		arrow = strstr(s, "=>");
		if (!arrow) {
			fail("cases.txt:%d: no \"=>\"", n);
			continue;
		}
		*arrow = '\0';
		want = strip(arrow + 2);
		s = strip(s);
		if (!strncmp(want, "error:", 6)) {
			check_refused(n, s, strip(want + 6));
			(*refused)++;
		} else {
			struct words canon;
			char policy[4096] = "";
			int i;

			/* Go's strings.Fields joined by one blank. */
			split(want, &canon);
			for (i = 0; i < canon.n; i++)
				snprintf(policy + strlen(policy),
					 sizeof(policy) - strlen(policy),
					 "%s%s", i ? " " : "", canon.w[i]);
			check_valid(n, s, policy, jsonl);
			(*valid)++;
		}
	}
	fclose(f);
	return 0;
}

/* The check's own cases. */

static const char *const attr_names[] = {
	[INSANE_POLICY_A_MODE] = "MODE",
	[INSANE_POLICY_A_PERCENT] = "PERCENT",
	[INSANE_POLICY_A_SEED] = "SEED",
	[INSANE_POLICY_A_ON_NS] = "ON_NS",
	[INSANE_POLICY_A_OFF_NS] = "OFF_NS",
	[INSANE_POLICY_A_RX] = "RX",
	[INSANE_POLICY_A_RX_OFF] = "RX_OFF",
	[INSANE_POLICY_A_BURST] = "BURST",
	[INSANE_POLICY_A_GE_P] = "GE_P",
	[INSANE_POLICY_A_GE_R] = "GE_R",
	[INSANE_POLICY_A_GE_LOSS_BAD] = "GE_LOSS_BAD",
	[INSANE_POLICY_A_GE_LOSS_GOOD] = "GE_LOSS_GOOD",
	[INSANE_POLICY_A_STEPS] = "STEPS",
	[INSANE_POLICY_A_DURATION_NS] = "DURATION_NS",
	[INSANE_POLICY_A_ONCE] = "ONCE",
	[INSANE_POLICY_A_STEP_INDEX] = "STEP_INDEX",
	[INSANE_POLICY_A_STEP_LEFT_NS] = "STEP_LEFT_NS",
	[INSANE_POLICY_A_CARRIER] = "CARRIER",
	[INSANE_POLICY_A_EVENTS] = "EVENTS",
	[INSANE_POLICY_A_DELAY_NS] = "DELAY_NS",
	[INSANE_POLICY_A_JITTER_NS] = "JITTER_NS",
	[INSANE_POLICY_A_CORRELATION] = "CORRELATION",
	[INSANE_POLICY_A_DISTRIBUTION] = "DISTRIBUTION",
	[INSANE_POLICY_A_REORDER] = "REORDER",
	[INSANE_POLICY_A_LIMIT] = "LIMIT",
	[INSANE_POLICY_A_RATE] = "RATE",
	[INSANE_POLICY_A_OVERHEAD] = "OVERHEAD",
	[INSANE_POLICY_A_BUFFER_NS] = "BUFFER_NS",
	[INSANE_POLICY_A_DUPLICATE] = "DUPLICATE",
	[INSANE_POLICY_A_CORRUPT] = "CORRUPT",
	[INSANE_POLICY_A_CORRUPT_HEADER] = "CORRUPT_HEADER",
};

/*
 * The attributes in data as "NAME=VALUE ...", a nest as NAME{...} (and
 * NAME!{...} if it lacks NLA_F_NESTED), a flag as NAME; in STEPS, each
 * INSANE_STEPS_A_STEP as STEP{...}.
 */
static void dump(const struct rtattr *data, bool steps, char *buf,
		 size_t size)
{
	struct rtattr *a;
	int len = data_len(data);
	unsigned int type;
	size_t n;
	__u64 v64;
	__u32 v32;

	for (a = RTA_DATA(data); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		const char *name = NULL;
		bool nest = false;

		n = strlen(buf);
		if (n && buf[n - 1] != '{')
			snprintf(buf + n, size - n, " ");
		n = strlen(buf);
		type = a->rta_type & NLA_TYPE_MASK;
		if (steps && type == INSANE_STEPS_A_STEP) {
			name = "STEP";
			nest = true;
		} else if (!steps && type < ARRAY_SIZE(attr_names)) {
			name = attr_names[type];
			nest = type == INSANE_POLICY_A_RX ||
			       type == INSANE_POLICY_A_STEPS;
		}
		if (!name) {
			snprintf(buf + n, size - n, "?%u", type);
		} else if (nest) {
			snprintf(buf + n, size - n, "%s%s{", name,
				 a->rta_type & NLA_F_NESTED ? "" : "!");
			dump(a, type == INSANE_POLICY_A_STEPS && !steps, buf,
			     size);
			n = strlen(buf);
			snprintf(buf + n, size - n, "}");
		} else if (RTA_PAYLOAD(a) == 0) {
			snprintf(buf + n, size - n, "%s", name);
		} else if (RTA_PAYLOAD(a) == 4 && get_u32(a, &v32)) {
			snprintf(buf + n, size - n, "%s=%u", name, v32);
		} else if (RTA_PAYLOAD(a) == 8 && get_u64(a, &v64)) {
			snprintf(buf + n, size - n, "%s=%llu", name, v64);
		} else {
			snprintf(buf + n, size - n, "%s=?%u bytes", name,
				 (unsigned int)RTA_PAYLOAD(a));
		}
	}
}

static void check_encoding(const char *words, const char *want)
{
	static struct parsed p;
	static struct words ws;
	char got[8192] = "";

	checks++;
	split(words, &ws);
	parse(&ws, &p);
	if (p.rc) {
		fail("encoding of %s: refused: %s", words, p.err);
		return;
	}
	dump(p.data, false, got, sizeof(got));
	if (want && strcmp(got, want))
		fail("encoding of %s:\n\t%s\nwant\n\t%s", words, got, want);
}

/*
 * The words' request printed as a reply with a step state at the top
 * (index < 0: none), in text or JSON.
 */
static void check_print(const char *words, int index, long long left,
			bool as_json, const char *want)
{
	static struct parsed p;
	static struct words ws;
	static struct msg m;
	struct rtattr *data, *a;
	char got[8192];
	int len;

	checks++;
	split(words, &ws);
	parse(&ws, &p);
	if (p.rc) {
		fail("print of %s: refused: %s", words, p.err);
		return;
	}
	msg_init(&m);
	data = addattr_nest(&m.n, sizeof(m), IFLA_INFO_DATA);
	len = data_len(p.data);
	for (a = RTA_DATA(p.data); RTA_OK(a, len); a = RTA_NEXT(a, len))
		copy_attr(&m, a);
	if (index >= 0)
		addattr32(&m.n, sizeof(m), INSANE_POLICY_A_STEP_INDEX,
			  (__u32)index);
	if (left >= 0)
		addattr64(&m.n, sizeof(m), INSANE_POLICY_A_STEP_LEFT_NS,
			  (__u64)left);
	addattr_nest_end(&m.n, data);
	print(data, as_json, got, sizeof(got));
	if (!as_json)
		trim(got);
	if (strcmp(got, want))
		fail("%s of %s (step %d, left %lld):\n\t%s\nwant\n\t%s",
		     as_json ? "JSON" : "text", words, index, left, got, want);
}

static void check_left(__u64 ns, const char *want)
{
	char got[32];

	checks++;
	format_left(ns, got, sizeof(got));
	if (strcmp(got, want))
		fail("format_left(%llu) = %s, want %s", ns, got, want);
}

static void check_refusal(const char *words, const char *msg)
{
	check_refused(0, words, msg);
}

/*
 * The counters as ip -s -d link show prints them (IFLA_INFO_XSTATS), with
 * drop causes and marks set: the marks on their own lines, in no total.
 */
static void check_xstats(bool as_json, const char *want)
{
	static const struct {
		int attr;
		__u64 v;
	} set[] = {
		{ INSANE_STATS_A_RELAYED_PACKETS, 10 },
		{ INSANE_STATS_A_DROP_POLICY, 20 },
		{ INSANE_STATS_A_DROP_NO_MEMORY, 1 },
		{ INSANE_STATS_A_DUPLICATED, 3 },
		{ INSANE_STATS_A_CORRUPTED, 2 },
		{ INSANE_STATS_A_RX_DROP_NO_MEMORY, 7 },
		{ INSANE_STATS_A_RX_DUPLICATED, 5 },
		{ INSANE_STATS_A_RX_CORRUPTED, 4 },
	};
	static struct msg m;
	struct rtattr *xs;
	char *s = NULL;
	size_t len = 0, i;
	FILE *f;

	checks++;
	msg_init(&m);
	xs = addattr_nest(&m.n, sizeof(m), IFLA_INFO_XSTATS);
	for (i = 0; i < ARRAY_SIZE(set); i++)
		addattr64(&m.n, sizeof(m), set[i].attr, set[i].v);
	addattr_nest_end(&m.n, xs);
	f = open_memstream(&s, &len);
	capture_begin(f, as_json);
	insane_link_util.print_xstats(&insane_link_util, stdout, xs);
	capture_end(f);
	if (strcmp(s, want))
		fail("xstats %s:\n%s\nwant\n%s", as_json ? "JSON" : "text", s,
		     want);
	free(s);
}

/* "mode schedule" and n steps of "1s ACTION". */
static void schedule_of(int n, const char *action, char *buf, size_t size)
{
	int i;

	snprintf(buf, size, "mode schedule");
	for (i = 0; i < n; i++)
		snprintf(buf + strlen(buf), size - strlen(buf), " 1s %s",
			 action);
}

/* Every word of the rate, duplication and corruption, and a delay. */
static const char every_extra[] =
	"mode pass delay 20ms rate 100mbit overhead 38 buffer 50ms duplicate 1 corrupt 0.5 header";

static void own_checks(void)
{
	static const struct {
		const char *words, *want;
	} encodings[] = {
		{ "mode pass", "MODE=0" },
		{ "mode drop", "MODE=3" },
		{ "mode percent 12.5 seed 42", "MODE=1 PERCENT=12500000 SEED=42" },
		{ "mode time 50 100", "MODE=2 ON_NS=500000000 OFF_NS=1000000000" },
		{ "mode burst 95 5 seed 7",
		  "MODE=4 PERCENT=95000000 BURST=5000 SEED=7" },
		{ "mode burst 30 2.334", "MODE=4 PERCENT=30000000 BURST=2334" },
		{ "mode burst 95 1.0006", "MODE=4 PERCENT=95000000 BURST=1001" },
		{ "mode burst 95 1.0004", "MODE=4 PERCENT=95000000 BURST=1000" },
		{ "mode burst 99.5 4294967.295",
		  "MODE=4 PERCENT=99500000 BURST=4294967295" },
		{ "mode burst 99.5 4294967.2954",
		  "MODE=4 PERCENT=99500000 BURST=4294967295" },
		{ "mode gilbert 1 20",
		  "MODE=5 GE_P=1000000 GE_R=20000000 GE_LOSS_BAD=100000000 GE_LOSS_GOOD=0" },
		{ "mode gilbert 0 20 0% 0.5% seed 9",
		  "MODE=5 GE_P=0 GE_R=20000000 GE_LOSS_BAD=0 GE_LOSS_GOOD=500000 SEED=9" },
		{
			"mode schedule 30s pass 5s percent 50 10s drop once seed 3",
			"MODE=6 STEPS{STEP{MODE=0 DURATION_NS=30000000000} STEP{MODE=1 PERCENT=50000000 DURATION_NS=5000000000} STEP{MODE=3 DURATION_NS=10000000000}} ONCE SEED=3",
		},
		{
			"mode schedule 250us gilbert 1 20 5 1.5h burst 95 5",
			"MODE=6 STEPS{STEP{MODE=5 GE_P=1000000 GE_R=20000000 GE_LOSS_BAD=5000000 GE_LOSS_GOOD=0 DURATION_NS=250000} STEP{MODE=4 PERCENT=95000000 BURST=5000 DURATION_NS=5400000000000}}",
		},
		{
			"mode percent 80 rx mode schedule 1s drop 2s pass once",
			"MODE=1 PERCENT=80000000 RX{MODE=6 STEPS{STEP{MODE=3 DURATION_NS=1000000000} STEP{MODE=0 DURATION_NS=2000000000}} ONCE}",
		},
		{ "rx mode burst 90 3 seed 1",
		  "RX{MODE=4 PERCENT=90000000 BURST=3000 SEED=1}" },
		{ "mode pass rx off", "MODE=0 RX_OFF" },
		{ "mode schedule 2562047h47m16.854775807s pass",
		  "MODE=6 STEPS{STEP{MODE=0 DURATION_NS=9223372036854775807}}" },
		{ "events mode time 10ms 10ms carrier",
		  "MODE=2 ON_NS=10000000 OFF_NS=10000000 CARRIER EVENTS" },
		{
			"mode schedule 1s pass 10ms drop once seed 3 events",
			"MODE=6 STEPS{STEP{MODE=0 DURATION_NS=1000000000} STEP{MODE=3 DURATION_NS=10000000}} ONCE SEED=3 EVENTS",
		},
		{
			"mode time 1s 1s carrier rx events mode time 1s 2s",
			"MODE=2 ON_NS=1000000000 OFF_NS=1000000000 CARRIER RX{MODE=2 ON_NS=1000000000 OFF_NS=2000000000 EVENTS}",
		},
		{ "mode pass rate 10mbit overhead 38 buffer 50ms",
		  "MODE=0 RATE=10000000 OVERHEAD=38 BUFFER_NS=50000000" },
		{ "mode pass rate 10mbit overhead 0", "MODE=0 RATE=10000000" },
		{ "mode pass rate 0.1249999999995tbps", "MODE=0 RATE=999999999996" },
		{
			"mode percent 99 duplicate 1 corrupt 0.1 header seed 3 delay 1ms",
			"MODE=1 PERCENT=99000000 DELAY_NS=1000000 DUPLICATE=1000000 CORRUPT=100000 CORRUPT_HEADER SEED=3",
		},
		{ "rx mode pass rate 2mbit", "RX{MODE=0 RATE=2000000}" },
		{
			"mode schedule 1s pass rate 8 duplicate 100 2s drop corrupt 0.0000005 header",
			"MODE=6 STEPS{STEP{MODE=0 RATE=8 DUPLICATE=100000000 DURATION_NS=1000000000} STEP{MODE=3 CORRUPT=1 CORRUPT_HEADER DURATION_NS=2000000000}}",
		},
	};
	static const struct {
		__u64 ns;
		const char *want;
	} lefts[] = {
		{ 0, "0s" }, { 1, "1ns" }, { 999, "999ns" }, { 1000, "1us" },
		{ 1500, "1.5us" }, { 1234567, "1.234ms" },
		{ 999999999, "999.999ms" }, { 3250000000ULL, "3.25s" },
		{ 60000000000ULL, "60s" }, { 7200000000000000000ULL, "7200000000s" },
	};
	char words[4096];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(encodings); i++)
		check_encoding(encodings[i].words, encodings[i].want);
	for (i = 0; i < ARRAY_SIZE(lefts); i++)
		check_left(lefts[i].ns, lefts[i].want);

	check_print("mode time 50 100", 1, 3250000000LL, false,
		    "mode time 500ms 1s step 2 left 3.25s");
	check_print("mode time 50 100", 0, 1, true,
		    "{\"mode\":\"time\",\"on_ns\":500000000,\"off_ns\":1000000000,\"step\":0,\"step_left_ns\":1}");
	check_print("mode schedule 1s drop 2s pass once", 1, -1, false,
		    "mode schedule 1s drop 2s pass once step 2");
	check_print("mode schedule 1s burst 95 5 1s drop once seed 3", 1, -1, true,
		    "{\"mode\":\"schedule\",\"steps\":[{\"duration_ns\":1000000000,\"mode\":\"burst\",\"percent\":95,\"burst\":5},{\"duration_ns\":1000000000,\"mode\":\"drop\"}],\"once\":true,\"seed\":3,\"step\":1}");
	check_print("mode schedule 1s gilbert 1 20 100 2 2s percent 12.5", 0, 999, true,
		    "{\"mode\":\"schedule\",\"steps\":[{\"duration_ns\":1000000000,\"mode\":\"gilbert\",\"ge_p\":1,\"ge_r\":20,\"ge_loss_bad\":100,\"ge_loss_good\":2},{\"duration_ns\":2000000000,\"mode\":\"percent\",\"percent\":12.5}],\"step\":0,\"step_left_ns\":999}");
	check_print("mode burst 80% 2.5 seed 7", -1, -1, true,
		    "{\"mode\":\"burst\",\"percent\":80,\"burst\":2.5,\"seed\":7}");
	check_print("mode gilbert 1 20", -1, -1, true,
		    "{\"mode\":\"gilbert\",\"ge_p\":1,\"ge_r\":20,\"ge_loss_bad\":100,\"ge_loss_good\":0}");
	check_print("mode percent 80 rx mode drop", -1, -1, true,
		    "{\"mode\":\"percent\",\"percent\":80,\"rx\":{\"mode\":\"drop\"}}");
	check_print("mode gilbert 1 20 90 0", -1, -1, false, "mode gilbert 1 20 90");
	check_print("mode schedule 1s drop 2s pass seed 3 carrier events", 1, 5, false,
		    "mode schedule 1s drop 2s pass seed 3 carrier events step 2 left 5ns");
	check_print("mode schedule 1s drop 2s pass seed 3 carrier events", 1, 5, true,
		    "{\"mode\":\"schedule\",\"steps\":[{\"duration_ns\":1000000000,\"mode\":\"drop\"},{\"duration_ns\":2000000000,\"mode\":\"pass\"}],\"seed\":3,\"carrier\":true,\"events\":true,\"step\":1,\"step_left_ns\":5}");
	check_print("mode time 1s 1s rx mode time 1s 1s events", -1, -1, true,
		    "{\"mode\":\"time\",\"on_ns\":1000000000,\"off_ns\":1000000000,\"rx\":{\"mode\":\"time\",\"on_ns\":1000000000,\"off_ns\":1000000000,\"events\":true}}");
	check_print(every_extra, -1, -1, true,
		    "{\"mode\":\"pass\",\"delay_ns\":20000000,\"rate\":100000000,\"overhead\":38,\"buffer_ns\":50000000,\"duplicate\":1,\"corrupt\":0.5,\"corrupt_header\":true}");
	check_print("mode schedule 1s pass rate 1500kbit 1s drop duplicate 12.5", 1, 5, true,
		    "{\"mode\":\"schedule\",\"steps\":[{\"duration_ns\":1000000000,\"mode\":\"pass\",\"rate\":1500000},{\"duration_ns\":1000000000,\"mode\":\"drop\",\"duplicate\":12.5}],\"step\":1,\"step_left_ns\":5}");
	check_print("mode time 1s 1s rate 1tbit corrupt 100", 0, 7, false,
		    "mode time 1s 1s rate 1tbit corrupt 100 step 1 left 7ns");

	check_xstats(false,
		     "\n    relayed: packets 10 bytes 0\n    dropped: total 21 policy 20 no-lower 0 no-route 0 lower-refused 0 not-ip 0 loop 0 malformed 0 queue-full 0 flushed 0 no-memory 1\n    held: packets 0 bytes 0\n    marked: duplicated 3 corrupted 2\n    rx relayed: packets 0 bytes 0\n    rx dropped: total 7 policy 0 no-memory 7 malformed 0 queue-full 0 flushed 0\n    rx held: packets 0 bytes 0\n    rx marked: duplicated 5 corrupted 4\n    ");
	check_xstats(true,
		     "{\"relayed_packets\":10,\"relayed_bytes\":0,\"dropped\":21,\"drop_policy\":20,\"drop_no_lower\":0,\"drop_no_route\":0,\"drop_lower_refused\":0,\"drop_not_ip\":0,\"drop_loop\":0,\"drop_malformed\":0,\"drop_queue_full\":0,\"drop_flushed\":0,\"drop_no_memory\":1,\"held_packets\":0,\"held_bytes\":0,\"duplicated\":3,\"corrupted\":2,\"rx_relayed_packets\":0,\"rx_relayed_bytes\":0,\"rx_dropped\":7,\"rx_drop_policy\":0,\"rx_drop_no_memory\":7,\"rx_drop_malformed\":0,\"rx_drop_queue_full\":0,\"rx_drop_flushed\":0,\"rx_held_packets\":0,\"rx_held_bytes\":0,\"rx_duplicated\":5,\"rx_corrupted\":4}");

	/* Refusals cases.txt leaves open. */
	check_refusal("mode burst 0.000001 4294967",
		      "must be at least 99999999 at 0.000001 percent");
	check_refusal("mode burst 95 4294967.2955", "is above 4294967.295");
	check_refusal("mode percent 10000", "percentage \"10000\" is not between 0 and 100");
	check_refusal("mode schedule 1s burst 95",
		      "step 1: burst needs a percentage and a mean burst length");
	check_refusal("mode schedule 1.5 pass", "step 1: duration \"1.5\" needs a unit");
	check_refusal("mode schedule 2562047h47m16.854775808s pass", "is longer than 2562047h");
	check_refusal("mode schedule 1s pass 1s gilbert 1 20 101",
		      "step 2: percentage \"101\" is not between 0 and 100");
	check_refusal("mode schedule 1s pass once once", "unknown option \"once\"");
	check_refusal("mode drop once", "unknown option \"once\"");
	check_refusal("mode time 1s 1s rx carrier mode time 1s 1s",
		      "carrier goes with the transmit policy only");
	check_refusal("mode time 10ms 9999999ns events",
		      "events need windows of at least 10ms: OFF lasts 9999999ns");

	/*
	 * ip's request holds 1024 bytes: here 64 before the policy, then
	 * MODE and STEPS (12) and 24 a "1s pass" step: 39 fit, 40 do not;
	 * 56 a gilbert step: 16 fit (the help says so).
	 */
	schedule_of(16, "gilbert 1 20 90 1", words, sizeof(words));
	check_encoding(words, NULL);
	schedule_of(17, "gilbert 1 20 90 1", words, sizeof(words));
	check_refusal(words, "the policy takes 964 bytes, and ip's request has room for 960 more");
	schedule_of(39, "pass", words, sizeof(words));
	check_encoding(words, NULL);
	schedule_of(40, "drop", words, sizeof(words));
	check_refusal(words,
		      "the policy takes 972 bytes, and ip's request has room for 960 more: use fewer steps, or the insane CLI");
}

int main(int argc, char **argv)
{
	int valid = 0, refused = 0, own, case_failures;
	FILE *jsonl;

	if (argc != 5) {
		fprintf(stderr, "usage: %s CASES.TXT JSON_OUT NEWLINK_OUT WANT_OUT\n",
			argv[0]);
		return 2;
	}
	jsonl = fopen(argv[2], "w");
	newlink_out = fopen(argv[3], "w");
	want_out = fopen(argv[4], "w");
	if (!jsonl || !newlink_out || !want_out) {
		perror("check_cases: output");
		return 2;
	}
	if (run_cases(argv[1], jsonl, &valid, &refused))
		return 2;
	case_failures = failures;
	own = checks;
	own_checks();
	own = checks - own;
	fclose(jsonl);
	fclose(newlink_out);
	fclose(want_out);
	printf("check-cases: %d cases of %s (%d valid, %d refused): %d passed, %d failed;",
	       valid + refused, argv[1], valid, refused,
	       valid + refused - case_failures, case_failures);
	printf(" %d checks of its own: %d passed, %d failed\n",
	       own, own - (failures - case_failures), failures - case_failures);
	return failures ? 1 : 0;
}
