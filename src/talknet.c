/*
 * talknet.c: the TalkNet line client.
 *
 * One process polls stdin and the server socket.  Lines in the original
 * TalkNet command syntax become protocol requests built by the lib/
 * codec; each server message becomes one readable line on stdout.  On a
 * terminal a small line editor keeps the typed line intact while events
 * arrive; on a pipe the client reads plain lines, so scripts can drive
 * it the way they drive nc(1).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1	/* ppoll() */
#endif

#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "frame.h"
#include "proto.h"
#include "utf8.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION		"0.1.0"
#endif

#define DEFAULT_HOST		"127.0.0.1"
#define DEFAULT_PORT		"8001"
#define CONNECT_TIMEOUT_MS	5000	/* an unreachable server never hangs */
#define QUIT_TIMEOUT_MS		2000	/* for the close after DISCONNECT */
#define SERVER_MAX_LINE		(16 * 1024 * 1024)
#define INPUT_MAX_LINE		PROTO_MAX_LINE
#define EDIT_MAX_LINE		4096	/* bytes typed on one terminal line */
#define OUT_HIGH_WATER		(1024 * 1024)
#define READ_SIZE		16384

enum mode {
	MODE_TEXT,	/* commands in, readable lines out */
	MODE_JSON,	/* commands in, server lines out as received */
	MODE_RAW	/* plain line relay, like nc */
};

enum state {
	ST_NAME,	/* waiting for the user to give a name */
	ST_IDENT,	/* IDENTIFY sent, waiting for its reply */
	ST_READY,	/* identified: commands are sent */
	ST_QUIT		/* DISCONNECT sent or input over: waiting for close */
};

/* The terminal line editor: the cursor always sits at the end. */
struct edit {
	int		 active;
	char		 line[EDIT_MAX_LINE];
	size_t		 len;
	int		 esc;		/* 1 after ESC, 2 inside CSI or SS3 */
	struct buf	 pend;		/* keys read and not yet handled */
	size_t		 shown;		/* columns now drawn, prompt included */
	int		 visible;	/* prompt and line are on the screen */
	unsigned int	 cols;
};

struct client {
	enum mode		 mode;
	enum state		 state;
	int			 fd;
	int			 tty_in;	/* stdin is a terminal */
	int			 tty_out;	/* stdout is a terminal */
	int			 in_eof;
	int			 said_bye;	/* DISCONNECT sent */
	int			 shut;		/* --raw: write side is shut */
	long long		 deadline;	/* ST_QUIT: ms, monotonic */
	char			 name[1024];
	const char		*host;
	const char		*port;
	struct framer		 sock_in;
	struct framer		 std_in;
	struct buf		 sock_out;
	struct buf		 out;		/* the output line being made */
	struct proto_parser	 parser;
	struct edit		 ed;
};

static struct client	 client;
static struct termios	 tty_saved;
static int		 tty_raw;
static volatile sig_atomic_t got_term;
static volatile sig_atomic_t got_winch;

static const char help_text[] =
"commands, one per line:\n"
"  >text                      send text to everyone (PUBLIC_TEXT)\n"
"  all/                       list the users (USERS)\n"
"  txfrom/USER/text           send text to USER only (TEXT)\n"
"  room/ROOM                  create a room (NEW_ROOM)\n"
"  INVITE/ <USER ...> <ROOM>  invite users to a room (INVITE)\n"
"  JOIN/ROOM                  join a room you were invited to (JOIN_ROOM)\n"
"  ROOM_CONTENT/ROOM          list the members of a room (ROOM_USERS)\n"
"  TX_ROOM/ROOM/text          send text to a room (ROOM_TEXT)\n"
"  LEAVE/ROOM                 leave a room (LEAVE_ROOM)\n"
"  status/ACTIVE|AWAY|BUSY    set your status (STATUS)\n"
"  quit/                      disconnect and exit (DISCONNECT)\n"
"  {...}                      send a raw protocol message as it is\n"
"  help/                      show this table\n";

static void	 usage(FILE *, int) __attribute__((__noreturn__));
static void	 client_exit(struct client *, int)
		    __attribute__((__noreturn__));
static void	 ed_drain(struct client *);

/* Prints the usage line and exits. */
static void
usage(FILE *f, int status)
{
	fprintf(f, "usage: %s [-n|--name NAME] [--json] [--raw] [-h|--help] "
	    "[-V|--version] [HOST [PORT]]\n", getprogname());
	exit(status);
}

/* Records a signal for the main loop. */
static void
on_signal(int sig)
{
	if (sig == SIGWINCH)
		got_winch = 1;
	else
		got_term = sig;
}

/* Puts the terminal back the way it was; safe to call more than once. */
static void
tty_restore(void)
{
	if (!tty_raw)
		return;
	/* Best effort: there is nothing left to do if this fails. */
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &tty_saved);
	tty_raw = 0;
}

/* Switches the terminal to byte-at-a-time input without echo. */
static int
tty_setraw(void)
{
	struct termios	t;

	if (tcgetattr(STDIN_FILENO, &tty_saved) == -1)
		return -1;
	t = tty_saved;
	t.c_iflag &= ~(ICRNL | INLCR | IGNCR | IXON | ISTRIP);
	t.c_lflag &= ~(ICANON | ECHO | ECHONL | ISIG | IEXTEN);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == -1)
		return -1;
	tty_raw = 1;
	if (atexit(tty_restore) != 0)
		return -1;
	return 0;
}

/* Reads the terminal width, 80 if it cannot be known. */
static unsigned int
tty_cols(void)
{
	struct winsize	ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == -1 || ws.ws_col == 0)
		return 80;
	return ws.ws_col;
}

/* Writes everything buffered on stdout; a dead stdout ends the client. */
static void
out_flush(void)
{
	if (fflush(stdout) == EOF) {
		tty_restore();
		_exit(1);
	}
}

/* Counts the terminal columns of p[0..len): one per code point. */
static size_t
text_cols(const char *p, size_t len)
{
	size_t	i, n = 0;

	for (i = 0; i < len; i++)
		if (((unsigned char)p[i] & 0xc0) != 0x80)
			n++;
	return n;
}

/* Returns the editor prompt for the current state. */
static const char *
ed_prompt(struct client *c, char *tmp, size_t size)
{
	switch (c->state) {
	case ST_NAME:
		return "username: ";
	case ST_READY:
		(void)snprintf(tmp, size, "%s> ", c->name);
		return tmp;
	default:
		return "";
	}
}

/* Draws the prompt and the typed line. */
static void
ed_show(struct client *c)
{
	char		 tmp[sizeof(c->name) + 4];
	const char	*prompt;

	if (!c->ed.active || c->ed.visible)
		return;
	prompt = ed_prompt(c, tmp, sizeof(tmp));
	fputs(prompt, stdout);
	fwrite(c->ed.line, 1, c->ed.len, stdout);
	c->ed.shown = text_cols(prompt, strlen(prompt)) +
	    text_cols(c->ed.line, c->ed.len);
	c->ed.visible = 1;
	out_flush();
}

/* Erases the prompt and the typed line, even when they wrapped. */
static void
ed_hide(struct client *c)
{
	size_t	up;

	if (!c->ed.active || !c->ed.visible)
		return;
	up = c->ed.shown > 0 ? (c->ed.shown - 1) / c->ed.cols : 0;
	if (up > 0)
		printf("\033[%zuA", up);
	fputs("\r\033[J", stdout);
	c->ed.visible = 0;
	c->ed.shown = 0;
}

/* Adds n bytes to the output line; running out of memory is fatal. */
static void
out_add(struct client *c, const void *p, size_t n)
{
	if (buf_append(&c->out, p, n) == -1)
		err(1, "buf_append");
}

/* Adds a C string to the output line as it is. */
static void
out_puts(struct client *c, const char *s)
{
	out_add(c, s, strlen(s));
}

/* Returns the length of the UTF-8 sequence a lead byte starts, or 0. */
static size_t
utf8_seqlen(unsigned char ch)
{
	if (ch >= 0xc2 && ch <= 0xdf)
		return 2;
	if (ch >= 0xe0 && ch <= 0xef)
		return 3;
	if (ch >= 0xf0 && ch <= 0xf4)
		return 4;
	return 0;
}

/*
 * Adds text from the network to the output line with every control
 * character escaped (\x1b, \u009b), and every byte that is not UTF-8 as
 * \xNN, so that a peer can never drive the terminal.
 */
static void
out_esc(struct client *c, const char *p, size_t len)
{
	char		tmp[8];
	size_t		i = 0, n;
	unsigned char	ch;

	while (i < len) {
		ch = (unsigned char)p[i];
		if (ch < 0x20 || ch == 0x7f) {
			(void)snprintf(tmp, sizeof(tmp), "\\x%02x", ch);
			out_puts(c, tmp);
			i++;
			continue;
		}
		if (ch < 0x80) {
			out_add(c, p + i, 1);
			i++;
			continue;
		}
		n = utf8_seqlen(ch);
		if (n == 0 || n > len - i || !utf8_valid(p + i, n)) {
			(void)snprintf(tmp, sizeof(tmp), "\\x%02x", ch);
			out_puts(c, tmp);
			i++;
			continue;
		}
		if (ch == 0xc2 && (unsigned char)p[i + 1] < 0xa0) {
			/* U+0080..U+009F: the C1 controls. */
			(void)snprintf(tmp, sizeof(tmp), "\\u%04x",
			    (unsigned char)p[i + 1]);
			out_puts(c, tmp);
		} else
			out_add(c, p + i, n);
		i += n;
	}
}

/* Adds a decoded protocol string, escaped. */
static void
out_str(struct client *c, struct str s)
{
	out_esc(c, s.p, s.len);
}

/* Prints the output line on f, keeping the edited line intact. */
static void
out_emit(struct client *c, FILE *f)
{
	ed_hide(c);
	out_add(c, "\n", 1);
	if (f != stdout)
		out_flush();
	if (fwrite(buf_head(&c->out), 1, buf_pending(&c->out), f) !=
	    buf_pending(&c->out) || fflush(f) == EOF) {
		tty_restore();
		_exit(1);
	}
	buf_reset(&c->out);
	ed_show(c);
}

/* Prints one note of the client itself on stderr, prefixed by its name. */
static void __attribute__((__format__(__printf__, 2, 3)))
note(struct client *c, const char *fmt, ...)
{
	char	tmp[1024];
	va_list	ap;

	va_start(ap, fmt);
	(void)vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	buf_reset(&c->out);
	out_puts(c, getprogname());
	out_puts(c, ": ");
	out_puts(c, tmp);
	out_emit(c, stderr);
}

/* Leaves the terminal clean and exits. */
static void
client_exit(struct client *c, int status)
{
	ed_hide(c);
	out_flush();
	tty_restore();
	exit(status);
}

/* Queues one request for the server. */
static void
send_msg(struct client *c, const struct msg *m)
{
	if (proto_encode(&c->sock_out, m) == -1)
		err(1, "proto_encode");
}

/* Queues a line for the server as it is, with a newline. */
static void
send_line(struct client *c, const char *p, size_t len)
{
	if (buf_append(&c->sock_out, p, len) == -1 ||
	    buf_append(&c->sock_out, "\n", 1) == -1)
		err(1, "buf_append");
}

/* Sends DISCONNECT and waits, at most QUIT_TIMEOUT_MS, for the close. */
static void
send_quit(struct client *c)
{
	struct msg	m;

	memset(&m, 0, sizeof(m));
	m.type = MSG_DISCONNECT;
	send_msg(c, &m);
	c->said_bye = 1;
	c->state = ST_QUIT;
	c->deadline = clock_now_ms() + QUIT_TIMEOUT_MS;
}

/* Sends IDENTIFY with the chosen name. */
static void
send_identify(struct client *c)
{
	struct msg	m;

	memset(&m, 0, sizeof(m));
	m.type = MSG_IDENTIFY;
	m.username = str_c(c->name);
	send_msg(c, &m);
	c->state = ST_IDENT;
}

/* Asks for a user name on a terminal that has no line editor. */
static void
ask_name(struct client *c)
{
	c->state = ST_NAME;
	if (c->ed.active) {
		ed_show(c);
		return;
	}
	if (c->tty_in) {
		fputs("username: ", stderr);
		(void)fflush(stderr);
	}
}

/* Returns 1 if p[0..len) can be sent as a user or room name. */
static int
name_ok(const char *p, size_t len)
{
	return len > 0 && utf8_name_valid(p, len, len);
}

/* Takes the line the user gave as a name. */
static void
input_name(struct client *c, const char *p, size_t len)
{
	if (!name_ok(p, len) || len >= sizeof(c->name)) {
		if (!c->tty_in) {
			note(c, "invalid username");
			client_exit(c, 1);
		}
		note(c, "invalid username: it must be printable and "
		    "not empty");
		ask_name(c);
		return;
	}
	memcpy(c->name, p, len);
	c->name[len] = '\0';
	send_identify(c);
}

/* Splits "A/B" at the first '/': *a and *b get both halves. */
static int
split_slash(const char *p, size_t len, struct str *a, struct str *b)
{
	const char	*s;

	if ((s = memchr(p, '/', len)) == NULL)
		return -1;
	a->p = p;
	a->len = s - p;
	b->p = s + 1;
	b->len = len - a->len - 1;
	return 0;
}

/* Returns 1 if the line starts with the command word w. */
static int
has_prefix(const char *p, size_t len, const char *w)
{
	size_t	n = strlen(w);

	return len >= n && memcmp(p, w, n) == 0;
}

/* Skips spaces and tabs. */
static size_t
skip_space(const char *p, size_t len, size_t i)
{
	while (i < len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i;
}

/* Parses and sends "INVITE/ <user1 user2 ...> <ROOM>". */
static int
cmd_invite(struct client *c, const char *p, size_t len)
{
	struct msg	 m;
	struct str	*users = NULL;
	size_t		 i, j, end, n = 0, cap = 0;
	const char	*close;

	i = skip_space(p, len, 0);
	if (i >= len || p[i] != '<')
		return -1;
	i++;
	if ((close = memchr(p + i, '>', len - i)) == NULL)
		return -1;
	end = close - p;
	for (;;) {
		i = skip_space(p, end, i);
		if (i >= end)
			break;
		for (j = i; j < end && p[j] != ' ' && p[j] != '\t'; j++)
			;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			users = reallocarray(users, cap, sizeof(*users));
			if (users == NULL)
				err(1, "reallocarray");
		}
		users[n].p = p + i;
		users[n].len = j - i;
		if (!name_ok(users[n].p, users[n].len)) {
			free(users);
			return -1;
		}
		n++;
		i = j;
	}
	i = skip_space(p, len, end + 1);
	if (n == 0 || i >= len || p[i] != '<') {
		free(users);
		return -1;
	}
	i++;
	for (end = len; end > i && (p[end - 1] == ' ' || p[end - 1] == '\t');
	    end--)
		;
	if (end <= i || p[end - 1] != '>' || !name_ok(p + i, end - 1 - i)) {
		free(users);
		return -1;
	}
	memset(&m, 0, sizeof(m));
	m.type = MSG_INVITE;
	m.roomname.p = p + i;
	m.roomname.len = end - 1 - i;
	m.list = users;
	m.nlist = n;
	send_msg(c, &m);
	free(users);
	return 0;
}

/* Sends a request that carries one room name. */
static int
cmd_room(struct client *c, enum msg_type type, const char *p, size_t len)
{
	struct msg	m;

	if (!name_ok(p, len))
		return -1;
	memset(&m, 0, sizeof(m));
	m.type = type;
	m.roomname.p = p;
	m.roomname.len = len;
	send_msg(c, &m);
	return 0;
}

/* Runs one command line typed or piped while identified. */
static void
input_command(struct client *c, const char *p, size_t len)
{
	struct msg	m;
	struct str	a, b;
	int		st;

	memset(&m, 0, sizeof(m));
	if (p[0] == '{') {
		/* A raw DISCONNECT still ends the session cleanly. */
		if (proto_parse_request(&c->parser, p, len, &m) == 0 &&
		    m.type == MSG_DISCONNECT) {
			send_line(c, p, len);
			c->said_bye = 1;
			c->state = ST_QUIT;
			c->deadline = clock_now_ms() + QUIT_TIMEOUT_MS;
			return;
		}
		send_line(c, p, len);
	} else if (p[0] == '>') {
		m.type = MSG_PUBLIC_TEXT;
		m.text.p = p + 1;
		m.text.len = len - 1;
		send_msg(c, &m);
	} else if (len == 4 && memcmp(p, "all/", 4) == 0) {
		m.type = MSG_USERS;
		send_msg(c, &m);
	} else if (len == 5 && memcmp(p, "quit/", 5) == 0) {
		send_quit(c);
	} else if (len == 5 && memcmp(p, "help/", 5) == 0) {
		buf_reset(&c->out);
		out_add(c, help_text, sizeof(help_text) - 2);
		out_emit(c, stdout);
	} else if (has_prefix(p, len, "txfrom/")) {
		if (split_slash(p + 7, len - 7, &a, &b) == -1 ||
		    !name_ok(a.p, a.len))
			goto bad;
		m.type = MSG_TEXT;
		m.username = a;
		m.text = b;
		send_msg(c, &m);
	} else if (has_prefix(p, len, "room/")) {
		if (cmd_room(c, MSG_NEW_ROOM, p + 5, len - 5) == -1)
			goto bad;
	} else if (has_prefix(p, len, "INVITE/")) {
		if (cmd_invite(c, p + 7, len - 7) == -1)
			goto bad;
	} else if (has_prefix(p, len, "JOIN/")) {
		if (cmd_room(c, MSG_JOIN_ROOM, p + 5, len - 5) == -1)
			goto bad;
	} else if (has_prefix(p, len, "ROOM_CONTENT/")) {
		if (cmd_room(c, MSG_ROOM_USERS, p + 13, len - 13) == -1)
			goto bad;
	} else if (has_prefix(p, len, "TX_ROOM/")) {
		if (split_slash(p + 8, len - 8, &a, &b) == -1 ||
		    !name_ok(a.p, a.len))
			goto bad;
		m.type = MSG_ROOM_TEXT;
		m.roomname = a;
		m.text = b;
		send_msg(c, &m);
	} else if (has_prefix(p, len, "LEAVE/")) {
		if (cmd_room(c, MSG_LEAVE_ROOM, p + 6, len - 6) == -1)
			goto bad;
	} else if (has_prefix(p, len, "status/")) {
		if ((st = proto_status_lookup(p + 7, len - 7)) == -1)
			goto bad;
		m.type = MSG_STATUS;
		m.st = (enum user_status)st;
		m.status.p = p + 7;
		m.status.len = len - 7;
		send_msg(c, &m);
	} else
		note(c, "unknown command, not sent (help/ lists the commands)");
	return;
bad:
	note(c, "malformed command, not sent (help/ shows its syntax)");
}

/* Handles one complete input line. */
static void
input_line(struct client *c, const char *p, size_t len)
{
	if (c->mode == MODE_RAW) {
		send_line(c, p, len);
		return;
	}
	if (!utf8_valid(p, len)) {
		note(c, "input is not valid UTF-8, not sent");
		return;
	}
	if (memchr(p, '\0', len) != NULL) {
		note(c, "input holds a NUL byte, not sent");
		return;
	}
	switch (c->state) {
	case ST_NAME:
		input_name(c, p, len);
		break;
	case ST_READY:
		input_command(c, p, len);
		break;
	default:
		break;
	}
}

/* Returns 1 if input lines may be taken now. */
static int
input_wanted(struct client *c)
{
	if (c->mode == MODE_RAW)
		return c->state != ST_QUIT;
	return c->state == ST_NAME || c->state == ST_READY;
}

/* Ends the input: DISCONNECT once identified, or exit before that. */
static void
input_end(struct client *c)
{
	if (c->mode == MODE_RAW) {
		c->state = ST_QUIT;
		c->deadline = clock_now_ms() + QUIT_TIMEOUT_MS;
		return;
	}
	switch (c->state) {
	case ST_NAME:
		if (c->ed.active) {
			ed_hide(c);
			client_exit(c, 1);
		}
		note(c, "no username given");
		client_exit(c, 1);
	case ST_READY:
		send_quit(c);
		break;
	default:
		break;
	}
}

/* Runs the input lines buffered from a pipe, as far as the state lets. */
static void
input_drain(struct client *c)
{
	const char		*line;
	size_t			 len;
	enum frame_result	 r;

	if (c->ed.active) {
		ed_drain(c);
		return;
	}
	while (input_wanted(c)) {
		r = framer_next(&c->std_in, &line, &len);
		if (r == FRAME_TOOLONG) {
			note(c, "input line too long");
			client_exit(c, 1);
		}
		if (r == FRAME_NONE) {
			if (c->in_eof)
				input_end(c);
			return;
		}
		input_line(c, line, len);
	}
}

/* Reads from a pipe or a terminal without the line editor. */
static void
input_read(struct client *c)
{
	char	*p;
	size_t	 avail;
	ssize_t	 n;

	if ((p = framer_space(&c->std_in, READ_SIZE, &avail)) == NULL)
		err(1, "framer_space");
	n = read(STDIN_FILENO, p, avail);
	if (n == -1) {
		if (errno == EINTR || errno == EAGAIN)
			return;
		err(1, "read stdin");
	}
	if (n == 0) {
		c->in_eof = 1;
		/* A last line without a newline still counts. */
		if (framer_pending(&c->std_in) > 0 &&
		    framer_feed(&c->std_in, "\n", 1) == -1)
			err(1, "framer_feed");
	} else
		framer_commit(&c->std_in, n);
	input_drain(c);
}

/* Takes the typed line: it stays on the screen and is run. */
static void
ed_enter(struct client *c)
{
	char	line[EDIT_MAX_LINE];
	size_t	len = c->ed.len;

	memcpy(line, c->ed.line, len);
	c->ed.len = 0;
	/* The typed line stays above, as in a cooked terminal. */
	fputs("\n", stdout);
	c->ed.visible = 0;
	c->ed.shown = 0;
	if (len > 0)
		input_line(c, line, len);
	ed_show(c);
}

/* Removes the last code point of the typed line. */
static void
ed_backspace(struct client *c)
{
	while (c->ed.len > 0) {
		c->ed.len--;
		if (((unsigned char)c->ed.line[c->ed.len] & 0xc0) != 0x80)
			break;
	}
}

/* Removes the last word of the typed line. */
static void
ed_delword(struct client *c)
{
	while (c->ed.len > 0 && c->ed.line[c->ed.len - 1] == ' ')
		c->ed.len--;
	while (c->ed.len > 0 && c->ed.line[c->ed.len - 1] != ' ')
		c->ed.len--;
}

/* Redraws the prompt and the typed line. */
static void
ed_redraw(struct client *c)
{
	ed_hide(c);
	ed_show(c);
}

/* Handles one byte typed on the terminal. */
static void
ed_key(struct client *c, unsigned char ch)
{
	if (c->ed.esc == 1) {
		c->ed.esc = (ch == '[' || ch == 'O') ? 2 : 0;
		return;
	}
	if (c->ed.esc == 2) {
		if (ch >= 0x40 && ch <= 0x7e)
			c->ed.esc = 0;
		return;
	}
	switch (ch) {
	case '\r':
	case '\n':
		ed_enter(c);
		return;
	case 0x7f:	/* DEL */
	case 0x08:	/* ^H */
		ed_backspace(c);
		ed_redraw(c);
		return;
	case 0x15:	/* ^U */
		c->ed.len = 0;
		ed_redraw(c);
		return;
	case 0x17:	/* ^W */
		ed_delword(c);
		ed_redraw(c);
		return;
	case 0x0c:	/* ^L */
		ed_hide(c);
		fputs("\033[H\033[2J", stdout);
		ed_show(c);
		return;
	case 0x03:	/* ^C */
		c->ed.len = 0;
		ed_hide(c);
		input_end(c);
		ed_show(c);
		return;
	case 0x04:	/* ^D */
		if (c->ed.len == 0) {
			ed_hide(c);
			input_end(c);
			ed_show(c);
		}
		return;
	case 0x1b:
		c->ed.esc = 1;
		return;
	default:
		break;
	}
	if (ch < 0x20)
		return;
	if (c->ed.len >= sizeof(c->ed.line) - 1) {
		fputs("\a", stdout);
		return;
	}
	c->ed.line[c->ed.len++] = ch;
	if (c->ed.visible) {
		fputc(ch, stdout);
		if ((ch & 0xc0) != 0x80)
			c->ed.shown++;
	}
}

/* Handles the keys read so far, as far as the state lets. */
static void
ed_drain(struct client *c)
{
	unsigned char	ch;

	while (buf_pending(&c->ed.pend) > 0 && input_wanted(c)) {
		ch = (unsigned char)buf_head(&c->ed.pend)[0];
		buf_drain(&c->ed.pend, 1);
		ed_key(c, ch);
	}
	if (buf_pending(&c->ed.pend) == 0 && c->in_eof && input_wanted(c)) {
		ed_hide(c);
		input_end(c);
		ed_show(c);
	}
	out_flush();
}

/* Reads keys from the terminal into the line editor. */
static void
ed_read(struct client *c)
{
	char	tmp[256];
	ssize_t	n;

	n = read(STDIN_FILENO, tmp, sizeof(tmp));
	if (n == -1) {
		if (errno == EINTR || errno == EAGAIN)
			return;
		err(1, "read stdin");
	}
	if (n == 0)
		c->in_eof = 1;
	else if (buf_append(&c->ed.pend, tmp, n) == -1)
		err(1, "buf_append");
	ed_drain(c);
}

/* Adds "name (STATUS), ..." for a USER_LIST or ROOM_USER_LIST. */
static void
out_users(struct client *c, const struct msg *m)
{
	size_t	i;

	if (m->nlist == 0)
		out_puts(c, "(none)");
	for (i = 0; i < m->nlist; i++) {
		if (i > 0)
			out_puts(c, ", ");
		out_str(c, m->list[2 * i]);
		out_puts(c, " (");
		out_str(c, m->list[2 * i + 1]);
		out_puts(c, ")");
	}
}

/* Renders a RESPONSE; returns -1 if it has no rendering. */
static int
render_response(struct client *c, const struct msg *m)
{
	const char	*what;

	switch (m->res) {
	case RES_SUCCESS:
		if (!m->has_extra)
			return -1;
		switch (m->op) {
		case MSG_IDENTIFY:
			what = "* identified as ";
			break;
		case MSG_NEW_ROOM:
			what = "* created room ";
			break;
		case MSG_JOIN_ROOM:
			what = "* joined ";
			break;
		default:
			return -1;
		}
		break;
	case RES_USER_ALREADY_EXISTS:
		what = "! name already taken: ";
		break;
	case RES_NO_SUCH_USER:
		what = "! no such user: ";
		break;
	case RES_ROOM_ALREADY_EXISTS:
		what = "! room already exists: ";
		break;
	case RES_TOO_MANY_ROOMS:
		what = "! too many rooms on the server: ";
		break;
	case RES_NO_SUCH_ROOM:
		what = "! no such room: ";
		break;
	case RES_NOT_JOINED:
		what = "! not a member of room: ";
		break;
	case RES_NOT_INVITED:
		what = "! not invited to room: ";
		break;
	case RES_INVALID:
		out_puts(c, "! the server rejected a message as invalid");
		return 0;
	case RES_NOT_IDENTIFIED:
		out_puts(c, "! not identified: the server refused the "
		    "request");
		return 0;
	default:
		return -1;
	}
	if (!m->has_extra)
		return -1;
	out_puts(c, what);
	out_str(c, m->extra);
	return 0;
}

/* Renders one server message as a line; returns -1 if it has none. */
static int
render(struct client *c, const struct msg *m)
{
	switch (m->type) {
	case MSG_RESPONSE:
		return render_response(c, m);
	case MSG_NEW_USER:
		out_puts(c, "* ");
		out_str(c, m->username);
		out_puts(c, " connected");
		return 0;
	case MSG_NEW_STATUS:
		out_puts(c, "* ");
		out_str(c, m->username);
		out_puts(c, " is now ");
		out_str(c, m->status);
		return 0;
	case MSG_USER_LIST:
		out_puts(c, "users: ");
		out_users(c, m);
		return 0;
	case MSG_TEXT_FROM:
		out_puts(c, "[private] ");
		out_str(c, m->username);
		out_puts(c, ": ");
		out_str(c, m->text);
		return 0;
	case MSG_PUBLIC_TEXT_FROM:
		out_puts(c, "[public] ");
		out_str(c, m->username);
		out_puts(c, ": ");
		out_str(c, m->text);
		return 0;
	case MSG_INVITATION:
		out_puts(c, "* invitation from ");
		out_str(c, m->username);
		out_puts(c, " to ");
		out_str(c, m->roomname);
		out_puts(c, " (JOIN/");
		out_str(c, m->roomname);
		out_puts(c, " to accept)");
		return 0;
	case MSG_JOINED_ROOM:
		out_puts(c, "* ");
		out_str(c, m->username);
		out_puts(c, " joined ");
		out_str(c, m->roomname);
		return 0;
	case MSG_ROOM_USER_LIST:
		out_puts(c, "users in ");
		out_str(c, m->roomname);
		out_puts(c, ": ");
		out_users(c, m);
		return 0;
	case MSG_ROOM_TEXT_FROM:
		out_puts(c, "[");
		out_str(c, m->roomname);
		out_puts(c, "] ");
		out_str(c, m->username);
		out_puts(c, ": ");
		out_str(c, m->text);
		return 0;
	case MSG_LEFT_ROOM:
		out_puts(c, "* ");
		out_str(c, m->username);
		out_puts(c, " left ");
		out_str(c, m->roomname);
		return 0;
	case MSG_DISCONNECTED:
		out_puts(c, "* ");
		out_str(c, m->username);
		out_puts(c, " disconnected");
		return 0;
	default:
		return -1;
	}
}

/* Follows the reply to IDENTIFY. */
static void
identify_reply(struct client *c, const struct msg *m)
{
	if (c->state != ST_IDENT || m->type != MSG_RESPONSE ||
	    m->op != MSG_IDENTIFY)
		return;
	if (m->res == RES_SUCCESS) {
		ed_hide(c);
		c->state = ST_READY;
		ed_show(c);
		return;
	}
	if (m->res != RES_USER_ALREADY_EXISTS)
		return;
	if (!c->tty_in) {
		note(c, "the username %s is already taken", c->name);
		client_exit(c, 1);
	}
	ed_hide(c);
	ask_name(c);
}

/* Handles one line from the server. */
static void
server_line(struct client *c, const char *p, size_t len)
{
	struct msg	m;
	int		parsed;

	parsed = proto_parse_reply(&c->parser, p, len, &m) == 0;
	buf_reset(&c->out);
	if (c->mode == MODE_RAW || c->mode == MODE_JSON) {
		/* Exactly as received, unless a terminal could be driven. */
		if (c->tty_out)
			out_esc(c, p, len);
		else
			out_add(c, p, len);
	} else if (!parsed || render(c, &m) == -1) {
		buf_reset(&c->out);
		out_esc(c, p, len);
	}
	out_emit(c, stdout);
	if (parsed && c->mode != MODE_RAW)
		identify_reply(c, &m);
}

/* Reads from the server; returns -1 once the connection is gone. */
static int
server_read(struct client *c)
{
	const char		*line;
	char			*p;
	size_t			 avail, len;
	ssize_t			 n;
	enum frame_result	 r;

	if ((p = framer_space(&c->sock_in, READ_SIZE, &avail)) == NULL)
		err(1, "framer_space");
	n = read(c->fd, p, avail);
	if (n == -1) {
		if (errno == EINTR || errno == EAGAIN)
			return 0;
		if (errno != ECONNRESET)
			note(c, "read from server: %s", strerror(errno));
		return -1;
	}
	if (n == 0)
		return -1;
	framer_commit(&c->sock_in, n);
	for (;;) {
		r = framer_next(&c->sock_in, &line, &len);
		if (r == FRAME_NONE)
			break;
		if (r == FRAME_TOOLONG) {
			note(c, "the server sent a line that is too long");
			client_exit(c, 1);
		}
		server_line(c, line, len);
	}
	return 0;
}

/* Writes queued requests; returns -1 once the connection is gone. */
static int
server_write(struct client *c)
{
	ssize_t	n;

	n = send(c->fd, buf_head(&c->sock_out), buf_pending(&c->sock_out),
	    MSG_NOSIGNAL);
	if (n == -1) {
		if (errno == EINTR || errno == EAGAIN)
			return 0;
		return -1;
	}
	if (n == 0)
		return 0;
	buf_drain(&c->sock_out, n);
	return 0;
}

/* Ends the session once the server has closed the connection. */
static void
server_closed(struct client *c)
{
	if (c->said_bye || (c->mode == MODE_RAW && c->in_eof)) {
		note(c, "connection closed");
		client_exit(c, 0);
	}
	note(c, "connection closed by server");
	client_exit(c, 1);
}

/*
 * Connects to host and port with a time limit: each address in turn,
 * non-blocking, so an unreachable server never hangs the client.
 */
static int
net_connect(const char *host, const char *port)
{
	struct addrinfo	 hints, *res, *ai;
	struct pollfd	 pfd;
	socklen_t	 sl;
	long long	 deadline, left;
	int		 fd = -1, error, saved = ECONNREFUSED, soerr, n;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((error = getaddrinfo(host, port, &hints, &res)) != 0)
		errx(1, "%s port %s: %s", host, port, gai_strerror(error));
	deadline = clock_now_ms() + CONNECT_TIMEOUT_MS;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd == -1) {
			saved = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno != EINPROGRESS) {
			saved = errno;
			goto next;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		for (;;) {
			left = deadline - clock_now_ms();
			if (left <= 0) {
				n = 0;
				break;
			}
			n = poll(&pfd, 1, (int)left);
			if (n != -1 || errno != EINTR)
				break;
		}
		if (n == -1)
			err(1, "poll");
		if (n == 0) {
			saved = ETIMEDOUT;
			goto next;
		}
		sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == -1)
			err(1, "getsockopt");
		if (soerr == 0)
			break;
		saved = soerr;
next:
		if (close(fd) == -1)
			err(1, "close");
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		errx(1, "connect to %s port %s: %s", host, port,
		    strerror(saved));
	return fd;
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

/* Polls stdin and the socket until the session ends. */
static void
client_loop(struct client *c, const sigset_t *waitmask)
{
	struct pollfd	 pfd[2];
	struct timespec	 ts, *tsp;
	long long	 left;
	int		 n;

	for (;;) {
		if (got_term) {
			ed_hide(c);
			tty_restore();
			note(c, "%s", strsignal(got_term));
			client_exit(c, 1);
		}
		if (got_winch) {
			got_winch = 0;
			/* Most terminals rewrap the line to the new width. */
			c->ed.cols = tty_cols();
			ed_hide(c);
			ed_show(c);
		}
		pfd[0].fd = c->fd;
		pfd[0].events = POLLIN;
		if (buf_pending(&c->sock_out) > 0)
			pfd[0].events |= POLLOUT;
		pfd[1].fd = STDIN_FILENO;
		pfd[1].events = POLLIN;
		if (c->in_eof || !input_wanted(c) ||
		    buf_pending(&c->sock_out) > OUT_HIGH_WATER)
			pfd[1].fd = -1;
		tsp = NULL;
		if (c->state == ST_QUIT) {
			if (c->mode == MODE_RAW && !c->shut &&
			    buf_pending(&c->sock_out) == 0) {
				if (shutdown(c->fd, SHUT_WR) == -1 &&
				    errno != ENOTCONN)
					err(1, "shutdown");
				c->shut = 1;
			}
			left = c->deadline - clock_now_ms();
			if (left <= 0)
				client_exit(c, 0);
			ts.tv_sec = left / 1000;
			ts.tv_nsec = (left % 1000) * 1000000;
			tsp = &ts;
		}
		n = ppoll(pfd, 2, tsp, waitmask);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			err(1, "ppoll");
		}
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (server_read(c) == -1)
				server_closed(c);
		}
		if ((pfd[0].revents & POLLOUT) && server_write(c) == -1) {
			/*
			 * The peer is gone; drop what cannot be sent and let
			 * the read side collect its last lines and the close.
			 */
			buf_reset(&c->sock_out);
		}
		if (pfd[1].fd != -1 &&
		    (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			if (c->ed.active)
				ed_read(c);
			else
				input_read(c);
		}
		input_drain(c);
	}
}

/* Parses the options, connects, identifies and runs the session. */
int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "name",	required_argument,	NULL,	'n' },
		{ "json",	no_argument,		NULL,	'j' },
		{ "raw",	no_argument,		NULL,	'r' },
		{ "help",	no_argument,		NULL,	'h' },
		{ "version",	no_argument,		NULL,	'V' },
		{ NULL,		0,			NULL,	0 }
	};
	struct client	*c = &client;
	sigset_t	 waitmask;
	const char	*name = NULL, *errstr;
	int		 ch;

	c->mode = MODE_TEXT;
	while ((ch = getopt_long(argc, argv, "n:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			name = optarg;
			break;
		case 'j':
			c->mode = MODE_JSON;
			break;
		case 'r':
			c->mode = MODE_RAW;
			break;
		case 'h':
			usage(stdout, 0);
		case 'V':
			printf("%s %s\n", getprogname(), PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr, 1);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 2)
		usage(stderr, 1);
	c->host = argc > 0 ? argv[0] : DEFAULT_HOST;
	c->port = argc > 1 ? argv[1] : DEFAULT_PORT;
	if (c->port[strspn(c->port, "0123456789")] == '\0') {
		(void)strtonum(c->port, 1, 65535, &errstr);
		if (errstr != NULL)
			errx(1, "port %s is %s", c->port, errstr);
	}
	if (c->mode == MODE_RAW && name != NULL)
		errx(1, "--raw sends no IDENTIFY: it takes no --name");

	framer_init(&c->sock_in, SERVER_MAX_LINE);
	framer_init(&c->std_in, INPUT_MAX_LINE);
	/* Typed text is not JSON: "{x} y" is one line, not two frames. */
	framer_lines_only(&c->std_in);
	buf_init(&c->sock_out);
	buf_init(&c->out);
	buf_init(&c->ed.pend);
	proto_parser_init(&c->parser, NULL);
	c->tty_in = isatty(STDIN_FILENO);
	c->tty_out = isatty(STDOUT_FILENO);
	c->fd = net_connect(c->host, c->port);
	signals_setup(&waitmask);

	if (c->mode != MODE_RAW && c->tty_in && c->tty_out &&
	    tty_setraw() == 0) {
		c->ed.active = 1;
		c->ed.cols = tty_cols();
	}
	if (c->mode == MODE_RAW)
		c->state = ST_READY;
	else if (name != NULL) {
		if (!name_ok(name, strlen(name)) ||
		    strlcpy(c->name, name, sizeof(c->name)) >=
		    sizeof(c->name))
			errx(1, "invalid username: %s", name);
		send_identify(c);
	} else
		ask_name(c);
	client_loop(c, &waitmask);
	return 1;
}
