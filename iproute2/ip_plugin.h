/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The part of ip(8)'s link type plugin interface that link_insane.c uses,
 * as iproute2 6.1 defines it: struct link_util, looked up by ip as the
 * symbol <kind>_link_util, and helpers that the ip binary exports (it is
 * linked with -export-dynamic). The enum values are ip's own.
 */
#ifndef INSANE_IP_PLUGIN_H
#define INSANE_IP_PLUGIN_H

#include <stdbool.h>
#include <stdio.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/types.h>

#define __printf(a, b) __attribute__((format(printf, a, b)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct link_util {
	struct link_util *next;
	const char *id;
	int maxattr;
	int (*parse_opt)(struct link_util *lu, int argc, char **argv,
			 struct nlmsghdr *n);
	void (*print_opt)(struct link_util *lu, FILE *f, struct rtattr *tb[]);
	void (*print_xstats)(struct link_util *lu, FILE *f,
			     struct rtattr *xstats);
	void (*print_help)(struct link_util *lu, int argc, char **argv,
			   FILE *f);
	int (*parse_ifla_xstats)(struct link_util *lu, int argc, char **argv);
	int (*print_ifla_xstats)(struct nlmsghdr *n, void *arg);
};

/* enum output_type and enum color_attr's COLOR_NONE */
enum ip_output { IP_PRINT_FP = 1, IP_PRINT_JSON = 2, IP_PRINT_ANY = 4 };
enum { IP_COLOR_NONE = 6 };

struct json_writer;

int addattr32(struct nlmsghdr *n, int maxlen, int type, __u32 data);
int addattr64(struct nlmsghdr *n, int maxlen, int type, __u64 data);
int addattr_l(struct nlmsghdr *n, int maxlen, int type, const void *data,
	      int alen);
struct rtattr *addattr_nest(struct nlmsghdr *n, int maxlen, int type);
int addattr_nest_end(struct nlmsghdr *n, struct rtattr *nest);
void open_json_object(const char *str);
void close_json_object(void);
void open_json_array(int type, const char *str);
void close_json_array(int type, const char *delim);
bool is_json_context(void);
struct json_writer *get_json_writer(void);
void jsonw_name(struct json_writer *jw, const char *name);
__printf(2, 3) void jsonw_printf(struct json_writer *jw, const char *fmt, ...);
void print_nl(void);
int print_color_string(int type, int color, const char *key, const char *fmt,
		       const char *value);
int print_color_u64(int type, int color, const char *key, const char *fmt,
		    __u64 value);
int print_color_bool(int type, int color, const char *key, const char *fmt,
		     bool value);

#endif /* INSANE_IP_PLUGIN_H */
