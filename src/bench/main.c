/*
 * talknet-bench: a load generator for talknetd and, over IRC, for
 * servers such as ngircd.  main.c parses the options and hands the
 * run to its workload: the classic ones (fanout, private, connect, hold:
 * loop.c), machine (machine.c), join and broadcast
 * (presence.c), or draws charts of earlier results (svg.c).
 * bench.h lists the pieces.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <sys/types.h>
#include <sys/resource.h>

#include <err.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "bench.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION		"0.1.0"
#endif

#define DEFAULT_HOST		"127.0.0.1"
#define DEFAULT_PORT_IRC	"6667"
#define MAX_CLIENTS		999999	/* names stay within 8 code points */
#define IRC_MAX_BYTES		400	/* text that fits a 512-byte IRC line */

static void	 usage(FILE *, int) __attribute__((__noreturn__));

/* Prints the usage text and exits. */
static void
usage(FILE *f, int status)
{
	fprintf(f,
"usage: %s [options] fanout|private|connect|hold|join|broadcast\n"
"       %s [--json] machine\n"
"       %s --svg FILE --compare RESULT.json ...\n"
"  -H, --host HOST          server address (default 127.0.0.1)\n"
"  -p, --port PORT          server port (8001; 6667 with --proto irc)\n"
"      --allow-remote       allow a host that is not loopback\n"
"  -c, --clients N          clients (fanout 500, private 100, hold 1000,\n"
"                           connect: connections in all, 2000; join,\n"
"                           broadcast: clients held, 1000)\n"
"  -s, --senders S          fanout senders (default 10)\n"
"  -r, --rate R             msgs/s offered in all (fanout 1000; private 0:\n"
"                           closed loop)\n"
"  -b, --bytes B            message text size (default 100)\n"
"  -d, --duration D         seconds measured (fanout, private 10; connect\n"
"                           at most 10; hold: idle time before sampling, 2)\n"
"      --warmup W           seconds sent before measuring (default 2)\n"
"      --drain T            seconds to wait for late copies (default 5;\n"
"                           join, broadcast: for one step, 30)\n"
"      --setup-timeout T    seconds for connecting and joining (default 60)\n"
"      --concurrency K      connects in flight at once (default 8)\n"
"      --repeat R           join: serial joins timed (50); broadcast:\n"
"                           texts timed (5)\n"
"      --proto talknet|irc  protocol (default talknet)\n"
"      --room               fanout in one room (always so over IRC)\n"
"      --server-pid PID     sample CPU and memory of PID and its children\n"
"      --settle S           seconds to wait at most for the system's memory\n"
"                           to hold still before the baseline (hold 30,\n"
"                           others 0: no wait)\n"
"      --json               print the result as JSON on stdout\n"
"      --label TEXT         name of this result in JSON and charts\n"
"      --svg FILE           write the latency CDF as an SVG chart\n"
"      --compare FILE       add a --json result to the chart (repeatable)\n"
"      --title TEXT         chart title\n"
"  -q, --quiet              no progress, no table with --json\n"
"  -h, --help               show this help\n"
"  -V, --version            show the version\n",
	    getprogname(), getprogname(), getprogname());
	exit(status);
}


/* Parses a number option with strtonum, or exits with usage status. */
static unsigned int
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

/* Raises the open-file limit to what one run needs, if it may. */
static void
raise_nofile(rlim_t need)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		err(1, "getrlimit");
	if (rl.rlim_cur >= need)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ?
	    need : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		err(1, "setrlimit");
	if (rl.rlim_cur < need)
		errx(1, "this run needs %llu open files, the limit is %llu "
		    "(raise it with ulimit -n)", (unsigned long long)need,
		    (unsigned long long)rl.rlim_cur);
}

enum {
	OPT_ALLOW_REMOTE = 256,
	OPT_WARMUP,
	OPT_DRAIN,
	OPT_SETUP_TIMEOUT,
	OPT_CONCURRENCY,
	OPT_REPEAT,
	OPT_PROTO,
	OPT_SETTLE,
	OPT_ROOM,
	OPT_SERVER_PID,
	OPT_JSON,
	OPT_LABEL,
	OPT_SVG,
	OPT_COMPARE,
	OPT_TITLE
};

static const struct option longopts[] = {
	{ "host",		required_argument, NULL, 'H' },
	{ "port",		required_argument, NULL, 'p' },
	{ "allow-remote",	no_argument,	   NULL, OPT_ALLOW_REMOTE },
	{ "clients",		required_argument, NULL, 'c' },
	{ "senders",		required_argument, NULL, 's' },
	{ "rate",		required_argument, NULL, 'r' },
	{ "bytes",		required_argument, NULL, 'b' },
	{ "duration",		required_argument, NULL, 'd' },
	{ "warmup",		required_argument, NULL, OPT_WARMUP },
	{ "drain",		required_argument, NULL, OPT_DRAIN },
	{ "setup-timeout",	required_argument, NULL, OPT_SETUP_TIMEOUT },
	{ "concurrency",	required_argument, NULL, OPT_CONCURRENCY },
	{ "repeat",		required_argument, NULL, OPT_REPEAT },
	{ "proto",		required_argument, NULL, OPT_PROTO },
	{ "room",		no_argument,	   NULL, OPT_ROOM },
	{ "server-pid",		required_argument, NULL, OPT_SERVER_PID },
	{ "settle",		required_argument, NULL, OPT_SETTLE },
	{ "json",		no_argument,	   NULL, OPT_JSON },
	{ "label",		required_argument, NULL, OPT_LABEL },
	{ "svg",		required_argument, NULL, OPT_SVG },
	{ "compare",		required_argument, NULL, OPT_COMPARE },
	{ "title",		required_argument, NULL, OPT_TITLE },
	{ "quiet",		no_argument,	   NULL, 'q' },
	{ "help",		no_argument,	   NULL, 'h' },
	{ "version",		no_argument,	   NULL, 'V' },
	{ NULL,			0,		   NULL, 0 }
};


/* Which of the options that have a per-workload default were given. */
struct opts_given {
	int	clients, rate, duration, drain;
};

/* Handles the options about the report: 1 if ch was one of them. */
static int
opts_report(int ch, struct options *o)
{
	switch (ch) {
	case OPT_JSON:
		o->json = 1;
		return 1;
	case OPT_LABEL:
		o->label = optarg;
		return 1;
	case OPT_SVG:
		o->svg = optarg;
		return 1;
	case OPT_COMPARE:
		if (o->ncompare == MAX_COMPARE)
			errx(2, "at most %d --compare files", MAX_COMPARE);
		o->compare[o->ncompare++] = optarg;
		return 1;
	case OPT_TITLE:
		o->title = optarg;
		return 1;
	case 'q':
		o->quiet = 1;
		return 1;
	case 'h':
		usage(stdout, 0);
	case 'V':
		printf("talknet-bench %s\n", PACKAGE_VERSION);
		exit(0);
	}
	return 0;
}

/* Handles the options about the load: 1 if ch was one of them. */
static int
opts_load(int ch, struct options *o, struct opts_given *g)
{
	switch (ch) {
	case 'c':
		o->nclients = opt_num("--clients", optarg, 1, MAX_CLIENTS);
		g->clients = 1;
		return 1;
	case 's':
		o->nsenders = opt_num("--senders", optarg, 1, MAX_CLIENTS);
		return 1;
	case 'r':
		o->rate = opt_num("--rate", optarg, 0, 10000000);
		g->rate = 1;
		return 1;
	case 'b':
		o->bytes = opt_num("--bytes", optarg, 32, 60000);
		return 1;
	case 'd':
		o->duration = opt_num("--duration", optarg, 0, 86400);
		g->duration = 1;
		return 1;
	case OPT_WARMUP:
		o->warmup = opt_num("--warmup", optarg, 0, 3600);
		return 1;
	case OPT_DRAIN:
		o->drain = opt_num("--drain", optarg, 0, 3600);
		g->drain = 1;
		return 1;
	case OPT_SETUP_TIMEOUT:
		o->setup_timeout = opt_num("--setup-timeout", optarg, 1, 86400);
		return 1;
	case OPT_CONCURRENCY:
		o->concurrency = opt_num("--concurrency", optarg, 1,
		    MAX_CLIENTS);
		return 1;
	case OPT_REPEAT:
		o->repeat = opt_num("--repeat", optarg, 1, 100000);
		return 1;
	case OPT_ROOM:
		o->room = 1;
		return 1;
	case OPT_SETTLE:
		o->settle = opt_num("--settle", optarg, 0, 3600);
		o->set_settle = 1;
		return 1;
	}
	return 0;
}

/* Parses the options into o; returns the index of the first operand. */
static int
opts_parse(int argc, char *argv[], struct options *o, struct opts_given *g)
{
	int	ch;

	memset(o, 0, sizeof(*o));
	memset(g, 0, sizeof(*g));
	o->host = DEFAULT_HOST;
	o->nsenders = 10;
	o->bytes = 100;
	o->warmup = 2;
	o->drain = 5;
	o->setup_timeout = 60;
	o->concurrency = 8;
	while ((ch = getopt_long(argc, argv, "H:p:c:s:r:b:d:qhV", longopts,
	    NULL)) != -1) {
		if (opts_load(ch, o, g) || opts_report(ch, o))
			continue;
		switch (ch) {
		case 'H':
			o->host = optarg;
			break;
		case 'p':
			(void)opt_num("--port", optarg, 1, 65535);
			o->port = optarg;
			break;
		case OPT_ALLOW_REMOTE:
			o->allow_remote = 1;
			break;
		case OPT_PROTO:
			if (strcmp(optarg, "talknet") == 0)
				o->proto = PK_TALKNET;
			else if (strcmp(optarg, "irc") == 0)
				o->proto = PK_IRC;
			else {
				warnx("--proto %s: talknet or irc", optarg);
				usage(stderr, 2);
			}
			break;
		case OPT_SERVER_PID:
			o->server_pid = (pid_t)opt_num("--server-pid", optarg,
			    1, INT_MAX);
			break;
		default:
			usage(stderr, 2);
		}
	}
	return optind;
}

/* Sets the workload named name and the defaults that depend on it. */
static void
opts_workload(struct options *o, const char *name,
    const struct opts_given *g)
{
	o->wl = workload_lookup(name);
	if (o->wl == WL_NONE) {
		warnx("%s: not a workload (fanout, private, connect, hold, "
		    "machine, join, broadcast)", name);
		usage(stderr, 2);
	}
	if (o->ncompare > 0 && o->svg == NULL)
		errx(2, "--compare needs --svg");
	if (o->port == NULL)
		o->port = o->proto == PK_IRC ? DEFAULT_PORT_IRC :
		    PROTO_DEFAULT_PORT;
	switch (o->wl) {
	case WL_FANOUT:
		if (!g->clients)
			o->nclients = 500;
		if (!g->rate)
			o->rate = 1000;
		if (!g->duration)
			o->duration = 10;
		if (o->rate == 0)
			errx(2, "fanout needs a --rate above 0");
		if (o->nclients < 2 || o->nsenders > o->nclients)
			errx(2, "fanout needs 2 clients or more, and no more "
			    "senders than clients");
		break;
	case WL_PRIVATE:
		if (!g->clients)
			o->nclients = 100;
		if (!g->duration)
			o->duration = 10;
		if (o->nclients < 2)
			errx(2, "private needs 2 clients or more");
		o->nclients -= o->nclients % 2;
		break;
	case WL_CONNECT:
		if (!g->clients)
			o->nclients = 2000;
		if (!g->duration)
			o->duration = 10;
		o->warmup = 0;
		break;
	case WL_HOLD:
		if (!g->clients)
			o->nclients = 1000;
		if (!g->duration)
			o->duration = 2;
		if (!o->set_settle)
			o->settle = 30;
		o->warmup = 0;
		break;
	case WL_JOIN:
	case WL_BROADCAST:
		if (!g->clients)
			o->nclients = 1000;
		if (o->repeat == 0)
			o->repeat = o->wl == WL_JOIN ? 50 : 5;
		if (!g->drain)
			o->drain = 30;	/* here: one join or broadcast, at most */
		if (o->drain == 0)
			errx(2, "%s needs a --drain above 0", name);
		if (o->wl == WL_BROADCAST && o->nclients < 2)
			errx(2, "broadcast needs 2 clients or more");
		break;
	case WL_MACHINE:
	case WL_NONE:
		break;
	}
	if (o->proto == PK_IRC && o->bytes > IRC_MAX_BYTES)
		errx(2, "--bytes %u: an IRC line holds at most %d", o->bytes,
		    IRC_MAX_BYTES);
}

/* Parses the options, runs one workload (or draws charts), reports. */
int
main(int argc, char *argv[])
{
	struct options		o;
	struct opts_given	g;
	int			first;

	first = opts_parse(argc, argv, &o, &g);
	argc -= first;
	argv += first;
	if (argc == 0 && o.ncompare > 0 && o.svg != NULL)
		return bench_chart(NULL, &o) == 0 ? 0 : 1;
	if (argc != 1)
		usage(stderr, 2);
	opts_workload(&o, argv[0], &g);
	raise_nofile((o.wl == WL_CONNECT ? o.concurrency : o.nclients) + 64);
	bench_signals_setup();
	if (o.wl == WL_MACHINE)
		return bench_machine(&o);
	if (o.wl == WL_JOIN || o.wl == WL_BROADCAST)
		return bench_presence(&o);
	return bench_classic(&o);
}
