/*
 * irc.c: the IRC side of the classic workloads, for servers such
 * as ngircd: NICK and USER, JOIN of one channel, PRIVMSG, PING, QUIT,
 * and the numerics that steer the set-up.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <ctype.h>
#include <err.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "bench.h"

static void	 irc_send(struct bench *, struct conn *, const char *, ...)
		    __attribute__((__format__(__printf__, 3, 4)));

/* Queues one IRC line (CRLF added) and writes it. */
static void
irc_send(struct bench *b, struct conn *c, const char *fmt, ...)
{
	va_list	ap;
	int	len;

	if (c->fd < 0)
		return;
	buf_reset(&b->line);
	if (buf_reserve(&b->line, 1024) == -1)
		err(1, "buf_reserve");
	va_start(ap, fmt);
	len = vsnprintf(b->line.data, 1022, fmt, ap);
	va_end(ap);
	if (len < 0 || len > 1021)
		errx(1, "IRC line too long");
	memcpy(b->line.data + len, "\r\n", 2);
	if (buf_append(&c->out, b->line.data, (size_t)len + 2) == -1)
		err(1, "buf_append");
	conn_flush(b, c);
}

/* Sends NICK and USER. */
static void
irc_hello(struct bench *b, struct conn *c)
{
	irc_send(b, c, "NICK %s\r\nUSER %s 0 * :talknet-bench", c->name,
	    c->name);
}

/* Sends QUIT. */
static void
irc_bye(struct bench *b, struct conn *c)
{
	irc_send(b, c, "QUIT :bye");
}

/* Over IRC a fanout is always in a channel: JOINs it. */
static int
irc_enter(struct bench *b, struct conn *c)
{
	conn_set_state(b, c, C_JOINING);
	irc_send(b, c, "JOIN #%s", b->room);
	return 1;
}

/* Sends PRIVMSG to one client, or (to NULL) to the channel. */
static void
irc_text(struct bench *b, struct conn *c, const struct conn *to,
    const char *text, size_t len)
{
	if (to != NULL)
		irc_send(b, c, "PRIVMSG %s :%.*s", to->name, (int)len, text);
	else
		irc_send(b, c, "PRIVMSG #%s :%.*s", b->room, (int)len, text);
}

/* Splits the next space-separated IRC word off *p. */
const char *
irc_word(const char **p, const char *end, size_t *len)
{
	const char	*s = *p, *w;

	while (s < end && *s == ' ')
		s++;
	w = s;
	while (s < end && *s != ' ')
		s++;
	*len = (size_t)(s - w);
	*p = s;
	return w;
}

/* Handles one IRC line: PING, registration, JOIN, PRIVMSG, errors. */
static void
irc_line(struct bench *b, struct conn *c, const char *line, size_t len,
    int64_t now)
{
	const char	*p = line, *end = line + len, *cmd, *w;
	size_t		 clen, wlen;
	int		 num;

	if (*p == ':') {
		irc_word(&p, end, &wlen);	/* the prefix */
	}
	cmd = irc_word(&p, end, &clen);
	if (clen == 7 && memcmp(cmd, "PRIVMSG", 7) == 0) {
		irc_word(&p, end, &wlen);	/* the target */
		while (p < end && *p == ' ')
			p++;
		if (p < end && *p == ':')
			p++;
		bench_on_text(b, c, p, (size_t)(end - p), now);
		return;
	}
	if (clen == 4 && memcmp(cmd, "PING", 4) == 0) {
		irc_send(b, c, "PONG%.*s", (int)(end - p), p);
		return;
	}
	if (clen == 5 && memcmp(cmd, "ERROR", 5) == 0) {
		if (c->st != C_QUITTING) {
			b->server_errors++;
			rs_note(&b->rs, "client %u: %.*s", c->idx, (int)len,
			    line);
		}
		return;
	}
	if (clen != 3 || !isdigit((unsigned char)cmd[0]) ||
	    !isdigit((unsigned char)cmd[1]) || !isdigit((unsigned char)cmd[2]))
		return;
	if (c->st == C_QUITTING || b->ph >= PH_TEARDOWN)
		return;
	num = (cmd[0] - '0') * 100 + (cmd[1] - '0') * 10 + (cmd[2] - '0');
	switch (num) {
	case 1:		/* RPL_WELCOME */
		if (c->st == C_REGISTER)
			conn_identified(b, c, now);
		return;
	case 366:	/* RPL_ENDOFNAMES */
		if (c->st == C_JOINING)
			conn_ready(b, c, now);
		return;
	case 432:	/* ERR_ERRONEUSNICKNAME */
	case 433:	/* ERR_NICKNAMEINUSE */
		if (c->st == C_REGISTER && c->attempt + 1 < NAME_ATTEMPTS) {
			c->attempt++;
			conn_name(b, c);
			irc_send(b, c, "NICK %s", c->name);
			return;
		}
		break;
	default:
		if (num < 400 || num >= 600)
			return;
		break;
	}
	w = irc_word(&p, end, &wlen);	/* our nick */
	(void)w;
	b->server_errors++;
	rs_note(&b->rs, "client %u (%s): %.*s", c->idx, conn_label(c),
	    (int)len, line);
	if (b->ph == PH_SETUP && c->st != C_READY)
		rs_fail(&b->rs, "%s", b->rs.note);
}

/* The IRC wire, for --proto irc. */
const struct wire wire_irc = {
	.hello = irc_hello, .bye = irc_bye, .enter = irc_enter,
	.text = irc_text, .line = irc_line
};
