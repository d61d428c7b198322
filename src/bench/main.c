/*
 * talknet-bench: a load generator for talknetd and, over IRC, for
 * servers such as ngircd.  main.c parses the options and hands the
 * run to its workload: the classic ones (fanout, private, connect, hold:
 * loop.c), machine (machine.c), join and broadcast
 * (presence.c), settle (procstat.c), or draws charts of earlier results (svg.c).
 * bench.h lists the pieces.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <sys/types.h>
#include <sys/resource.h>

#include <err.h>
#include <getopt.h>
#include <netdb.h>
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
#define IRC_MAX_BYTES		400	/* text that fits a 512-byte IRC line */

static void	 usage(FILE *, int) __attribute__((__noreturn__));

/* Prints the usage text and exits. */
static void
usage(FILE *f, int status)
{
	fprintf(f,
"usage: %s [options] fanout|private|connect|hold|join|broadcast\n"
"       %s [--json] machine\n"
"       %s [--json] [--settle S] settle\n"
"       %s --svg FILE --compare RESULT.json ...\n"
"  -H, --host HOST          server address (default 127.0.0.1)\n"
"  -p, --port PORT          server port (8001; 6667 with --proto irc)\n"
"      --nodes H:P,...      spread the clients over these nodes of one\n"
"                           cluster, client i to node i mod N (instead of\n"
"                           --host and --port; every workload but machine)\n"
"      --allow-remote       allow a host that is not loopback\n"
"      --tls                speak TLS (every workload but machine)\n"
"      --ca FILE            --tls: verify the server against FILE's CAs\n"
"                           (default: the system's)\n"
"      --insecure           --tls: verify no certificate (test setups)\n"
"  -c, --clients N          clients connected at once (fanout 500,\n"
"                           private 100, hold, join, broadcast 1000)\n"
"      --connections N      connect: connections in all (2000)\n"
"  -s, --senders S          fanout senders (default 10)\n"
"  -r, --rate R             msgs/s offered in all (fanout 1000; private 0:\n"
"                           closed loop)\n"
"  -b, --bytes B            message text size (default 100)\n"
"  -d, --duration D         seconds of the measured phase (fanout, private,\n"
"                           connect 10; hold 2)\n"
"      --warmup W           seconds sent before measuring (default 2)\n"
"      --drain T            seconds to wait at the end for what is still in\n"
"                           flight (default 5)\n"
"      --step-timeout T     join, broadcast: seconds one step may take (30)\n"
"      --setup-timeout T    seconds for connecting and joining (default 60)\n"
"      --concurrency K      connects in flight at once (default 8)\n"
"      --repeat R           join, broadcast: steps timed (join 50,\n"
"                           broadcast 5)\n"
"      --proto talknet|irc  protocol (default talknet)\n"
"      --room               fanout in one room (always so over IRC)\n"
"      --server-pid PID     sample CPU and memory of PID and its children\n"
"      --settle S           seconds to wait at most for the system's memory\n"
"                           to hold still before the baseline (hold 30,\n"
"                           others 0: no wait); settle: for the memory to\n"
"                           hold still and the CPUs to idle (30)\n"
"      --json               print the result as JSON on stdout\n"
"      --label TEXT         name of this result in JSON and charts\n"
"      --svg FILE           write the latency CDF as an SVG chart\n"
"      --compare FILE       add a --json result to the chart (repeatable)\n"
"      --title TEXT         chart title\n"
"  -q, --quiet              no progress, no table with --json\n"
"  -h, --help               show this help\n"
"  -V, --version            show the version\n",
	    getprogname(), getprogname(), getprogname(), getprogname());
	exit(status);
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
	OPT_STEP_TIMEOUT,
	OPT_CONNECTIONS,
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
	OPT_TITLE,
	OPT_TLS,
	OPT_CA,
	OPT_INSECURE,
	OPT_NODES
};

static const struct option longopts[] = {
	{ "host",		required_argument, NULL, 'H' },
	{ "port",		required_argument, NULL, 'p' },
	{ "nodes",		required_argument, NULL, OPT_NODES },
	{ "allow-remote",	no_argument,	   NULL, OPT_ALLOW_REMOTE },
	{ "tls",		no_argument,	   NULL, OPT_TLS },
	{ "ca",			required_argument, NULL, OPT_CA },
	{ "insecure",		no_argument,	   NULL, OPT_INSECURE },
	{ "clients",		required_argument, NULL, 'c' },
	{ "connections",	required_argument, NULL, OPT_CONNECTIONS },
	{ "senders",		required_argument, NULL, 's' },
	{ "rate",		required_argument, NULL, 'r' },
	{ "bytes",		required_argument, NULL, 'b' },
	{ "duration",		required_argument, NULL, 'd' },
	{ "warmup",		required_argument, NULL, OPT_WARMUP },
	{ "drain",		required_argument, NULL, OPT_DRAIN },
	{ "step-timeout",	required_argument, NULL, OPT_STEP_TIMEOUT },
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

/* The getopt codes of the load options. */
static const struct {
	int			ch;
	enum load_option	lo;
} load_chars[] = {
	{ 'c', LO_CLIENTS }, { OPT_CONNECTIONS, LO_CONNECTIONS },
	{ 's', LO_SENDERS }, { 'r', LO_RATE }, { 'b', LO_BYTES },
	{ 'd', LO_DURATION }, { OPT_WARMUP, LO_WARMUP },
	{ OPT_DRAIN, LO_DRAIN }, { OPT_STEP_TIMEOUT, LO_STEP_TIMEOUT },
	{ OPT_REPEAT, LO_REPEAT }, { OPT_ROOM, LO_ROOM },
	{ OPT_SETTLE, LO_SETTLE }, { OPT_SETUP_TIMEOUT, LO_SETUP_TIMEOUT },
	{ OPT_CONCURRENCY, LO_CONCURRENCY }
};

/* Handles the options about the load: 1 if ch was one of them. */
static int
opts_load(int ch, struct options *o)
{
	size_t	i;

	for (i = 0; i < sizeof(load_chars) / sizeof(load_chars[0]); i++) {
		if (load_chars[i].ch == ch) {
			load_option(o, load_chars[i].lo, optarg);
			return 1;
		}
	}
	return 0;
}

/* Parses the options into o; returns the index of the first operand. */
static int
opts_parse(int argc, char *argv[], struct options *o)
{
	int	ch;

	memset(o, 0, sizeof(*o));
	o->host = DEFAULT_HOST;
	while ((ch = getopt_long(argc, argv, "H:p:c:s:r:b:d:qhV", longopts,
	    NULL)) != -1) {
		if (opts_load(ch, o) || opts_report(ch, o))
			continue;
		switch (ch) {
		case 'H':
			o->host = optarg;
			o->host_given = 1;
			break;
		case 'p':
			(void)opt_num("--port", optarg, 1, 65535);
			o->port = optarg;
			break;
		case OPT_NODES:
			o->nodes = optarg;
			break;
		case OPT_ALLOW_REMOTE:
			o->allow_remote = 1;
			break;
		case OPT_TLS:
			o->tls = 1;
			break;
		case OPT_CA:
			o->ca = optarg;
			break;
		case OPT_INSECURE:
			o->insecure = 1;
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

/*
 * Checks --nodes against the other address options; --tls then checks
 * every node's certificate against the first node's host.
 */
static void
opts_nodes(struct options *o)
{
	static char	 host[NI_MAXHOST];
	char		 port[16];
	const char	*p = o->nodes;

	if (o->nodes == NULL)
		return;
	if (o->host_given || o->port != NULL)
		errx(2, "--nodes takes the place of --host and --port");
	if (o->wl == WL_MACHINE || o->wl == WL_SETTLE)
		errx(2, "%s makes no connections: no --nodes",
		    workload_name(o->wl));
	if (!node_next(&p, host, sizeof(host), port, sizeof(port)))
		errx(2, "--nodes: no HOST:PORT given");
	o->host = host;
	o->port = NULL;
}

/* Sets the workload named name and the defaults that depend on it. */
static void
opts_workload(struct options *o, const char *name)
{
	o->wl = workload_lookup(name);
	if (o->wl == WL_NONE) {
		warnx("%s: not a workload (fanout, private, connect, hold, "
		    "machine, join, broadcast, settle)", name);
		usage(stderr, 2);
	}
	if (o->ncompare > 0 && o->svg == NULL)
		errx(2, "--compare needs --svg");
	if (o->tls && !tlsio_available())
		errx(2, "--tls: this talknet-bench was built without TLS "
		    "(configure found no libtls)");
	if ((o->ca != NULL || o->insecure) && !o->tls)
		errx(2, "--ca and --insecure need --tls");
	if (o->ca != NULL && o->insecure)
		errx(2, "--ca or --insecure, not both");
	if (o->tls && (o->wl == WL_MACHINE || o->wl == WL_SETTLE))
		errx(2, "%s makes no connections: no --tls",
		    workload_name(o->wl));
	opts_nodes(o);
	if (o->port == NULL)
		o->port = o->proto == PK_IRC ? DEFAULT_PORT_IRC :
		    PROTO_DEFAULT_PORT;
	workload_options(o);
	if (o->wl == WL_FANOUT && o->rate == 0)
		errx(2, "fanout needs a --rate above 0");
	if (o->wl == WL_FANOUT && (o->nclients < 2 ||
	    o->nsenders > o->nclients))
		errx(2, "fanout needs 2 clients or more, and no more senders "
		    "than clients");
	if ((o->wl == WL_PRIVATE || o->wl == WL_BROADCAST) &&
	    o->nclients < 2)
		errx(2, "%s needs 2 clients or more", name);
	if (o->wl == WL_PRIVATE)
		o->nclients -= o->nclients % 2;
	if (o->proto == PK_IRC && o->bytes > IRC_MAX_BYTES)
		errx(2, "--bytes %u: an IRC line holds at most %d", o->bytes,
		    IRC_MAX_BYTES);
}

/* Parses the options, runs one workload (or draws charts), reports. */
int
main(int argc, char *argv[])
{
	struct options	o;
	int		first;

	first = opts_parse(argc, argv, &o);
	argc -= first;
	argv += first;
	if (argc == 0 && o.ncompare > 0 && o.svg != NULL)
		return bench_chart(NULL, &o) == 0 ? 0 : 1;
	if (argc != 1)
		usage(stderr, 2);
	opts_workload(&o, argv[0]);
	raise_nofile((o.wl == WL_CONNECT ? o.concurrency : o.nclients) + 64);
	bench_signals_setup();
	tlsio_setup(&o);
	if (o.wl == WL_MACHINE)
		return bench_machine(&o);
	if (o.wl == WL_SETTLE)
		return bench_settle(&o);
	if (o.wl == WL_JOIN || o.wl == WL_BROADCAST)
		return bench_presence(&o);
	return bench_classic(&o);
}
