/*
 * main.c: talknet, the TalkNet line client.
 *
 * One process polls stdin and the server socket.  Lines in the original
 * TalkNet command syntax become protocol requests built by the lib/
 * codec (cmd.c); each server message becomes one readable line
 * on stdout (render.c).  On a terminal a line editor keeps the
 * typed line intact while events arrive (talknet_edit_*.c); on a pipe the
 * client reads plain lines, so scripts can drive it the way they drive
 * nc(1).  This file holds main, the options and the loop; conn.c the
 * connection, plain or over TLS.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1	/* ppoll() */
#endif

#include <sys/types.h>
#include <sys/socket.h>

#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "client.h"

#ifdef HAVE_LIBEDIT
#define EDITOR_NAME		"libedit"
#else
#define EDITOR_NAME		"basic"
#endif
#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION		"0.1.0"
#endif

static struct client	 client;
static volatile sig_atomic_t got_term;
static volatile sig_atomic_t got_int;
static volatile sig_atomic_t got_winch;

/* The long options without a short one. */
enum {
	OPT_TLS = 256,
	OPT_CA,
	OPT_INSECURE,
	OPT_TIMEOUT
};

static void	 usage(FILE *, int) __attribute__((__noreturn__));

/* Prints the usage line and exits. */
static void
usage(FILE *f, int status)
{
	fprintf(f, "usage: %s [-n|--name NAME] [--json] [--raw] "
	    "[--tls [--ca FILE] [--insecure]]\n"
	    "               [--timeout SECONDS] [-h|--help] [-V|--version] "
	    "[HOST [PORT]]\n",
	    getprogname());
	exit(status);
}

/* Records a signal for the main loop. */
static void
on_signal(int sig)
{
	if (sig == SIGWINCH)
		got_winch = 1;
	else if (sig == SIGINT)
		got_int = 1;
	else
		got_term = sig;
}

/* Writes everything buffered on stdout; a dead stdout ends the client. */
void
out_flush(void)
{
	if (fflush(stdout) == EOF) {
		edit_stop(&client);
		_exit(1);
	}
}

/* Returns the editor prompt for the current state. */
const char *
edit_prompt_text(struct client *c, char *tmp, size_t size)
{
	switch (c->state) {
	case ST_NAME:
		(void)strlcpy(tmp, "username: ", size);
		break;
	case ST_READY:
		(void)snprintf(tmp, size, "%s> ", c->name);
		break;
	default:
		tmp[0] = '\0';
		break;
	}
	return tmp;
}

/* Leaves the terminal clean and exits. */
void
client_exit(struct client *c, int status)
{
	edit_stop(c);
	out_flush();
	exit(status);
}

/*
 * Reads from the server; returns -1 once the connection is gone.  A
 * plain socket is read once per turn of the loop.  TLS is read until
 * libtls wants the socket again: bytes it has already decrypted make
 * no POLLIN, so after TLS_READS_PER_TURN reads tls_more makes the next
 * turn come back here without waiting.
 */
static int
server_read(struct client *c)
{
	const char		*line;
	char			*p;
	size_t			 avail, len;
	ssize_t			 n;
	enum frame_result	 r;
	int			 i;

	for (i = 0; i < TLS_READS_PER_TURN; i++) {
		if ((p = framer_space(&c->sock_in, READ_SIZE, &avail)) ==
		    NULL)
			err(1, "framer_space");
		n = conn_read(c, p, avail);
		if (n == CONN_AGAIN)
			return 0;
		if (n <= 0)
			return -1;
		framer_commit(&c->sock_in, n);
		for (;;) {
			r = framer_next(&c->sock_in, &line, &len);
			if (r == FRAME_NONE)
				break;
			if (r == FRAME_TOOLONG) {
				note(c, "the server sent a line that is too "
				    "long");
				client_exit(c, 1);
			}
			server_line(c, line, len);
		}
		if (c->tls_conf == NULL)
			return 0;
	}
	c->tls_more = 1;
	return 0;
}

/* Writes queued requests; returns -1 once the connection is gone. */
static int
server_write(struct client *c)
{
	ssize_t	n;

	n = conn_write(c, buf_head(&c->sock_out), buf_pending(&c->sock_out));
	if (n == -1)
		return -1;
	if (n <= 0)
		return 0;
	buf_drain(&c->sock_out, n);
	return 0;
}

/*
 * Ends the session once the server has closed the connection: quietly
 * after our DISCONNECT, or after the end of --raw input unless the server
 * refused something; with a note and status 1 otherwise.
 */
static void
server_closed(struct client *c)
{
	if (c->retry)
		return;		/* a refused name: client_loop reconnects */
	if (c->said_bye ||
	    (c->mode == MODE_RAW && c->in_eof && !c->refused))
		client_exit(c, 0);
	note(c, "connection closed by server");
	client_exit(c, 1);
}

/* Opens a new connection after the server refused a name. */
static void
client_reconnect(struct client *c)
{
	conn_close(c);
	framer_free(&c->sock_in);
	framer_init(&c->sock_in, SERVER_MAX_LINE);
	buf_reset(&c->sock_out);
	c->refused = 0;
	c->retry = 0;
	conn_open(c);
	ask_name(c);
}

/* Installs the signal handlers; the signals stay blocked outside ppoll. */
static void
signals_setup(sigset_t *waitmask)
{
	struct sigaction	sa;
	sigset_t		block;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) == -1)
		err(1, "sigaction");
	sa.sa_handler = on_signal;
	if (sigemptyset(&sa.sa_mask) == -1 ||
	    sigaction(SIGTERM, &sa, NULL) == -1 ||
	    sigaction(SIGHUP, &sa, NULL) == -1 ||
	    sigaction(SIGINT, &sa, NULL) == -1 ||
	    sigaction(SIGWINCH, &sa, NULL) == -1)
		err(1, "sigaction");
	if (sigemptyset(&block) == -1 || sigaddset(&block, SIGTERM) == -1 ||
	    sigaddset(&block, SIGHUP) == -1 ||
	    sigaddset(&block, SIGINT) == -1 ||
	    sigaddset(&block, SIGWINCH) == -1)
		err(1, "sigset");
	if (sigprocmask(SIG_BLOCK, &block, waitmask) == -1)
		err(1, "sigprocmask");
}

/* Acts on the signals caught since the last turn of the loop. */
static void
client_signals(struct client *c)
{
	if (got_int && c->editing && c->state != ST_QUIT) {
		/* ^C on the terminal: the same as quit/. */
		got_int = 0;
		edit_hide(c);
		input_end(c);
		edit_show(c);
	} else if (got_int)
		got_term = SIGINT;
	if (got_term) {
		edit_stop(c);
		note(c, "%s", strsignal(got_term));
		client_exit(c, 1);
	}
	if (got_winch) {
		got_winch = 0;
		edit_resize(c);
	}
}

/* Returns the ppoll timeout: the time left to wait for the close. */
static struct timespec *
client_timeout(struct client *c, struct timespec *ts)
{
	long long	left;

	if (c->state != ST_QUIT)
		return NULL;
	if (c->mode == MODE_RAW && !c->shut &&
	    buf_pending(&c->sock_out) == 0) {
		conn_shutdown(c);
		c->shut = 1;
	}
	left = c->deadline - clock_now_ms();
	if (left <= 0)
		client_exit(c, 0);
	ts->tv_sec = left / 1000;
	ts->tv_nsec = (left % 1000) * 1000000;
	return ts;
}

/* Polls stdin and the socket until the session ends. */
static void
client_loop(struct client *c, const sigset_t *waitmask)
{
	struct pollfd	 pfd[2];
	struct timespec	 ts, *tsp;
	int		 n;

	for (;;) {
		client_signals(c);
		pfd[0].fd = c->fd;
		pfd[0].events = c->rd_events;
		if (buf_pending(&c->sock_out) > 0)
			pfd[0].events |= c->wr_events;
		pfd[1].fd = STDIN_FILENO;
		pfd[1].events = POLLIN;
		if (c->in_eof || !input_wanted(c) ||
		    buf_pending(&c->sock_out) > OUT_HIGH_WATER)
			pfd[1].fd = -1;
		tsp = client_timeout(c, &ts);
		if (c->tls_more) {
			ts.tv_sec = 0;
			ts.tv_nsec = 0;
			tsp = &ts;
		}
		n = ppoll(pfd, 2, tsp, waitmask);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			err(1, "ppoll");
		}
		if (c->tls_more ||
		    (pfd[0].revents & (c->rd_events | POLLHUP | POLLERR))) {
			if (server_read(c) == -1) {
				server_closed(c);
				client_reconnect(c);
				continue;
			}
		}
		if (buf_pending(&c->sock_out) > 0 &&
		    (pfd[0].revents & c->wr_events) && server_write(c) == -1) {
			/*
			 * The peer is gone; drop what cannot be sent and let
			 * the read side collect its last lines and the close.
			 */
			buf_reset(&c->sock_out);
		}
		if (pfd[1].fd != -1 &&
		    (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			if (c->editing)
				edit_read(c);
			else
				input_read(c);
		}
		input_drain(c);
	}
}

/* Checks the port: digits only, 1 to 65535. */
static void
check_port(const char *port)
{
	const char	*errstr;

	if (port[0] == '\0' || port[strspn(port, "0123456789")] != '\0')
		errx(1, "bad port: %s", port);
	(void)strtonum(port, 1, 65535, &errstr);
	if (errstr != NULL)
		errx(1, "bad port: %s (%s; 1 to 65535)", port, errstr);
}

/*
 * The protocol is UTF-8, and so is what the editor must count: keep the
 * user's locale if it is UTF-8, else take C.UTF-8 for the character type.
 */
static void
locale_setup(void)
{
	if (setlocale(LC_CTYPE, "") != NULL &&
	    strcmp(nl_langinfo(CODESET), "UTF-8") == 0)
		return;
	(void)setlocale(LC_CTYPE, "C.UTF-8");
}

/* Parses the options; returns the name given with -n, or NULL. */
static const char *
options(struct client *c, int argc, char *argv[])
{
	/* --json and --raw set the mode through getopt_long's flag. */
	static int			 mode;
	static const struct option	 longopts[] = {
		{ "name",	required_argument,	NULL,	'n' },
		{ "json",	no_argument,		&mode,	MODE_JSON },
		{ "raw",	no_argument,		&mode,	MODE_RAW },
		{ "help",	no_argument,		NULL,	'h' },
		{ "version",	no_argument,		NULL,	'V' },
		{ "tls",	no_argument,		NULL,	OPT_TLS },
		{ "ca",		required_argument,	NULL,	OPT_CA },
		{ "insecure",	no_argument,		NULL,	OPT_INSECURE },
		{ "timeout",	required_argument,	NULL,	OPT_TIMEOUT },
		{ NULL,		0,			NULL,	0 }
	};
	const char			*name = NULL, *ca = NULL, *errstr;
	int				 ch, tls = 0, insecure = 0;

	mode = MODE_TEXT;
	c->connect_timeout_ms = CONNECT_TIMEOUT_MS;
	while ((ch = getopt_long(argc, argv, "n:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 0:		/* --json or --raw */
			break;
		case 'n':
			name = optarg;
			break;
		case 'h':
			usage(stdout, 0);
		case 'V':
			printf("%s %s (line editor: %s)\n", getprogname(),
			    PACKAGE_VERSION, EDITOR_NAME);
			exit(0);
		case OPT_TLS:
			tls = 1;
			break;
		case OPT_CA:
			ca = optarg;
			break;
		case OPT_INSECURE:
			insecure = 1;
			break;
		case OPT_TIMEOUT:
			c->connect_timeout_ms = 1000 * strtonum(optarg, 1,
			    CONNECT_TIMEOUT_MAX_S, &errstr);
			if (errstr != NULL)
				errx(1, "bad --timeout: %s (%s; 1 to %d "
				    "seconds)", optarg, errstr,
				    CONNECT_TIMEOUT_MAX_S);
			break;
		default:
			usage(stderr, 1);
		}
	}
	c->mode = (enum mode)mode;
	argc -= optind;
	argv += optind;
	if (argc > 2)
		usage(stderr, 1);
	c->host = argc > 0 ? argv[0] : DEFAULT_HOST;
	c->port = argc > 1 ? argv[1] : tls ? DEFAULT_TLS_PORT : DEFAULT_PORT;
	check_port(c->port);
	if (c->mode == MODE_RAW && name != NULL)
		errx(1, "--raw sends no IDENTIFY: it takes no --name");
	if (!tls && (ca != NULL || insecure))
		errx(1, "--ca and --insecure go with --tls");
	if (tls)
		conn_tls_setup(c, ca, insecure);
	return name;
}

/* Parses the options, connects, identifies and runs the session. */
int
main(int argc, char *argv[])
{
	struct client	*c = &client;
	sigset_t	 waitmask;
	const char	*name;

	name = options(c, argc, argv);
	locale_setup();
	framer_init(&c->sock_in, SERVER_MAX_LINE);
	framer_init(&c->std_in, INPUT_MAX_LINE);
	/* Typed text is not JSON: "{x} y" is one line, not two frames. */
	framer_lines_only(&c->std_in);
	buf_init(&c->sock_out);
	buf_init(&c->out);
	proto_parser_init(&c->parser, NULL);
	c->tty_in = isatty(STDIN_FILENO);
	c->tty_out = isatty(STDOUT_FILENO);
	conn_open(c);
	signals_setup(&waitmask);

	if (c->mode == MODE_RAW)
		c->state = ST_READY;
	else if (name != NULL) {
		if (!name_ok(name, strlen(name)) ||
		    strlcpy(c->name, name, sizeof(c->name)) >=
		    sizeof(c->name))
			errx(1, "invalid username: %s", name);
		send_identify(c);
	} else
		c->state = ST_NAME;
	if (c->mode != MODE_RAW && c->tty_in && c->tty_out &&
	    edit_start(c) == 0)
		c->editing = 1;
	else if (c->state == ST_NAME)
		ask_name(c);
	client_loop(c, &waitmask);
	return 1;
}
