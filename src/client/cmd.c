/*
 * cmd.c: input lines to requests.  The first line is the user
 * name; after it, each line is one command of the original TalkNet
 * client (see the table below), or a raw protocol message.  In a name,
 * a backslash takes the next character as it is, so that "txfrom/a\/b/hi"
 * reaches the user "a/b".
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <err.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "client.h"
#include "compat.h"
#include "utf8.h"

const char help_text[] =
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
"  quit/ or /quit             disconnect and exit (DISCONNECT)\n"
"  {...}                      send a raw protocol message as it is\n"
"  help/ or /help             show this table\n"
"in a USER or ROOM, write '/' as '\\/' and '\\' as '\\\\'\n";

struct command {
	const char	*word;
	int		 whole;		/* the word is the whole line */
	enum msg_type	 type;		/* the request it sends, if one */
	int		(*run)(struct client *, enum msg_type, const char *,
			    size_t);
};

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

/* Waits, at most QUIT_TIMEOUT_MS, for the server to close. */
static void
await_close(struct client *c)
{
	c->said_bye = 1;
	c->state = ST_QUIT;
	c->deadline = clock_now_ms() + QUIT_TIMEOUT_MS;
}

/* Sends DISCONNECT and waits for the close. */
void
send_quit(struct client *c)
{
	struct msg	m = { .type = MSG_DISCONNECT };

	send_msg(c, &m);
	await_close(c);
}

/* Sends IDENTIFY with the chosen name. */
void
send_identify(struct client *c)
{
	struct msg	m = { .type = MSG_IDENTIFY };

	m.username = str_c(c->name);
	send_msg(c, &m);
	c->state = ST_IDENT;
	edit_prompt(c);
}

/* Asks for a user name: the editor's prompt, or one on stderr. */
void
ask_name(struct client *c)
{
	c->state = ST_NAME;
	if (c->editing) {
		edit_prompt(c);
		return;
	}
	if (c->tty_in) {
		fputs("username: ", stderr);
		(void)fflush(stderr);
	}
}

/* Returns 1 if p[0..len) can be sent as a user or room name. */
int
name_ok(const char *p, size_t len)
{
	return len > 0 && utf8_name_valid(p, len, len);
}

/* Takes the line the user gave as a name. */
static void
input_name(struct client *c, const char *p, size_t len)
{
	const char	*why = NULL;

	if (len >= sizeof(c->name))
		why = "it is too long";
	else if (!name_ok(p, len))
		why = "it must be printable";
	if (why != NULL) {
		note(c, "invalid username: %s", why);
		if (!c->tty_in)
			client_exit(c, 1);
		ask_name(c);
		return;
	}
	memcpy(c->name, p, len);
	c->name[len] = '\0';
	send_identify(c);
}

/* Returns the end of the name starting at i: the first unescaped stop. */
static size_t
name_end(const char *p, size_t len, size_t i, const char *stop)
{
	while (i < len && strchr(stop, p[i]) == NULL) {
		if (p[i] == '\\' && i + 1 < len)
			i++;
		i++;
	}
	return i;
}

/* Undoes the escapes of p[0..len) into out, which is len bytes. */
static int
name_take(const char *p, size_t len, char *out, struct str *s)
{
	size_t	i, n = 0;

	for (i = 0; i < len; i++) {
		if (p[i] == '\\' && i + 1 < len)
			i++;
		out[n++] = p[i];
	}
	s->p = out;
	s->len = n;
	return name_ok(out, n) ? 0 : -1;
}

/* Splits "NAME/text": *name gets the name unescaped into tmp. */
static int
split_name(const char *p, size_t len, char *tmp, struct str *name,
    struct str *text)
{
	size_t	end = name_end(p, len, 0, "/");

	if (end >= len || name_take(p, end, tmp, name) == -1)
		return -1;
	text->p = p + end + 1;
	text->len = len - end - 1;
	return 0;
}

/* Skips spaces and tabs. */
static size_t
skip_space(const char *p, size_t len, size_t i)
{
	while (i < len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i;
}

/* Parses "<user1 user2 ...>" at *ip into users, names into tmp. */
static int
invite_users(const char *p, size_t len, size_t *ip, char *tmp,
    struct str **users, size_t *n)
{
	size_t	i = *ip, j, cap = 0, used = 0;

	if (i >= len || p[i] != '<')
		return -1;
	for (i++;;) {
		i = skip_space(p, len, i);
		if (i >= len)
			return -1;
		if (p[i] == '>')
			break;
		j = name_end(p, len, i, " \t>");
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			*users = reallocarray(*users, cap, sizeof(**users));
			if (*users == NULL)
				err(1, "reallocarray");
		}
		if (name_take(p + i, j - i, tmp + used, &(*users)[*n]) == -1)
			return -1;
		used += j - i;
		(*n)++;
		i = j;
	}
	*ip = i + 1;
	return *n > 0 ? 0 : -1;
}

/* Parses and sends "INVITE/ <user1 user2 ...> <ROOM>". */
static int
cmd_invite(struct client *c, enum msg_type type, const char *p, size_t len)
{
	struct msg	 m = { .type = type };
	struct str	*users = NULL;
	size_t		 i, end, n = 0;
	char		*tmp;
	int		 rv = -1;

	/* The user names, then the room name, each unescaped. */
	if ((tmp = malloc(2 * len + 2)) == NULL)
		err(1, "malloc");
	i = skip_space(p, len, 0);
	if (invite_users(p, len, &i, tmp, &users, &n) == -1)
		goto done;
	i = skip_space(p, len, i);
	for (end = len; end > i && (p[end - 1] == ' ' || p[end - 1] == '\t');
	    end--)
		;
	if (i >= end || p[i] != '<' || p[end - 1] != '>' || end - i < 2 ||
	    name_take(p + i + 1, end - i - 2, tmp + len + 1, &m.roomname) == -1)
		goto done;
	m.list = users;
	m.nlist = n;
	send_msg(c, &m);
	rv = 0;
done:
	free(users);
	free(tmp);
	return rv;
}

/*
 * A request that names a room or a user: "room/ROOM", "JOIN/ROOM",
 * "ROOM_CONTENT/ROOM", "LEAVE/ROOM"; and the texts "txfrom/USER/text" and
 * "TX_ROOM/ROOM/text", which are echoed.
 */
static int
cmd_named(struct client *c, enum msg_type type, const char *p, size_t len)
{
	struct msg	 m = { .type = type };
	char		*tmp;
	int		 rv;

	if ((tmp = malloc(len + 1)) == NULL)
		err(1, "malloc");
	if (type == MSG_TEXT)
		rv = split_name(p, len, tmp, &m.username, &m.text);
	else if (type == MSG_ROOM_TEXT)
		rv = split_name(p, len, tmp, &m.roomname, &m.text);
	else
		rv = name_take(p, len, tmp, &m.roomname);
	if (rv == 0) {
		send_msg(c, &m);
		if (type == MSG_TEXT || type == MSG_ROOM_TEXT)
			echo_sent(c, &m);
	}
	free(tmp);
	return rv;
}

/*
 * ">text" to everyone, and "status/AWAY": the rest of the line is the
 * text or the status.  Both are echoed: the server sends a text to the
 * others only, and tells only the others of a new status.
 */
static int
cmd_rest(struct client *c, enum msg_type type, const char *p, size_t len)
{
	struct msg	m = { .type = type };
	int		st = STATUS_ACTIVE;

	if (type == MSG_STATUS && (st = proto_status_lookup(p, len)) == -1)
		return -1;
	m.st = (enum user_status)st;
	if (type == MSG_STATUS)
		m.status = (struct str){ p, len };
	else
		m.text = (struct str){ p, len };
	send_msg(c, &m);
	echo_sent(c, &m);
	return 0;
}

/* "all/": a request with nothing but its type. */
static int
cmd_bare(struct client *c, enum msg_type type, const char *p __unused,
    size_t len __unused)
{
	struct msg	m = { .type = type };

	send_msg(c, &m);
	return 0;
}

/* "quit/" and "/quit". */
static int
cmd_quit(struct client *c, enum msg_type type __unused,
    const char *p __unused, size_t len __unused)
{
	send_quit(c);
	return 0;
}

/* "help/" and "/help". */
static int
cmd_help(struct client *c, enum msg_type type __unused,
    const char *p __unused, size_t len __unused)
{
	buf_reset(&c->out);
	out_add(c, help_text, sizeof(help_text) - 2);
	out_emit(c, stdout);
	return 0;
}

/* A raw protocol line; a raw DISCONNECT still ends the session cleanly. */
static int
cmd_raw(struct client *c, enum msg_type type __unused, const char *p,
    size_t len)
{
	struct msg	m;

	send_line(c, p, len);
	if (proto_parse_request(&c->parser, p, len, &m) == 0 &&
	    m.type == MSG_DISCONNECT)
		await_close(c);
	return 0;
}

static const struct command commands[] = {
	{ ">",			0,	MSG_PUBLIC_TEXT,	cmd_rest },
	{ "all/",		1,	MSG_USERS,		cmd_bare },
	{ "quit/",		1,	MSG_DISCONNECT,		cmd_quit },
	{ "/quit",		1,	MSG_DISCONNECT,		cmd_quit },
	{ "help/",		1,	MSG_NONE,		cmd_help },
	{ "/help",		1,	MSG_NONE,		cmd_help },
	{ "txfrom/",		0,	MSG_TEXT,		cmd_named },
	{ "room/",		0,	MSG_NEW_ROOM,		cmd_named },
	{ "INVITE/",		0,	MSG_INVITE,		cmd_invite },
	{ "JOIN/",		0,	MSG_JOIN_ROOM,		cmd_named },
	{ "ROOM_CONTENT/",	0,	MSG_ROOM_USERS,		cmd_named },
	{ "TX_ROOM/",		0,	MSG_ROOM_TEXT,		cmd_named },
	{ "LEAVE/",		0,	MSG_LEAVE_ROOM,		cmd_named },
	{ "status/",		0,	MSG_STATUS,		cmd_rest },
	{ "{",			0,	MSG_NONE,		NULL },
};

/* Runs one command line typed or piped while identified. */
static void
input_command(struct client *c, const char *p, size_t len)
{
	const struct command	*cmd;
	size_t			 i, n;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		cmd = &commands[i];
		n = strlen(cmd->word);
		if (len < n || memcmp(p, cmd->word, n) != 0 ||
		    (cmd->whole && len != n))
			continue;
		if (cmd->run == NULL) {
			(void)cmd_raw(c, MSG_NONE, p, len);
			return;
		}
		if (cmd->run(c, cmd->type, p + n, len - n) == -1)
			note(c, "malformed command, not sent (help/ shows "
			    "its syntax)");
		return;
	}
	note(c, "unknown command, not sent (help/ lists the commands)");
}

/* Handles one complete input line. */
void
input_line(struct client *c, const char *p, size_t len)
{
	if (c->mode == MODE_RAW) {
		(void)cmd_raw(c, MSG_NONE, p, len);
		return;
	}
	if (len > 0 && p[len - 1] == '\r')
		len--;		/* a CRLF line, from a file or nc -C */
	if (len == 0 || (c->state == ST_NAME &&
	    skip_space(p, len, 0) == len))
		return;		/* not a name, and not a command */
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
int
input_wanted(struct client *c)
{
	if (c->retry)
		return 0;
	if (c->mode == MODE_RAW)
		return c->state != ST_QUIT;
	return c->state == ST_NAME || c->state == ST_READY;
}

/* Ends the input: DISCONNECT once identified, or exit before that. */
void
input_end(struct client *c)
{
	if (c->mode == MODE_RAW) {
		c->state = ST_QUIT;
		c->deadline = clock_now_ms() + QUIT_TIMEOUT_MS;
		return;
	}
	switch (c->state) {
	case ST_NAME:
		if (!c->editing)
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
void
input_drain(struct client *c)
{
	const char		*line;
	size_t			 len;
	enum frame_result	 r;

	if (c->editing) {
		edit_drain(c);
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
void
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
