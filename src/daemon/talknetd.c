/*
 * talknetd.c: main() of the TalkNet chat daemon: the command line, the
 * configuration file over it, then the master.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "conf.h"
#include "control.h"
#include "log.h"
#include "paths.h"		/* made by make: SYSCONFDIR */
#include "proto.h"
#include "systemd.h"
#include "talknetd.h"
#include "title.h"
#include "tls_server.h"

#define EX_USAGE_CODE		64	/* sysexits.h EX_USAGE */
#define DEFAULT_CONF_FILE	SYSCONFDIR "/talknetd.conf"
#define MAX_CLI_SETTINGS	64

extern char **environ;

/* What the command line said: settings to lay over the file's. */
static struct {
	const char	*conf_file;	/* -c, or NULL for the default */
	const char	*conf_read;	/* the file read, or NULL: none */
	int		 check_only;	/* -n */
	int		 foreground;	/* -f */
	const char	*key[MAX_CLI_SETTINGS];
	const char	*value[MAX_CLI_SETTINGS];
	size_t		 n;
	int		 listen;	/* some -l was given */
	int		 password;	/* --cluster-password, wiped */
	char		 cwd[PATH_MAX];	/* at start: relative paths' base */
} cli;

static const struct option talknetd_options[] = {
	{ "config",		required_argument,	NULL, 'c' },
	{ "debug",		no_argument,		NULL, 'd' },
	{ "foreground",		no_argument,		NULL, 'f' },
	{ "help",		no_argument,		NULL, 'h' },
	{ "listen",		required_argument,	NULL, 'l' },
	{ "check",		no_argument,		NULL, 'n' },
	{ "pidfile",		required_argument,	NULL, 'p' },
	{ "user",		required_argument,	NULL, 'u' },
	{ "version",		no_argument,		NULL, 'V' },
	{ "log-level",		required_argument,	NULL, 0 },
	{ "max-clients",	required_argument,	NULL, 0 },
	{ "max-rooms",		required_argument,	NULL, 0 },
	{ "max-users",		required_argument,	NULL, 0 },
	{ "max-rooms-per-user",	required_argument,	NULL, 0 },
	{ "max-name",		required_argument,	NULL, 0 },
	{ "max-room",		required_argument,	NULL, 0 },
	{ "max-line",		required_argument,	NULL, 0 },
	{ "max-queue",		required_argument,	NULL, 0 },
	{ "max-clients-per-ip",	required_argument,	NULL, 0 },
	{ "login-timeout",	required_argument,	NULL, 0 },
	{ "rate-limit",		required_argument,	NULL, 0 },
	{ "rate-burst",		required_argument,	NULL, 0 },
	{ "stall-timeout",	required_argument,	NULL, 0 },
	{ "send-buffer",	required_argument,	NULL, 0 },
	{ "max-gather",		required_argument,	NULL, 0 },
	{ "pace-min-rate",	required_argument,	NULL, 0 },
	{ "pace-window-ms",	required_argument,	NULL, 0 },
	{ "min-spare",		required_argument,	NULL, 0 },
	{ "max-spare",		required_argument,	NULL, 0 },
	{ "spare-decay-ms",	required_argument,	NULL, 0 },
	{ "control-idle-ms",	required_argument,	NULL, 0 },
	{ "cluster-ttl-ms",	required_argument,	NULL, 0 },
	{ "control",		required_argument,	NULL, 0 },
	{ "tls-cert",		required_argument,	NULL, 0 },
	{ "tls-key",		required_argument,	NULL, 0 },
	{ "tls-ca",		required_argument,	NULL, 0 },
	{ "tls-protocols",	required_argument,	NULL, 0 },
	{ "tls-ciphers",	required_argument,	NULL, 0 },
	{ "cluster",		required_argument,	NULL, 0 },
	{ "node-id",		required_argument,	NULL, 0 },
	{ "cluster-password",	required_argument,	NULL, 0 },
	{ "cluster-password-file", required_argument,	NULL, 0 },
	{ NULL,			0,			NULL, 0 }
};

/* Prints the usage line to f. */
static void
usage_synopsis(FILE *f)
{
	(void)fprintf(f,
	    "usage: talknetd [-dfhnV] [-c FILE] [-l ADDR:PORT]... [-p PIDFILE] "
	    "[-u USER]\n"
	    "                [--log-level LEVEL] [--max-clients N] "
	    "[--max-clients-per-ip N]\n"
	    "                [--max-rooms N] [--max-rooms-per-user N] "
	    "[--max-name N]\n"
	    "                [--max-room N] [--max-line BYTES] "
	    "[--max-queue BYTES]\n"
	    "                [--login-timeout S] [--rate-limit N] "
	    "[--rate-burst N]\n"
	    "                [--stall-timeout S] [--send-buffer BYTES] "
	    "[--max-gather MS]\n"
	    "                [--control PATH] [--tls-cert FILE] "
	    "[--tls-key FILE]\n"
	    "                [--tls-ca FILE] [--tls-protocols LIST] "
	    "[--tls-ciphers LIST]\n"
	    "                [--cluster URL] [--node-id ID] "
	    "[--cluster-password PW]\n"
	    "                [--cluster-password-file FILE] [--max-users N]\n"
	    "                [--min-spare N] [--max-spare N] "
	    "[--spare-decay-ms MS]\n"
	    "                [--control-idle-ms MS] [--cluster-ttl-ms MS]\n"
	    "                [--pace-min-rate BYTES] [--pace-window-ms MS]\n");
}

/* Prints the synopsis and every option's help to f. */
static void
usage(FILE *f)
{
	usage_synopsis(f);
	(void)fprintf(f,
	    "  -c, --config FILE    read settings from FILE (default "
	    DEFAULT_CONF_FILE ")\n"
	    "  -d, --debug          log debug messages too\n"
	    "  -f, --foreground     stay in the foreground, log to stderr\n"
	    "  -l, --listen ADDR:PORT  listen there (repeatable; default "
	    "*:" TALKNETD_DEFAULT_PORT ");\n"
	    "                       tls://ADDR:PORT serves TLS (by convention "
	    "port " TALKNETD_TLS_PORT ")\n"
	    "  -n, --check          check the configuration and exit\n"
	    "  -p, --pidfile FILE   write the pid there\n"
	    "  -u, --user USER      run the hub and workers as USER\n"
	    "      --max-clients N  connections at once (default %d)\n"
	    "      --max-rooms N    rooms at once (default %d)\n"
	    "      --max-rooms-per-user N  existing rooms one user created "
	    "(default %d; 0: no cap)\n"
	    "      --max-name N     code points in a user name (default %d)\n"
	    "      --max-room N     code points in a room name (default %d)\n"
	    "      --max-line BYTES longest input line (default %d)\n"
	    "      --max-queue BYTES output queued per client (default %d)\n"
	    "      --max-clients-per-ip N  connections from one address "
	    "(default %d; 0: no cap)\n"
	    "      --login-timeout S  close what has not identified in S "
	    "seconds (default %d; 0: never)\n"
	    "      --rate-limit N   messages per second read from a client "
	    "(default %d; 0: no limit)\n"
	    "      --rate-burst N   messages a client may send at once "
	    "(default %d)\n"
	    "      --stall-timeout S  close a client that takes nothing queued "
	    "for S seconds (default %d; 0: never)\n"
	    "      --send-buffer BYTES  kernel send buffer per client "
	    "(default %d; 0: the kernel's)\n"
	    "      --max-gather MS  longest a busy hub gathers lines for many "
	    "(default %d; 0: never)\n"
	    "      --pace-min-rate BYTES  a reader behind slows its senders "
	    "while it takes\n"
	    "                       BYTES a second (default %d)\n"
	    "      --pace-window-ms MS  measured over MS (default %d)\n"
	    "      --min-spare N    idle workers forked ahead of clients "
	    "(default %d; 0: none)\n"
	    "      --max-spare N    idle workers kept at most, under a burst "
	    "(default %d)\n"
	    "      --spare-decay-ms MS  halve the extra spares after MS "
	    "without a miss (default %d)\n"
	    "      --log-level L    error, warning, info (default) or debug\n"
	    "      --control PATH   talknetctl's socket (default "
	    TALKNETD_CONTROL_PATH ")\n"
	    "      --control-idle-ms MS  close a talknetctl connection idle "
	    "for MS (default %d)\n"
	    "      --tls-cert FILE  PEM certificate chain of tls:// "
	    "listeners\n"
	    "      --tls-key FILE   its PEM private key (read as root, "
	    "before -u)\n"
	    "      --tls-ca FILE    require client certificates signed by "
	    "these CAs\n"
	    "      --tls-protocols LIST  TLS versions (default "
	    TLS_DEFAULT_PROTOCOLS ")\n"
	    "      --tls-ciphers LIST  cipher list (default libtls's \""
	    TLS_DEFAULT_CIPHERS "\")\n"
	    "      --cluster URL    join the nodes of redis://HOST:PORT[/DB] "
	    "or unix:PATH\n"
	    "      --node-id ID     this node's name in the cluster (default "
	    "hostname:port)\n"
	    "      --cluster-password PW  Redis AUTH password\n"
	    "      --cluster-password-file FILE  read it from FILE (as root, "
	    "before -u)\n"
	    "      --cluster-ttl-ms MS  a node's heartbeat lives MS, the same "
	    "on every node (default %d)\n"
	    "      --max-users N    table rows for the cluster's users, this "
	    "node's and\n"
	    "                       the others' (default: max-clients)\n"
	    "  -h, --help           show this help\n"
	    "  -V, --version        show the version\n",
	    DEFAULT_MAX_CLIENTS, DEFAULT_MAX_ROOMS,
	    DEFAULT_MAX_ROOMS_PER_USER, PROTO_MAX_NAME,
	    PROTO_MAX_ROOM, PROTO_MAX_LINE, DEFAULT_MAX_QUEUE,
	    DEFAULT_MAX_CLIENTS_PER_IP, DEFAULT_LOGIN_TIMEOUT,
	    DEFAULT_RATE_LIMIT, DEFAULT_RATE_BURST, DEFAULT_STALL_TIMEOUT,
	    DEFAULT_SEND_BUFFER, DEFAULT_MAX_GATHER, DEFAULT_PACE_MIN_RATE,
	    DEFAULT_PACE_WINDOW_MS, DEFAULT_MIN_SPARE,
	    DEFAULT_MAX_SPARE, DEFAULT_SPARE_DECAY_MS, DEFAULT_CONTROL_IDLE_MS,
	    DEFAULT_CLUSTER_TTL_MS);
}

/* Remembers one setting of the command line, checking it at once. */
static void
cli_setting(const char *key, const char *value)
{
	static struct config	scratch;
	char			err[256];

	if (cli.n == MAX_CLI_SETTINGS) {
		(void)fprintf(stderr, "talknetd: too many options\n");
		exit(EX_USAGE_CODE);
	}
	/*
	 * Check it now, so a bad option is a usage error (64); the -l
	 * addresses add up in scratch, so one given twice is one too.
	 */
	if (conf_set(&scratch, key, value, err, sizeof(err)) == -1) {
		(void)fprintf(stderr, "talknetd: --%s %s\n", key, err);
		exit(EX_USAGE_CODE);
	}
	/* Checked, not kept: the password's one copy is the master's. */
	explicit_bzero(scratch.cluster_password,
	    sizeof(scratch.cluster_password));
	if (strcmp(key, "listen") == 0)
		cli.listen = 1;
	cli.key[cli.n] = key;
	cli.value[cli.n++] = value;
}

/* Parses the command line into cli. */
static void
options(int argc, char *argv[])
{
	int	ch, idx;

	/* One line of our own per error, instead of getopt's and a usage. */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:dfhl:np:u:V",
	    talknetd_options, &idx)) != -1) {
		switch (ch) {
		case 0:
			cli_setting(talknetd_options[idx].name, optarg);
			break;
		case 'c':
			/* A daemon runs in "/": SIGHUP must find the file. */
			if ((cli.conf_file = realpath(optarg, NULL)) == NULL) {
				(void)fprintf(stderr, "talknetd: %s: %s\n",
				    optarg, strerror(errno));
				exit(1);
			}
			break;
		case 'd':
			cli_setting("log-level", "debug");
			break;
		case 'f':
			cli.foreground = 1;
			break;
		case 'l':
			cli_setting("listen", optarg);
			break;
		case 'n':
			cli.check_only = 1;
			break;
		case 'p':
			cli_setting("pidfile", optarg);
			break;
		case 'u':
			cli_setting("user", optarg);
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
}

/*
 * A daemon runs in "/": makes a relative path (the pidfile, the control
 * socket, which the master removes at its exit) absolute now, from the
 * directory talknetd started in, not the current one: a daemon is in
 * "/" by the time SIGHUP reads this again.  -1 with the reason in err.
 */
static int
absolute(char *path, size_t size, const char *what, char *err, size_t errlen)
{
	char	abs[PATH_MAX];

	if (path[0] == '\0' || path[0] == '/')
		return 0;
	if (cli.cwd[0] == '\0' ||
	    (size_t)snprintf(abs, sizeof(abs), "%s/%s", cli.cwd, path) >=
	    sizeof(abs) || strlcpy(path, abs, size) >= size) {
		(void)snprintf(err, errlen, "%s: the absolute path is too long",
		    what);
		return -1;
	}
	return 0;
}

/*
 * Reads the Redis password from its file: the master runs this, as
 * root before any child drops to -u, so the file may be root's alone;
 * the hub gets the password in its copy of the configuration.  The
 * first line is the password.  -1 with the reason in err.
 */
static int
cluster_password_read(struct config *cfg, char *err, size_t errlen)
{
	FILE	*f;
	char	 line[sizeof(cfg->cluster_password) + 1];
	size_t	 len;

	if ((f = fopen(cfg->cluster_password_file, "r")) == NULL) {
		(void)snprintf(err, errlen, "cluster-password-file: %s: %s",
		    cfg->cluster_password_file, strerror(errno));
		return -1;
	}
	/* Unbuffered: no copy of the password left in a freed stdio buffer
	 * of the heap every child inherits. */
	(void)setvbuf(f, NULL, _IONBF, 0);
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	len = strcspn(line, "\r\n");
	line[len] = '\0';
	if (len == 0 || len >= sizeof(cfg->cluster_password)) {
		explicit_bzero(line, sizeof(line));
		(void)snprintf(err, errlen, "cluster-password-file: %s: the "
		    "first line must hold the password (1 to %zu bytes)",
		    cfg->cluster_password_file,
		    sizeof(cfg->cluster_password) - 1);
		return -1;
	}
	(void)strlcpy(cfg->cluster_password, line,
	    sizeof(cfg->cluster_password));
	explicit_bzero(line, sizeof(line));
	return 0;
}

/*
 * The cluster's settings once every source is read: the password from
 * its file, and the node id by default this host's name and the port
 * of the first listener.  -1 with the reason in err.
 */
static int
cluster_settings(struct config *cfg, char *err, size_t errlen)
{
	char	host[256], port[16], id[320], why[256];

	if (cfg->cluster[0] == '\0') {
		if (cfg->node_id[0] != '\0' || cfg->cluster_password[0] !=
		    '\0' || cfg->cluster_password_file[0] != '\0') {
			(void)snprintf(err, errlen, "node-id and "
			    "cluster-password need cluster");
			return -1;
		}
		return 0;
	}
	if (cfg->cluster_password[0] != '\0' &&
	    cfg->cluster_password_file[0] != '\0') {
		(void)snprintf(err, errlen, "give cluster-password or "
		    "cluster-password-file, not both");
		return -1;
	}
	if (absolute(cfg->cluster_password_file,
	    sizeof(cfg->cluster_password_file), "cluster-password-file", err,
	    errlen) == -1)
		return -1;
	if (cfg->cluster_password_file[0] != '\0' &&
	    cluster_password_read(cfg, err, errlen) == -1)
		return -1;
	if (cfg->node_id[0] != '\0')
		return 0;
	/* The same checks as a node-id given: it names Redis keys. */
	if (gethostname(host, sizeof(host)) == -1 ||
	    getnameinfo((struct sockaddr *)&cfg->listen[0].ss,
	    cfg->listen[0].sslen, NULL, 0, port, sizeof(port),
	    NI_NUMERICSERV) != 0 ||
	    (size_t)snprintf(id, sizeof(id), "%s:%s", host, port) >=
	    sizeof(id) || conf_set(cfg, "node-id", id, why,
	    sizeof(why)) == -1) {
		(void)snprintf(err, errlen, "no default node-id (hostname:"
		    "port): give --node-id");
		return -1;
	}
	return 0;
}

/*
 * Builds the configuration: defaults, then the file, then the command
 * line over both.  Returns 0, or -1 with the reason in err.
 */
static int
configure(struct config *cfg, char *err, size_t errlen)
{
	struct stat	 sb;
	const char	*path = cli.conf_file;
	char		 why[256];
	size_t		 i;

	conf_defaults(cfg);
	if (path == NULL && stat(DEFAULT_CONF_FILE, &sb) == 0)
		path = DEFAULT_CONF_FILE;
	if (path != NULL && conf_load(cfg, path, err, errlen) == -1)
		return -1;
	cli.conf_read = path;
	/* Addresses on the command line replace the file's. */
	if (cli.listen)
		cfg->nlisten = 0;
	for (i = 0; i < cli.n; i++) {
		if (conf_set(cfg, cli.key[i], cli.value[i], why,
		    sizeof(why)) == -1) {
			(void)snprintf(err, errlen, "--%s %s", cli.key[i], why);
			return -1;
		}
	}
	if (cfg->nlisten == 0 && conf_set(cfg, "listen",
	    "*:" TALKNETD_DEFAULT_PORT, err, errlen) == -1)
		return -1;
	if (absolute(cfg->pidfile, sizeof(cfg->pidfile), "pidfile", err,
	    errlen) == -1 || absolute(cfg->control, sizeof(cfg->control),
	    "control", err, errlen) == -1 ||
	    absolute(cfg->tls_cert, sizeof(cfg->tls_cert), "tls-cert", err,
	    errlen) == -1 || absolute(cfg->tls_key, sizeof(cfg->tls_key),
	    "tls-key", err, errlen) == -1 || absolute(cfg->tls_ca,
	    sizeof(cfg->tls_ca), "tls-ca", err, errlen) == -1)
		return -1;
	/* Checked again at start, under systemd's names for the sockets. */
	if (master_tls_any(cfg) && (cfg->tls_cert[0] == '\0' ||
	    cfg->tls_key[0] == '\0')) {
		(void)snprintf(err, errlen, "a tls:// listener needs "
		    "--tls-cert and --tls-key (tls-cert, tls-key)");
		return -1;
	}
	if (cluster_settings(cfg, err, errlen) == -1)
		return -1;
	/* The table's rows: the node's clients, and the other nodes'. */
	if ((cfg->max_users_auto = cfg->max_users == 0))
		cfg->max_users = cfg->max_clients;
	if (cfg->max_spare < cfg->min_spare) {
		(void)snprintf(err, errlen, "max-spare (%zu) must be at least "
		    "min-spare (%zu)", cfg->max_spare, cfg->min_spare);
		return -1;
	}
	if (cfg->max_users < cfg->max_clients) {
		(void)snprintf(err, errlen, "max-users (%zu) must be at least "
		    "max-clients (%zu)", cfg->max_users, cfg->max_clients);
		return -1;
	}
	cfg->foreground = cli.foreground;
	return 0;
}

/*
 * Wipes --cluster-password's argument (a copy of argv in the heap,
 * setproctitle's) once the configuration has it: every worker forked
 * later would inherit it.  It leaves the settings a reload lays over
 * the file: the cluster's apply at start only.
 */
static void
cli_forget_password(void)
{
	size_t	i, n = 0;

	for (i = 0; i < cli.n; i++) {
		if (strcmp(cli.key[i], "cluster-password") == 0) {
			explicit_bzero((char *)(uintptr_t)cli.value[i],
			    strlen(cli.value[i]));
			cli.password = 1;
			continue;
		}
		cli.key[n] = cli.key[i];
		cli.value[n++] = cli.value[i];
	}
	cli.n = n;
}

/* The configuration in force: main's. */
static const struct config	*running;

/*
 * Re-reads the configuration for SIGHUP.  --cluster-password's argument
 * is gone (cli_forget_password): the running password stands for it, so
 * a reload does not see it as changed.
 */
static int
reconfigure(struct config *cfg, char *err, size_t errlen)
{
	if (configure(cfg, err, errlen) == -1)
		return -1;
	if (cli.password && running != NULL)
		(void)strlcpy(cfg->cluster_password,
		    running->cluster_password, sizeof(cfg->cluster_password));
	return 0;
}

/*
 * -n: says which file was checked, or that there was none (the default
 * is optional; -c FILE that does not exist failed before this), and
 * exits 0.
 */
static void __attribute__((noreturn))
check_report(void)
{
	if (cli.conf_read != NULL)
		(void)printf("%s: configuration OK\n", cli.conf_read);
	else
		(void)printf("%s: no such file; the defaults and the command "
		    "line: configuration OK\n", DEFAULT_CONF_FILE);
	exit(0);
}

/* Starts the daemon. */
int
main(int argc, char *argv[])
{
	static struct config	cfg;
	char			err[512];

	title_init(argc, argv, environ);
	if (getcwd(cli.cwd, sizeof(cli.cwd)) == NULL)
		cli.cwd[0] = '\0';
	options(argc, argv);
	if (configure(&cfg, err, sizeof(err)) == -1) {
		(void)fprintf(stderr, "talknetd: %s\n", err);
		exit(1);
	}
	/* -n reads the certificate and key too: they must load. */
	if (cli.check_only && master_tls_load(&cfg, err, sizeof(err)) == -1) {
		(void)fprintf(stderr, "talknetd: TLS: %s\n", err);
		exit(1);
	}
	if (cli.check_only)
		check_report();
	cli_forget_password();
	running = &cfg;
	/* Under socket activation systemd's sockets are the addresses. */
	if (cli.listen && systemd_listen_ours()) {
		(void)fprintf(stderr, "talknetd: -l cannot be used with the "
		    "sockets systemd passed (LISTEN_FDS): set the addresses "
		    "in the socket unit\n");
		exit(EX_USAGE_CODE);
	}
	log_init(1, cfg.log_level);
	/* Claimed before the master starts: refused, nothing has begun. */
	if (cfg.cluster[0] != '\0' && cluster_join(&cfg, err,
	    sizeof(err)) == -1) {
		(void)fprintf(stderr, "talknetd: cluster: %s\n", err);
		exit(TALKNETD_EXIT_CLUSTER);
	}
	master_main(&cfg, reconfigure);
}
