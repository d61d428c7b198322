/*
 * workload.c: the workloads by name, the load options, which of them
 * each workload takes and their defaults.  An option means one thing
 * for every workload that takes it; a workload that has no use for an
 * option refuses it rather than read it another way (connect counts
 * --connections, not --clients; join and broadcast time --repeat steps,
 * each within --step-timeout, not a --duration and a --drain).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <err.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define MAX_CLIENTS	999999	/* names stay within 8 code points */
#define LOB(lo)		(1u << (lo))
#define WLB(wl)		(1u << (wl))
#define FIELD(name)	offsetof(struct options, name)
#define LO_FEED		(LOB(LO_BYTES) | LOB(LO_DURATION) | LOB(LO_WARMUP) | \
			    LOB(LO_DRAIN))
#define LO_NET		(LOB(LO_SETUP_TIMEOUT) | LOB(LO_CONCURRENCY))

/*
 * One load option: its flag, range and default, its field in struct
 * options (none for --room, which takes no value), and a hint for the
 * workloads that once read it another way.
 */
static const struct load_opt {
	const char	*flag;
	long long	 lo, hi;
	unsigned int	 dflt;
	size_t		 field;
	unsigned int	 hint_wl;	/* WLB() of the workloads hinted */
	const char	*hint;
} load_opts[LO_COUNT] = {
	{ "--clients", 1, MAX_CLIENTS, 0, FIELD(nclients), WLB(WL_CONNECT),
	    "; it counts --connections" },
	{ "--connections", 1, MAX_CLIENTS, 2000, FIELD(connections), 0, "" },
	{ "--senders", 1, MAX_CLIENTS, 10, FIELD(nsenders), 0, "" },
	{ "--rate", 0, 10000000, 0, FIELD(rate), 0, "" },
	{ "--bytes", 32, 60000, 100, FIELD(bytes), 0, "" },
	{ "--duration", 0, 86400, 10, FIELD(duration),
	    WLB(WL_JOIN) | WLB(WL_BROADCAST), "; it times --repeat steps" },
	{ "--warmup", 0, 3600, 2, FIELD(warmup), 0, "" },
	{ "--drain", 0, 3600, 5, FIELD(drain), WLB(WL_JOIN) |
	    WLB(WL_BROADCAST), "; it gives each step --step-timeout" },
	{ "--step-timeout", 1, 3600, 30, FIELD(step_timeout), 0, "" },
	{ "--repeat", 1, 100000, 0, FIELD(repeat), 0, "" },
	{ "--room", 0, 0, 0, 0, 0, "" },
	{ "--settle", 0, 3600, 0, FIELD(settle), 0, "" },
	{ "--setup-timeout", 1, 86400, 60, FIELD(setup_timeout), 0, "" },
	{ "--concurrency", 1, MAX_CLIENTS, 8, FIELD(concurrency), 0, "" }
};

/* One workload: its name, the options it takes, its own defaults. */
struct wl_def {
	const char	*name;
	unsigned int	 takes;		/* LOB() of its load options */
	unsigned int	 dflt[LO_COUNT];	/* 0: the option's default */
};

/* In enum workload's order. */
static const struct wl_def wl_defs[] = {
	{ "none", 0, { 0 } },
	{ "fanout", LOB(LO_CLIENTS) | LOB(LO_SENDERS) | LOB(LO_RATE) |
	    LOB(LO_ROOM) | LOB(LO_SETTLE) | LO_FEED | LO_NET,
	    { [LO_CLIENTS] = 500, [LO_RATE] = 1000 } },
	{ "private", LOB(LO_CLIENTS) | LOB(LO_RATE) | LOB(LO_SETTLE) |
	    LO_FEED | LO_NET, { [LO_CLIENTS] = 100 } },
	{ "connect", LOB(LO_CONNECTIONS) | LOB(LO_DURATION) | LOB(LO_DRAIN) |
	    LOB(LO_SETTLE) | LO_NET, { 0 } },
	{ "hold", LOB(LO_CLIENTS) | LOB(LO_DURATION) | LOB(LO_SETTLE) | LO_NET,
	    { [LO_CLIENTS] = 1000, [LO_DURATION] = 2, [LO_SETTLE] = 30 } },
	{ "machine", 0, { 0 } },
	{ "join", LOB(LO_CLIENTS) | LOB(LO_REPEAT) | LOB(LO_STEP_TIMEOUT) |
	    LO_NET, { [LO_CLIENTS] = 1000, [LO_REPEAT] = 50 } },
	{ "broadcast", LOB(LO_CLIENTS) | LOB(LO_REPEAT) |
	    LOB(LO_STEP_TIMEOUT) | LO_NET,
	    { [LO_CLIENTS] = 1000, [LO_REPEAT] = 5 } },
	{ "settle", LOB(LO_SETTLE), { [LO_SETTLE] = 30 } }
};

/* The name of a workload, as the command line and the reports spell it. */
const char *
workload_name(enum workload wl)
{
	return wl_defs[wl].name;
}

/* The workload of a name; WL_NONE if there is none. */
enum workload
workload_lookup(const char *name)
{
	unsigned int	i;

	for (i = WL_FANOUT; i <= WL_LAST; i++)
		if (strcmp(name, wl_defs[i].name) == 0)
			return (enum workload)i;
	return WL_NONE;
}

/* Parses a number option with strtonum, or exits with usage status. */
unsigned int
opt_num(const char *name, const char *arg, long long lo, long long hi)
{
	const char	*errstr;
	long long	 v;

	v = strtonum(arg, lo, hi, &errstr);
	if (errstr != NULL) {
		warnx("%s %s: %s (%lld to %lld)", name, arg, errstr, lo, hi);
		exit(2);
	}
	return (unsigned int)v;
}

/* The field of a load option that takes a value. */
static unsigned int *
load_field(struct options *o, enum load_option lo)
{
	return (unsigned int *)(void *)((char *)o + load_opts[lo].field);
}

/* Sets one load option from the command line (arg NULL: --room). */
void
load_option(struct options *o, enum load_option lo, const char *arg)
{
	const struct load_opt	*l = &load_opts[lo];

	o->given |= LOB(lo);
	if (lo == LO_ROOM)
		o->room = 1;
	else
		*load_field(o, lo) = opt_num(l->flag, arg, l->lo, l->hi);
}

/* Sets the defaults of the options not given; refuses those it lacks. */
void
workload_options(struct options *o)
{
	const struct wl_def	*d = &wl_defs[o->wl];
	unsigned int		 lo;

	for (lo = 0; lo < LO_COUNT; lo++) {
		if ((o->given & LOB(lo)) && !(d->takes & LOB(lo)))
			errx(2, "%s takes no %s%s", d->name,
			    load_opts[lo].flag, load_opts[lo].hint_wl &
			    WLB(o->wl) ? load_opts[lo].hint : "");
		if (lo == LO_ROOM || (o->given & LOB(lo)))
			continue;
		/* One it does not take stays 0: nothing reads it. */
		*load_field(o, lo) = !(d->takes & LOB(lo)) ? 0 :
		    d->dflt[lo] != 0 ? d->dflt[lo] : load_opts[lo].dflt;
	}
}
