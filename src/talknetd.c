/*
 * talknetd.c: main() of the TalkNet chat daemon: options, then the master.
 */
#include "config.h"

#include <sys/types.h>

#include <err.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "proto.h"
#include "talknetd.h"
#include "title.h"

#define EX_USAGE_CODE	64	/* sysexits.h EX_USAGE */

extern char **environ;

enum {
	OPT_MAX_CLIENTS = 256,
	OPT_MAX_ROOMS,
	OPT_MAX_NAME,
	OPT_MAX_ROOM,
	OPT_MAX_LINE,
	OPT_MAX_QUEUE
};

static const struct option talknetd_options[] = {
	{ "foreground",		no_argument,		NULL, 'f' },
	{ "listen",		required_argument,	NULL, 'l' },
	{ "debug",		no_argument,		NULL, 'd' },
	{ "max-clients",	required_argument,	NULL, OPT_MAX_CLIENTS },
	{ "max-rooms",		required_argument,	NULL, OPT_MAX_ROOMS },
	{ "max-name",		required_argument,	NULL, OPT_MAX_NAME },
	{ "max-room",		required_argument,	NULL, OPT_MAX_ROOM },
	{ "max-line",		required_argument,	NULL, OPT_MAX_LINE },
	{ "max-queue",		required_argument,	NULL, OPT_MAX_QUEUE },
	{ "help",		no_argument,		NULL, 'h' },
	{ "version",		no_argument,		NULL, 'V' },
	{ NULL,			0,			NULL, 0 }
};

/* Prints the synopsis to f. */
static void
usage(FILE *f)
{
	(void)fprintf(f,
	    "usage: talknetd [-dfhV] [-l ADDR:PORT]... [--max-clients N] "
	    "[--max-rooms N]\n"
	    "                [--max-name N] [--max-room N] [--max-line BYTES] "
	    "[--max-queue BYTES]\n"
	    "  -f, --foreground     stay in the foreground, log to stderr\n"
	    "  -d, --debug          log debug messages too\n"
	    "  -l, --listen ADDR:PORT  listen there (repeatable; default "
	    "*:" TALKNETD_DEFAULT_PORT ")\n"
	    "      --max-clients N  connections at once (default %d)\n"
	    "      --max-rooms N    rooms at once (default %d)\n"
	    "      --max-name N     code points in a user name (default %d)\n"
	    "      --max-room N     code points in a room name (default %d)\n"
	    "      --max-line BYTES longest input line (default %d)\n"
	    "      --max-queue BYTES output queued per client (default %d)\n"
	    "  -h, --help           show this help\n"
	    "  -V, --version        show the version\n",
	    DEFAULT_MAX_CLIENTS, DEFAULT_MAX_ROOMS, PROTO_MAX_NAME,
	    PROTO_MAX_ROOM, PROTO_MAX_LINE, DEFAULT_MAX_QUEUE);
}

/* Parses a numeric option or exits with EX_USAGE. */
static size_t
option_number(const char *name, const char *arg, long long min, long long max)
{
	const char	*errstr;
	long long	 n;

	n = strtonum(arg, min, max, &errstr);
	if (errstr != NULL) {
		(void)fprintf(stderr, "talknetd: --%s %s: %s (%lld to %lld)\n",
		    name, arg, errstr, min, max);
		exit(EX_USAGE_CODE);
	}
	return (size_t)n;
}

/* Adds the addresses of one -l option, or exits with EX_USAGE. */
static void
option_listen(struct config *cfg, const char *arg)
{
	char	err[256];
	int	n;

	n = addr_parse(arg, &cfg->listen[cfg->nlisten],
	    TALKNETD_MAX_LISTEN - cfg->nlisten, err, sizeof(err));
	if (n == -1) {
		(void)fprintf(stderr, "talknetd: -l %s\n", err);
		exit(EX_USAGE_CODE);
	}
	cfg->nlisten += (size_t)n;
}

/* Parses the command line into cfg. */
static void
options(struct config *cfg, int argc, char *argv[])
{
	int	ch;

	/* One line of our own per error, instead of getopt's and a usage. */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":dfhl:V", talknetd_options,
	    NULL)) != -1) {
		switch (ch) {
		case 'd':
			cfg->log_level = LOG_LEVEL_DEBUG;
			break;
		case 'f':
			cfg->foreground = 1;
			break;
		case 'l':
			option_listen(cfg, optarg);
			break;
		case OPT_MAX_CLIENTS:
			cfg->max_clients = option_number("max-clients", optarg,
			    1, LIMIT_MAX_CLIENTS);
			break;
		case OPT_MAX_ROOMS:
			cfg->max_rooms = option_number("max-rooms", optarg,
			    1, LIMIT_MAX_ROOMS);
			break;
		case OPT_MAX_NAME:
			cfg->max_name = option_number("max-name", optarg,
			    1, LIMIT_MAX_NAME);
			break;
		case OPT_MAX_ROOM:
			cfg->max_room = option_number("max-room", optarg,
			    1, LIMIT_MAX_NAME);
			break;
		case OPT_MAX_LINE:
			cfg->max_line = option_number("max-line", optarg,
			    64, LIMIT_MAX_LINE);
			break;
		case OPT_MAX_QUEUE:
			cfg->max_queue = option_number("max-queue", optarg,
			    4096, LIMIT_MAX_QUEUE);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			(void)printf("talknetd %s\n", PACKAGE_VERSION);
			exit(0);
		case ':':
			(void)fprintf(stderr, "talknetd: %s needs an argument "
			    "(see talknetd --help)\n", argv[optind - 1]);
			exit(EX_USAGE_CODE);
		default:
			(void)fprintf(stderr, "talknetd: unknown option %s "
			    "(see talknetd --help)\n", argv[optind - 1]);
			exit(EX_USAGE_CODE);
		}
	}
	if (optind != argc) {
		(void)fprintf(stderr, "talknetd: unexpected argument: %s\n",
		    argv[optind]);
		exit(EX_USAGE_CODE);
	}
	if (cfg->nlisten == 0)
		option_listen(cfg, "*:" TALKNETD_DEFAULT_PORT);
}

/* Starts the daemon. */
int
main(int argc, char *argv[])
{
	static struct config	cfg;

	title_init(argc, argv, environ);
	cfg.log_level = LOG_LEVEL_INFO;
	cfg.max_clients = DEFAULT_MAX_CLIENTS;
	cfg.max_rooms = DEFAULT_MAX_ROOMS;
	cfg.max_name = PROTO_MAX_NAME;
	cfg.max_room = PROTO_MAX_ROOM;
	cfg.max_line = PROTO_MAX_LINE;
	cfg.max_queue = DEFAULT_MAX_QUEUE;
	options(&cfg, argc, argv);

	if (!cfg.foreground) {
		/* Daemon mode (with syslog) is not there yet: say so. */
		(void)fprintf(stderr, "talknetd: only -f (foreground) is "
		    "supported in this version\n");
		exit(EX_USAGE_CODE);
	}
	log_init(cfg.foreground, cfg.log_level);
	if (master_listen(&cfg) == -1)
		exit(1);
	master_main(&cfg);
}
