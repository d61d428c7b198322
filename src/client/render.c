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

/*
 * Counts the terminal columns of p[0..len): one per code point.  Both
 * line editors measure the prompt and the line with it.
 */
size_t
text_cols(const char *p, size_t len)
{
	size_t	i, n = 0;

	for (i = 0; i < len; i++)
		if (((unsigned char)p[i] & 0xc0) != 0x80)
			n++;
	return n;
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

/*
 * The line a RESPONSE is shown as, by its result and, for SUCCESS, its
 * operation (MSG_NONE: any).  out_line puts the fields in.
 */
static const struct {
	enum result	 res;
	enum msg_type	 op;
	const char	*line;
} responses[] = {
	{ RES_INVALID, MSG_NONE, "! the server rejected a message as invalid" },
	{ RES_NOT_IDENTIFIED, MSG_NONE,
	    "! not identified: the server refused the request" },
	{ RES_SUCCESS, MSG_IDENTIFY, "* identified as %x" },
	{ RES_SUCCESS, MSG_NEW_ROOM, "* created room %x" },
	{ RES_SUCCESS, MSG_JOIN_ROOM, "* joined %x" },
	{ RES_USER_ALREADY_EXISTS, MSG_NONE, "! name already taken: %x" },
	{ RES_NO_SUCH_USER, MSG_NONE, "! no such user: %x" },
	{ RES_ROOM_ALREADY_EXISTS, MSG_NONE, "! room already exists: %x" },
	{ RES_TOO_MANY_ROOMS, MSG_NONE, "! too many rooms on the server: %x" },
	{ RES_NO_SUCH_ROOM, MSG_NONE, "! no such room: %x" },
	{ RES_NOT_JOINED, MSG_NONE, "! not a member of room: %x" },
	{ RES_NOT_INVITED, MSG_NONE, "! not invited to room: %x" },
};

/*
 * The line every other message is shown as.  A server message is
 * rendered; a request of the client's own (PUBLIC_TEXT, TEXT, ROOM_TEXT,
 * STATUS) is echoed, since the server does not send it back.
 */
static const struct {
	enum msg_type	 type;
	const char	*line;
} lines[] = {
	{ MSG_NEW_USER, "* %u connected" },
	{ MSG_DISCONNECTED, "* %u disconnected" },
	{ MSG_NEW_STATUS, "* %u is now %s" },
	{ MSG_USER_LIST, "users: %l" },
	{ MSG_TEXT_FROM, "[private] %u: %t" },
	{ MSG_PUBLIC_TEXT_FROM, "[public] %u: %t" },
	{ MSG_INVITATION, "* invitation from %u to %r (JOIN/%c to accept)" },
	{ MSG_JOINED_ROOM, "* %u joined %r" },
	{ MSG_LEFT_ROOM, "* %u left %r" },
	{ MSG_ROOM_USER_LIST, "users in %r: %l" },
	{ MSG_ROOM_TEXT_FROM, "[%r] %u: %t" },
	{ MSG_PUBLIC_TEXT, "[public] %n: %t" },
	{ MSG_TEXT, "[private] %n -> %u: %t" },
	{ MSG_ROOM_TEXT, "[%r] %n: %t" },
	{ MSG_STATUS, "* %n is now %s" },
};

/* Returns the line m is shown as, or NULL if it has none. */
static const char *
line_of(const struct msg *m)
{
	const char	*l = NULL;
	size_t		 i;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		if (lines[i].type == m->type)
			return lines[i].line;
	if (m->type != MSG_RESPONSE)
		return NULL;
	for (i = 0; l == NULL && i < sizeof(responses) / sizeof(responses[0]);
	    i++)
		if (responses[i].res == m->res && (responses[i].op ==
		    MSG_NONE || responses[i].op == m->op))
			l = responses[i].line;
	/* A response that names its subject needs the "extra" key. */
	if (l != NULL && strstr(l, "%x") != NULL && !m->has_extra)
		return NULL;
	return l;
}

/*
 * Adds line l with the fields of m put in: %u the user name, %r the room
 * name, %c the room name as a command spells it, %t the text, %s the
 * status, %x the response's extra, %l the user list, %n our own name.
 */
static void
out_line(struct client *c, const struct msg *m, const char *l)
{
	static const char	 keys[] = "urtsx";
	const struct str	 f[] = {
		m->username, m->roomname, m->text, m->status, m->extra
	};
	const char		*pct, *k;

	while ((pct = strchr(l, '%')) != NULL && pct[1] != '\0') {
		out_add(c, l, pct - l);
		if ((k = memchr(keys, pct[1], sizeof(keys) - 1)) != NULL)
			out_str(c, f[k - keys]);
		else if (pct[1] == 'c')
			out_cmdname(c, m->roomname);
		else if (pct[1] == 'l')
			out_users(c, m);
		else if (pct[1] == 'n')
			out_esc(c, c->name, strlen(c->name));
		l = pct + 2;
	}
	out_puts(c, l);
}

/* Renders one server message as a line; returns -1 if it has none. */
static int
render(struct client *c, const struct msg *m)
{
	const char	*l;

	if ((l = line_of(m)) == NULL)
		return -1;
	out_line(c, m, l);
	return 0;
}

/* Prints the client's own request as the others see it. */
void
echo_sent(struct client *c, const struct msg *m)
{
	const char	*l;

	if (c->mode != MODE_TEXT)
		return;
	buf_reset(&c->out);
	if ((l = line_of(m)) == NULL)
		return;
	out_line(c, m, l);
	out_emit(c, stdout);
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
