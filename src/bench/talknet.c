/*
 * talknet.c: the TalkNet side of the classic workloads.  Requests
 * are built with the lib/ codec (proto_encode).  Of the server's lines,
 * texts, the hot path, are found by their type (proto_peek_type) and a
 * light scan for their "text"; RESPONSE and INVITATION, which steer the
 * set-up, go through proto_parse_reply; the rest are skipped unread.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1	/* memmem(), memrchr() */
#endif

#include <err.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "proto.h"
#include "bench.h"

#define INVITE_CHUNK		100	/* names per INVITE */
#define PROBE_NS		(50 * MS)	/* between two USERS of a node */

/* Encodes one TalkNet request and writes it. */
static void
talknet_send(struct bench *b, struct conn *c, const struct msg *m)
{
	if (c->fd < 0)
		return;
	if (proto_encode(&c->out, m) == -1)
		err(1, "proto_encode");
	conn_flush(b, c);
}

/* Sends IDENTIFY with the connection's name. */
static void
talknet_hello(struct bench *b, struct conn *c)
{
	struct msg	m;

	memset(&m, 0, sizeof(m));
	m.type = MSG_IDENTIFY;
	m.username = str_c(c->name);
	talknet_send(b, c, &m);
}

/* Sends DISCONNECT. */
static void
talknet_bye(struct bench *b, struct conn *c)
{
	struct msg	m;

	memset(&m, 0, sizeof(m));
	m.type = MSG_DISCONNECT;
	talknet_send(b, c, &m);
}

/*
 * A fanout in a room: once everyone is known, the creator makes the
 * room, then invites the others (talknet_response).  Without --room
 * everyone is ready at once.
 */
static int
talknet_enter(struct bench *b, struct conn *c)
{
	struct msg	m;

	(void)c;
	if (!b->o->room)
		return 0;
	/* Once: after a sync every client enters at the same moment. */
	if (b->nident == b->n && b->c[0].st == C_IDENT) {
		memset(&m, 0, sizeof(m));
		m.type = MSG_NEW_ROOM;
		m.roomname = str_c(b->room);
		conn_set_state(b, &b->c[0], C_JOINING);
		talknet_send(b, &b->c[0], &m);
	}
	return 1;
}

/*
 * Over several nodes: client k (k < nodes) is the first on node k, and
 * asks it USERS until the list holds every client of the run, PROBE_NS
 * apart; once every node has, everyone enters.  A name another node
 * granted reaches this node's table through its stream a moment later,
 * and a TEXT, INVITE or JOIN_ROOM naming a client not there yet fails.
 */
static void
talknet_sync(struct bench *b, int64_t now)
{
	struct msg	m;
	unsigned int	k, nprobe = b->tg.n < b->n ? b->tg.n : b->n;

	for (k = 0; k < nprobe && b->unsynced > 0; k++) {
		if (b->probe_at[k] <= 0 || b->probe_at[k] > now)
			continue;	/* asked, done, or not yet */
		memset(&m, 0, sizeof(m));
		m.type = MSG_USERS;
		b->probe_at[k] = 0;
		talknet_send(b, &b->c[k], &m);
	}
	if (b->unsynced > 0)
		return;
	for (k = 0; k < b->n; k++)
		if (b->c[k].st == C_IDENT)
			conn_enter(b, &b->c[k], now);
}

/* A node's USER_LIST: done if it names every client, else asked again. */
static void
talknet_user_list(struct bench *b, struct conn *c, const struct msg *m,
    int64_t now)
{
	const struct str	*u;
	const char		*p;
	unsigned int		 found = 0, i;
	size_t			 j, k;

	if (c->idx >= b->tg.n || b->unsynced == 0 || b->probe_at[c->idx] != 0)
		return;
	for (j = 0; j < m->nlist; j++) {
		/* Our names: a letter, then the client's index. */
		u = &m->list[2 * j];
		for (p = u->p + 1, i = 0, k = 1; k < u->len && k < 8 &&
		    (unsigned char)(*p - '0') <= 9; k++, p++)
			i = i * 10 + (unsigned int)(*p - '0');
		if (k == u->len && k > 1 && i < b->n &&
		    strlen(b->c[i].name) == u->len &&
		    memcmp(b->c[i].name, u->p, u->len) == 0)
			found++;
	}
	if (found == b->n) {
		b->probe_at[c->idx] = -1;
		b->unsynced--;
	} else {
		b->probe_at[c->idx] = now + PROBE_NS;
	}
	talknet_sync(b, now);
}

/* Sends TEXT to one client, or ROOM_TEXT or PUBLIC_TEXT (to NULL). */
static void
talknet_text_to(struct bench *b, struct conn *c, const struct conn *to,
    const char *text, size_t len)
{
	struct msg	m;

	memset(&m, 0, sizeof(m));
	if (to != NULL) {
		m.type = MSG_TEXT;
		m.username = str_c(to->name);
	} else {
		m.type = b->o->room ? MSG_ROOM_TEXT : MSG_PUBLIC_TEXT;
		m.roomname = str_c(b->room);
	}
	m.text.p = text;
	m.text.len = len;
	talknet_send(b, c, &m);
}

/* The creator has its room: invites everyone else, in chunks. */
static void
talknet_invite_all(struct bench *b, struct conn *creator)
{
	struct str	*names;
	struct msg	 m;
	unsigned int	 i, k;

	if ((names = calloc(INVITE_CHUNK, sizeof(*names))) == NULL)
		err(1, "calloc");
	for (i = 1; i < b->n; i += k) {
		for (k = 0; k < INVITE_CHUNK && i + k < b->n; k++)
			names[k] = str_c(b->c[i + k].name);
		memset(&m, 0, sizeof(m));
		m.type = MSG_INVITE;
		m.roomname = str_c(b->room);
		m.list = names;
		m.nlist = k;
		if (proto_encode(&creator->out, &m) == -1)
			err(1, "proto_encode");
	}
	free(names);
	conn_flush(b, creator);
}

/* Handles a RESPONSE: the set-up steps, or an error from the server. */
static void
talknet_response(struct bench *b, struct conn *c, const struct msg *m,
    int64_t now)
{
	if (c->st == C_QUITTING || b->ph >= PH_TEARDOWN)
		return;
	if (m->op == MSG_IDENTIFY && c->st == C_REGISTER) {
		if (m->res == RES_SUCCESS) {
			conn_identified(b, c, now);
		} else if (m->res == RES_USER_ALREADY_EXISTS &&
		    c->attempt + 1 < NAME_ATTEMPTS) {
			c->attempt++;
			conn_register(b, c);
		} else {
			conn_lost(b, c, "IDENTIFY refused");
		}
		return;
	}
	if (m->op == MSG_NEW_ROOM && c->idx == 0 && c->st == C_JOINING) {
		if (m->res != RES_SUCCESS) {
			rs_fail(&b->rs, "NEW_ROOM %s: %.*s", b->room,
			    (int)m->result.len, m->result.p);
			return;
		}
		conn_ready(b, c, now);
		talknet_invite_all(b, c);
		return;
	}
	if (m->op == MSG_JOIN_ROOM && c->st == C_JOINING) {
		if (m->res != RES_SUCCESS) {
			rs_fail(&b->rs, "JOIN_ROOM %s: %.*s", b->room,
			    (int)m->result.len, m->result.p);
			return;
		}
		conn_ready(b, c, now);
		return;
	}
	b->server_errors++;
	rs_note(&b->rs, "client %u (%s): %.*s %.*s %.*s", c->idx, conn_label(c),
	    (int)m->operation.len, m->operation.p, (int)m->result.len,
	    m->result.p, (int)m->extra.len, m->extra.p);
	if (b->ph == PH_SETUP)
		rs_fail(&b->rs, "%s", b->rs.note);
}

/* The kind of text this run's clients get: the kind it sends. */
static enum msg_type
talknet_text_kind(const struct bench *b)
{
	if (b->o->wl == WL_PRIVATE)
		return MSG_TEXT_FROM;
	return b->o->room ? MSG_ROOM_TEXT_FROM : MSG_PUBLIC_TEXT_FROM;
}

/*
 * Finds the "text" value of a TEXT_FROM-like line.  The protocol fixes
 * the key order and "text" comes last, so the value is found from the
 * end; a line in another shape is searched from the start.
 */
static int
talknet_text(const char *line, size_t len, const char **text, size_t *tlen)
{
	static const char	 key[] = "\"text\":\"";
	const char		*p, *q;

	if (line == NULL)	/* never; it keeps GCC's -Wnonnull calm */
		return -1;
	if (len > sizeof(key) + 2 && line[len - 1] == '}' &&
	    line[len - 2] == '"' &&
	    (q = memrchr(line, '"', len - 2)) != NULL &&
	    (size_t)(q - line) >= sizeof(key) - 2 &&
	    memcmp(q - (sizeof(key) - 2), key, sizeof(key) - 1) == 0) {
		*text = q + 1;
		*tlen = (size_t)(line + len - 2 - *text);
		return 0;
	}
	if ((p = memmem(line, len, key, sizeof(key) - 1)) == NULL)
		return -1;
	p += sizeof(key) - 1;
	if ((q = memchr(p, '"', (size_t)(line + len - p))) == NULL)
		return -1;
	*text = p;
	*tlen = (size_t)(q - p);
	return 0;
}

/*
 * Reads a line of the server's with the codec, for this run and for
 * join and broadcast; one that is unreadable is noted, and is -1.
 */
int
talknet_reply(struct proto_parser *pp, const char *line, size_t len,
    struct msg *m, struct run_status *rs, unsigned int idx)
{
	if (proto_parse_reply(pp, line, len, m) == 0)
		return 0;
	rs_note(rs, "client %u: unreadable line from the server", idx);
	return -1;
}

/*
 * Handles one TalkNet line.  Texts, the hot path, are found by a light
 * scan; RESPONSE and INVITATION go through the codec; the broadcasts
 * of others joining and leaving are skipped unread.
 */
static void
talknet_line(struct bench *b, struct conn *c, const char *line, size_t len,
    int64_t now)
{
	const char	*text;
	size_t		 tlen;
	enum msg_type	 t;
	struct msg	 m;

	if (proto_peek_type(line, len, &t) == 0) {
		switch (t) {
		case MSG_ROOM_TEXT_FROM:
		case MSG_PUBLIC_TEXT_FROM:
		case MSG_TEXT_FROM:
			/*
			 * Not the kind this run sends: another run's, on the
			 * same server.  A private run's echo side once sent a
			 * fanout run's public text on to a peer not yet
			 * identified, and failed on NO_SUCH_USER.
			 */
			if (t != talknet_text_kind(b) ||
			    talknet_text(line, len, &text, &tlen) == -1)
				b->foreign++;
			else
				bench_on_text(b, c, text, tlen, now);
			return;
		case MSG_RESPONSE:
		case MSG_INVITATION:
			break;
		case MSG_USER_LIST:
			if (b->unsynced > 0)
				break;
			return;
		default:
			return;
		}
	}
	if (talknet_reply(&b->pp, line, len, &m, &b->rs, c->idx) == -1) {
		b->server_errors++;
		return;
	}
	if (m.type == MSG_RESPONSE) {
		talknet_response(b, c, &m, now);
	} else if (m.type == MSG_USER_LIST) {
		talknet_user_list(b, c, &m, now);
	} else if (m.type == MSG_INVITATION && c->st == C_IDENT &&
	    m.roomname.len == strlen(b->room) &&
	    memcmp(m.roomname.p, b->room, m.roomname.len) == 0) {
		memset(&m, 0, sizeof(m));
		m.type = MSG_JOIN_ROOM;
		m.roomname = str_c(b->room);
		conn_set_state(b, c, C_JOINING);
		talknet_send(b, c, &m);
	}
}

/* The TalkNet wire, which bench_classic() gives a run by default. */
const struct wire wire_talknet = {
	.hello = talknet_hello, .bye = talknet_bye, .enter = talknet_enter,
	.sync = talknet_sync, .text = talknet_text_to, .line = talknet_line
};
