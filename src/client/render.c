/*
 * render.c: what the client prints.  Each server message becomes
 * one readable line with every byte from the network escaped; the
 * client's own requests are echoed as sent, since the server does not
 * send a sender its own texts back.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "utf8.h"

/* Adds n bytes to the output line; running out of memory is fatal. */
void
out_add(struct client *c, const void *p, size_t n)
{
	if (buf_append(&c->out, p, n) == -1)
		err(1, "buf_append");
}

/* Adds a C string to the output line as it is. */
void
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
void
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
void
out_str(struct client *c, struct str s)
{
	out_esc(c, s.p, s.len);
}

/* Adds a name as a command must spell it: '/' and '\' get a '\'. */
static void
out_cmdname(struct client *c, struct str s)
{
	size_t	i, from = 0;

	for (i = 0; i < s.len; i++) {
		if (s.p[i] != '/' && s.p[i] != '\\')
			continue;
		out_esc(c, s.p + from, i - from);
		out_puts(c, "\\");
		from = i;
	}
	out_esc(c, s.p + from, s.len - from);
}

/* Prints the output line on f, keeping the edited line intact. */
void
out_emit(struct client *c, FILE *f)
{
	edit_hide(c);
	out_add(c, "\n", 1);
	if (f != stdout)
		out_flush();
	if (fwrite(buf_head(&c->out), 1, buf_pending(&c->out), f) !=
	    buf_pending(&c->out) || fflush(f) == EOF) {
		edit_stop(c);
		_exit(1);
	}
	buf_reset(&c->out);
	edit_show(c);
}

/* Prints one note of the client itself on stderr, prefixed by its name. */
void
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

/* Prints the client's own request as the others see it. */
void
echo_sent(struct client *c, const struct msg *m)
{
	if (c->mode != MODE_TEXT)
		return;
	buf_reset(&c->out);
	switch (m->type) {
	case MSG_PUBLIC_TEXT:
		out_puts(c, "[public] ");
		break;
	case MSG_TEXT:
		out_puts(c, "[private] ");
		break;
	case MSG_ROOM_TEXT:
		out_puts(c, "[");
		out_str(c, m->roomname);
		out_puts(c, "] ");
		break;
	case MSG_STATUS:
		out_puts(c, "* ");
		out_esc(c, c->name, strlen(c->name));
		out_puts(c, " is now ");
		out_str(c, m->status);
		out_emit(c, stdout);
		return;
	default:
		return;
	}
	out_esc(c, c->name, strlen(c->name));
	if (m->type == MSG_TEXT) {
		out_puts(c, " -> ");
		out_str(c, m->username);
	}
	out_puts(c, ": ");
	out_str(c, m->text);
	out_emit(c, stdout);
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

/* Returns the prefix for a RESPONSE of SUCCESS, or NULL. */
static const char *
response_success(const struct msg *m)
{
	switch (m->op) {
	case MSG_IDENTIFY:
		return "* identified as ";
	case MSG_NEW_ROOM:
		return "* created room ";
	case MSG_JOIN_ROOM:
		return "* joined ";
	default:
		return NULL;
	}
}

/* Renders a RESPONSE; returns -1 if it has no rendering. */
static int
render_response(struct client *c, const struct msg *m)
{
	static const char *const what[] = {
		[RES_USER_ALREADY_EXISTS] = "! name already taken: ",
		[RES_NO_SUCH_USER] = "! no such user: ",
		[RES_ROOM_ALREADY_EXISTS] = "! room already exists: ",
		[RES_TOO_MANY_ROOMS] = "! too many rooms on the server: ",
		[RES_NO_SUCH_ROOM] = "! no such room: ",
		[RES_NOT_JOINED] = "! not a member of room: ",
		[RES_NOT_INVITED] = "! not invited to room: ",
	};
	const char	*w = NULL;

	if (m->res == RES_INVALID) {
		out_puts(c, "! the server rejected a message as invalid");
		return 0;
	}
	if (m->res == RES_NOT_IDENTIFIED) {
		out_puts(c, "! not identified: the server refused the "
		    "request");
		return 0;
	}
	if (m->res == RES_SUCCESS)
		w = response_success(m);
	else if ((size_t)m->res < sizeof(what) / sizeof(what[0]))
		w = what[m->res];
	if (w == NULL || !m->has_extra)
		return -1;
	out_puts(c, w);
	out_str(c, m->extra);
	return 0;
}

/* Adds "* NAME WHAT ROOM" for the room events. */
static void
out_event(struct client *c, const struct msg *m, const char *what)
{
	out_puts(c, "* ");
	out_str(c, m->username);
	out_puts(c, what);
	out_str(c, m->roomname);
}

/* Renders the messages about a room; returns -1 if it has none. */
static int
render_room(struct client *c, const struct msg *m)
{
	switch (m->type) {
	case MSG_INVITATION:
		out_puts(c, "* invitation from ");
		out_str(c, m->username);
		out_puts(c, " to ");
		out_str(c, m->roomname);
		out_puts(c, " (JOIN/");
		out_cmdname(c, m->roomname);
		out_puts(c, " to accept)");
		return 0;
	case MSG_JOINED_ROOM:
		out_event(c, m, " joined ");
		return 0;
	case MSG_LEFT_ROOM:
		out_event(c, m, " left ");
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
	default:
		return -1;
	}
}

/* Renders one server message as a line; returns -1 if it has none. */
static int
render(struct client *c, const struct msg *m)
{
	switch (m->type) {
	case MSG_RESPONSE:
		return render_response(c, m);
	case MSG_NEW_USER:
	case MSG_DISCONNECTED:
		out_puts(c, "* ");
		out_str(c, m->username);
		out_puts(c, m->type == MSG_NEW_USER ? " connected" :
		    " disconnected");
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
	case MSG_PUBLIC_TEXT_FROM:
		out_puts(c, m->type == MSG_TEXT_FROM ? "[private] " :
		    "[public] ");
		out_str(c, m->username);
		out_puts(c, ": ");
		out_str(c, m->text);
		return 0;
	default:
		return render_room(c, m);
	}
}

/* Says why the server refused the name; asks again on a terminal. */
static void
name_refused(struct client *c)
{
	size_t	cp = utf8_count(c->name, strlen(c->name));

	if (cp > PROTO_MAX_NAME)
		note(c, "invalid username: %s is %zu characters, more than "
		    "the server takes (%d unless it was configured "
		    "otherwise)", c->name, cp, PROTO_MAX_NAME);
	else
		note(c, "invalid username: the server refused %s", c->name);
	if (!c->tty_in)
		client_exit(c, 1);
	/* The server closes the connection: talknet.c opens a new one. */
	c->retry = 1;
}

/* Returns 1 for the reply the server closes the connection after. */
static int
is_refusal(const struct msg *m)
{
	return m->type == MSG_RESPONSE && m->op == MSG_NONE &&
	    (m->res == RES_INVALID || m->res == RES_NOT_IDENTIFIED);
}

/* Follows the reply to IDENTIFY. */
static void
identify_reply(struct client *c, const struct msg *m)
{
	if (c->state != ST_IDENT)
		return;
	if (is_refusal(m)) {
		name_refused(c);
		return;
	}
	if (m->type != MSG_RESPONSE || m->op != MSG_IDENTIFY)
		return;
	if (m->res == RES_SUCCESS) {
		c->state = ST_READY;
		edit_prompt(c);
		return;
	}
	if (m->res != RES_USER_ALREADY_EXISTS)
		return;
	if (!c->tty_in) {
		note(c, "the username %s is already taken", c->name);
		client_exit(c, 1);
	}
	ask_name(c);
}

/* Handles one line from the server. */
void
server_line(struct client *c, const char *p, size_t len)
{
	struct msg	m;
	int		parsed;

	parsed = proto_parse_reply(&c->parser, p, len, &m) == 0;
	if (parsed && is_refusal(&m))
		c->refused = 1;
	buf_reset(&c->out);
	if (c->mode == MODE_RAW || c->mode == MODE_JSON) {
		/* Exactly as received, unless a terminal could be driven. */
		if (c->tty_out)
			out_esc(c, p, len);
		else
			out_add(c, p, len);
		out_emit(c, stdout);
	} else if (!(parsed && is_refusal(&m) && c->state == ST_IDENT)) {
		/* A refused name gets its own note from identify_reply. */
		if (!parsed || render(c, &m) == -1) {
			buf_reset(&c->out);
			out_esc(c, p, len);
		}
		out_emit(c, stdout);
	}
	if (parsed && c->mode != MODE_RAW)
		identify_reply(c, &m);
}
