/*
 * workload.c: the workloads by name, the options each one takes and
 * their defaults.  An option means one thing for every workload that
 * takes it; a workload that has no use for an option refuses it rather
 * than read it another way (connect counts --connections, not
 * --clients; join and broadcast time --repeat steps, each within
 * --step-timeout, not a --duration and a --drain).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define OPT_FEED	(OPTF_BYTES | OPTF_DURATION | OPTF_WARMUP | OPTF_DRAIN)
#define OPT_NET		(OPTF_SETUP_TIMEOUT | OPTF_CONCURRENCY)

/* One workload: its name, the options it takes, and their defaults. */
struct wl_def {
	const char	*name;
	unsigned int	 takes;		/* OPTF_* */
	unsigned int	 clients, rate, duration, warmup, settle, repeat;
};

/* In enum workload's order; 0 where the workload takes no such option. */
static const struct wl_def wl_defs[] = {
	{ "none", 0, 0, 0, 0, 0, 0, 0 },
	{ "fanout", OPTF_CLIENTS | OPTF_SENDERS | OPTF_RATE | OPTF_ROOM |
	    OPTF_SETTLE | OPT_FEED | OPT_NET, 500, 1000, 10, 2, 0, 0 },
	{ "private", OPTF_CLIENTS | OPTF_RATE | OPTF_SETTLE | OPT_FEED |
	    OPT_NET, 100, 0, 10, 2, 0, 0 },
	{ "connect", OPTF_CONNECTIONS | OPTF_DURATION | OPTF_DRAIN |
	    OPTF_SETTLE | OPT_NET, 0, 0, 10, 0, 0, 0 },
	{ "hold", OPTF_CLIENTS | OPTF_DURATION | OPTF_SETTLE | OPT_NET,
	    1000, 0, 2, 0, 30, 0 },
	{ "machine", 0, 0, 0, 0, 0, 0, 0 },
	{ "join", OPTF_CLIENTS | OPTF_REPEAT | OPTF_STEP_TIMEOUT | OPT_NET,
	    1000, 0, 0, 0, 0, 50 },
	{ "broadcast", OPTF_CLIENTS | OPTF_REPEAT | OPTF_STEP_TIMEOUT |
	    OPT_NET, 1000, 0, 0, 0, 0, 5 }
};

#define WLB(wl)		(1u << (wl))

/* The options by bit, for messages; where some workloads' use went. */
static const struct {
	unsigned int	 bit;
	const char	*flag;
	unsigned int	 hint_wl;	/* WLB() of the workloads hinted */
	const char	*hint;
} opt_names[] = {
	{ OPTF_CLIENTS, "--clients", WLB(WL_CONNECT),
	    "; it counts --connections" },
	{ OPTF_CONNECTIONS, "--connections", 0, NULL },
	{ OPTF_SENDERS, "--senders", 0, NULL },
	{ OPTF_RATE, "--rate", 0, NULL },
	{ OPTF_BYTES, "--bytes", 0, NULL },
	{ OPTF_DURATION, "--duration", WLB(WL_JOIN) | WLB(WL_BROADCAST),
	    "; it times --repeat steps" },
	{ OPTF_WARMUP, "--warmup", 0, NULL },
	{ OPTF_DRAIN, "--drain", WLB(WL_JOIN) | WLB(WL_BROADCAST),
	    "; it gives each step --step-timeout" },
	{ OPTF_STEP_TIMEOUT, "--step-timeout", 0, NULL },
	{ OPTF_REPEAT, "--repeat", 0, NULL },
	{ OPTF_ROOM, "--room", 0, NULL },
	{ OPTF_SETTLE, "--settle", 0, NULL },
	{ OPTF_SETUP_TIMEOUT, "--setup-timeout", 0, NULL },
	{ OPTF_CONCURRENCY, "--concurrency", 0, NULL }
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

/* Refuses, with status 2, an option given that o->wl has no use for. */
static void
workload_refuse(const struct options *o)
{
	unsigned int	 extra = o->given & ~wl_defs[o->wl].takes, i;

	if (extra == 0)
		return;
	for (i = 0; i < sizeof(opt_names) / sizeof(opt_names[0]); i++)
		if (extra & opt_names[i].bit)
			errx(2, "%s takes no %s%s", workload_name(o->wl),
			    opt_names[i].flag, opt_names[i].hint_wl &
			    WLB(o->wl) ? opt_names[i].hint : "");
	errx(2, "%s: an option it takes none of", workload_name(o->wl));
}

/* Sets the defaults of the options not given; refuses those it lacks. */
void
workload_options(struct options *o)
{
	const struct wl_def	*d = &wl_defs[o->wl];

	workload_refuse(o);
	if (!(o->given & OPTF_CLIENTS))
		o->nclients = d->clients;
	if (!(o->given & OPTF_DURATION))
		o->duration = d->duration;
	if (!(o->given & OPTF_WARMUP))
		o->warmup = d->warmup;
	if (!(o->given & OPTF_SETTLE))
		o->settle = d->settle;
	if (!(o->given & OPTF_REPEAT))
		o->repeat = d->repeat;
	if (!(o->given & OPTF_RATE))
		o->rate = d->rate;
	if (!(d->takes & OPTF_CONNECTIONS))
		o->connections = 0;
	if (!(d->takes & OPTF_DRAIN))
		o->drain = 0;
	if (!(d->takes & OPTF_STEP_TIMEOUT))
		o->step_timeout = 0;
}
