/*
 * hub_req.c: the hub's requests: one function per message type a worker
 * forwards, the replies and lines they send, the rooms' bookkeeping, and
 * the user, pid and room indices by name (the trees).
 */
#include "config.h"

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "cluster.h"
#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "peer.h"
#include "proto.h"
#include "shm.h"
#include "talknetd.h"
#include "xmalloc.h"
#include "hub.h"

/* A name in the table as a string. */
static struct str
hub_str(const char *p, size_t len)
{
	struct str	s;

	s.p = p;
	s.len = len;
	return s;
}

/*
 * The name of user row idx, or of room row idx if room, or the look-up
 * key for SLOT_NONE.
 */
static struct str
hub_key(uint32_t idx, int room)
{
	struct shm_user	*u;
	struct shm_room	*r;

	if (idx == SLOT_NONE)
		return hub.key;
	if (room) {
		r = shm_room(&hub.tab, idx);
		return hub_str(shm_room_name(&hub.tab, r), r->name_len);
	}
	u = shm_user(&hub.tab, idx);
	return hub_str(shm_user_name(&hub.tab, u), u->name_len);
}

/* The name of a connection's user row, or the look-up key. */
struct str
hub_user_key(const struct hub_conn *c)
{
	return hub_key(c->slot, 0);
}

/* Orders two names: by bytes, then by length.  Names are case-sensitive. */
static int
hub_str_cmp(struct str a, struct str b)
{
	int	r;

	r = memcmp(a.p, b.p, a.len < b.len ? a.len : b.len);
	if (r != 0)
		return r;
	return (a.len > b.len) - (a.len < b.len);
}

/* Orders users by name. */
static int
hub_user_cmp(struct hub_conn *a, struct hub_conn *b)
{
	return hub_str_cmp(hub_key(a->slot, 0), hub_key(b->slot, 0));
}

/* Orders rooms by name. */
static int
hub_room_cmp(struct hub_room *a, struct hub_room *b)
{
	return hub_str_cmp(hub_key(a->idx, 1), hub_key(b->idx, 1));
}

/* Orders connections by their worker's pid. */
static int
hub_pid_cmp(struct hub_conn *a, struct hub_conn *b)
{
	return (a->pid > b->pid) - (a->pid < b->pid);
}

RB_GENERATE(user_tree, hub_conn, name_entry, hub_user_cmp)
RB_GENERATE(pid_tree, hub_conn, pid_entry, hub_pid_cmp)
RB_GENERATE(room_tree, hub_room, entry, hub_room_cmp)

/* Finds an identified user by name (with --cluster, of any node). */
struct hub_conn *
hub_user_find(struct str name)
{
	/* Its row is none: the trees compare it by hub.key. */
	static struct hub_conn	key = { .slot = SLOT_NONE };

	hub.key = name;
	return RB_FIND(user_tree, &hub.users, &key);
}

/* Finds a room by name. */
struct hub_room *
hub_room_find(struct str name)
{
	static struct hub_room	key = { .idx = SLOT_NONE };

	hub.key = name;
	return RB_FIND(room_tree, &hub.rooms, &key);
}

/* Encodes m into the shared line and sends it to one worker. */
void
hub_tell(struct hub_conn *to, const struct msg *m)
{
	hub_encode(m);
	hub_send(to);
}

/* Sends a RESPONSE to one worker. */
static void
hub_respond(struct hub_conn *c, enum msg_type op, enum result res,
    struct str extra)
{
	struct msg	m = { .type = MSG_RESPONSE, .op = op, .res = res,
			    .extra = extra, .has_extra = 1 };

	hub_tell(c, &m);
}

/* Sends m to every identified user but one (remote users: no). */
void
hub_tell_others(const struct msg *m, const struct hub_conn *except)
{
	struct hub_conn	*c;

	hub_encode(m);
	hub_share_line();
	TAILQ_FOREACH(c, &hub.idents, ident_entry) {
		if (c != except)
			hub_share(c);
	}
}

/* Sends m to every member of a room but one (remote members: no). */
void
hub_tell_room(struct shm_room *row, const struct msg *m,
    const struct hub_conn *except)
{
	uint64_t	*members = shm_room_members(&hub.tab, row);
	uint64_t	 w;
	uint32_t	 i, slot;

	hub_encode(m);
	hub_share_line();
	for (i = 0; i < hub.tab.hdr->bitmap_words; i++) {
		for (w = members[i]; w != 0; w &= w - 1) {
			slot = i * 64 + (uint32_t)__builtin_ctzll(w);
			if (hub.conns[slot] != NULL &&
			    hub.conns[slot] != except)
				hub_share(hub.conns[slot]);
		}
	}
}

/* The name of a room row. */
struct str
hub_room_name(struct shm_room *row)
{
	struct str	s;

	s.p = shm_room_name(&hub.tab, row);
	s.len = row->name_len;
	return s;
}

/* Makes sure the list array holds n entries. */
static void
hub_list_reserve(size_t n)
{
	if (n > hub.nlist) {
		hub.list = xreallocarray(hub.list, n, sizeof(*hub.list));
		hub.nlist = n;
	}
}

/*
 * The conn of the user that created room r, if it is still there: the
 * user in the creator's row identified before r was made (anyone who
 * took the row later identified after), or NULL.
 */
struct hub_conn *
hub_room_creator(const struct hub_room *r)
{
	struct hub_conn	*c;

	if (r->creator >= hub.tab.hdr->max_users ||
	    (c = hub.conns[r->creator]) == NULL || !hub_identified(c) ||
	    hub_row(c)->seq >= r->seq)
		return NULL;
	return c;
}

/* Forgets a room whose row the table freed when it emptied. */
static void
hub_room_forget(struct hub_room *r)
{
	struct hub_conn	*c;

	if ((c = hub_room_creator(r)) != NULL && c->rooms > 0)
		c->rooms--;
	RB_REMOVE(room_tree, &hub.rooms, r);
	hub.free_rooms[hub.nfree_rooms++] = r->idx;
	free(r);
}

/* Takes a user out of a room, telling the others; may end the room. */
void
hub_room_leave(struct hub_conn *c, struct hub_room *r)
{
	struct shm_room	*row = shm_room(&hub.tab, r->idx);
	struct msg	 m = { .type = MSG_LEFT_ROOM,
			    .roomname = hub_room_name(row),
			    .username = hub_name(c) };

	hub_pace_release(c);
	if (shm_room_leave(&hub.tab, r->idx, c->slot) == 0) {
		hub_room_forget(r);
		return;
	}
	hub_tell_room(row, &m, c);
}

/*
 * The DISCONNECT semantics: leave every room (LEFT_ROOM to the others),
 * drop the user's invitations, then DISCONNECTED to every other user.
 * The row stays taken by the connection until its channel closes.
 */
void
hub_part(struct hub_conn *c)
{
	struct hub_room	*r, *next;
	struct msg	 m = { .type = MSG_DISCONNECTED };

	if (!hub_identified(c))
		return;
	RB_FOREACH_SAFE(r, room_tree, &hub.rooms, next) {
		shm_room_uninvite(&hub.tab, r->idx, c->slot);
		if (shm_room_is_member(&hub.tab, r->idx, c->slot))
			hub_room_leave(c, r);
	}
	TAILQ_REMOVE(&hub.idents, c, ident_entry);
	m.username = hub_name(c);
	hub_tell_others(&m, c);
	/* --cluster: the name is free on every node again. */
	if (cluster_on() && !c->remote)
		cluster_release_name(m.username.p, m.username.len);
	RB_REMOVE(user_tree, &hub.users, c);
	shm_user_unidentify(&hub.tab, c->slot);
}

/*
 * Logs "alice identified from 127.0.0.1:5555", the name escaped.  The
 * hub logs it, not the worker: the hub is the one that decides, and a
 * worker's first log line would write a page of libc's data (stderr's
 * FILE, syslog's state) that each idle worker then keeps a copy of.  The
 * address is the one the master formatted from accept(2) and handed the
 * worker, which named it in its HELLO (ipc_addr_ok checked its shape);
 * the worker's pid says which process, for the master's own lines.
 */
static void
hub_log_identified(const struct hub_conn *c, struct str name)
{
	char	esc[256];

	log_info("%s identified from %s", log_escape(name.p, name.len, esc,
	    sizeof(esc)), c->addr);
}

/*
 * The answer to an IDENTIFY: the RESPONSE, IDENTIFIED for the worker,
 * and on success NEW_USER to every other user.
 */
static void
hub_identified_as(struct hub_conn *c, struct str name, enum result res)
{
	struct ipc_identified	 id;
	struct msg		 m = { .type = MSG_NEW_USER, .username = name };

	hub_respond(c, MSG_IDENTIFY, res, name);
	memset(&id, 0, sizeof(id));
	id.ok = res == RES_SUCCESS;
	id.slot = c->slot;
	hub_put(c, IPC_IDENTIFIED, &id, sizeof(id));
	if (res == RES_SUCCESS)
		hub_tell_others(&m, c);
}

/* Gives c the name, which no other user has: the IDENTIFY succeeded. */
static void
hub_identify_as(struct hub_conn *c, struct str name)
{
	shm_user_identify(&hub.tab, c->slot, name.p, name.len);
	if (RB_INSERT(user_tree, &hub.users, c) != NULL)
		fatalx("%s: name indexed twice", __func__);
	TAILQ_INSERT_TAIL(&hub.idents, c, ident_entry);
	hub_log_identified(c, name);
	hub_identified_as(c, name, RES_SUCCESS);
}

/*
 * Ends a parked request (IDENTIFY, NEW_ROOM, JOIN_ROOM): its
 * seq is recorded with its effect, and its channel read again.
 */
static void
hub_park_end(struct hub_conn *c)
{
	hub_row(c)->last_seq = c->park_seq;
	shm_commit(&hub.tab);
	hub.reading = NULL;
	hub_unpark(c);
}

/*
 * --cluster: Redis answered a parked IDENTIFY.  Granted, the name is
 * c's; taken, c hears so; no answer (degraded), c's client is closed,
 * so that a load balancer sends it to a node that can take it.  The
 * request's seq is recorded now, with its effect.
 */
static void
hub_identify_claimed(void *arg, const char *name, size_t len,
    enum cluster_claim res, uint64_t value)
{
	struct hub_conn	*c = arg;
	struct str	 n = { name, len };

	if (c->dead || res == CLAIM_FAILED) {
		c->parked = 0;
		if (res == CLAIM_GRANTED)
			cluster_release_name(name, len);
		hub_kill(c, CLOSE_REFUSED, "cluster degraded: its name could "
		    "not be claimed");
		return;
	}
	/* Its answer goes out first, as any requester's (hub_mark_dirty). */
	hub.reading = c;
	shm_begin(&hub.tab);
	/* Ours in Redis and nobody's here: a dead hub's claim for it. */
	if (res == CLAIM_OURS)
		res = hub_user_find(n) == NULL ? CLAIM_GRANTED : CLAIM_TAKEN;
	if (res == CLAIM_GRANTED && hub_user_find(n) == NULL) {
		hub_identify_as(c, n);
		/* Re-asserted after Redis lost it, the older claim wins. */
		hub_row(c)->since_ms = value;
	} else {
		/* Redis is the authority: a local holder means a bug. */
		if (res == CLAIM_GRANTED)
			cluster_release_name(name, len);
		hub_identified_as(c, n, RES_USER_ALREADY_EXISTS);
	}
	hub_park_end(c);
}

/*
 * IDENTIFY: takes a free name, or says it is taken.  In a cluster the
 * name must be free on every node: the request waits (parked) for
 * Redis's answer, and only this channel waits.
 */
static void
hub_identify(struct hub_conn *c, const struct msg *q)
{
	if (hub_user_find(q->username) != NULL) {
		hub_identified_as(c, q->username, RES_USER_ALREADY_EXISTS);
		return;
	}
	if (cluster_on()) {
		c->parked = 1;
		cluster_claim_name(q->username.p, q->username.len, c->slot,
		    hub_identify_claimed, c);
		return;
	}
	hub_identify_as(c, q->username);
}

/* STATUS: a change is told to every other user; no reply. */
static void
hub_status(struct hub_conn *c, const struct msg *q)
{
	struct shm_user	*u = hub_row(c);
	struct msg	 m = { .type = MSG_NEW_STATUS, .username = hub_name(c),
			    .st = q->st };

	if ((uint32_t)q->st == u->status)
		return;
	u->status = (uint32_t)q->st;
	hub_tell_others(&m, c);
	if (cluster_on())
		cluster_status(m.username.p, m.username.len, (int)q->st);
}

/* Adds user u's name and status to the list being built in hub.list. */
static void
hub_list_user(const struct hub_conn *u, size_t *n)
{
	hub.list[(*n)++] = hub_name(u);
	hub.list[(*n)++] = str_c(proto_status_name(hub_row(u)->status));
}

/* Sends c the list of users (n strings, two a user) built in hub.list. */
static void
hub_tell_list(struct hub_conn *c, struct msg *m, size_t n)
{
	m->list = hub.list;
	m->nlist = n / 2;
	hub_tell(c, m);
}

/* USERS: every identified user with its status, in order of arrival. */
static void
hub_users(struct hub_conn *c, const struct msg *q)
{
	struct hub_conn	*u;
	struct msg	 m = { .type = MSG_USER_LIST };
	size_t		 n = 0;

	(void)q;
	hub_list_reserve(2 * (size_t)hub.tab.hdr->nidentified);
	TAILQ_FOREACH(u, &hub.idents, ident_entry)
		hub_list_user(u, &n);
	hub_tell_list(c, &m, n);
}

/* TEXT: a private message to one user. */
static void
hub_text(struct hub_conn *c, const struct msg *q)
{
	struct hub_conn	*to;
	struct msg	 m = { .type = MSG_TEXT_FROM, .username = hub_name(c),
			    .text = q->text };

	if ((to = hub_user_find(q->username)) == NULL) {
		hub_respond(c, MSG_TEXT, RES_NO_SUCH_USER, q->username);
		return;
	}
	/* A user of another node: its node delivers it. */
	if (to->remote) {
		cluster_private_text(m.username.p, m.username.len,
		    q->username.p, q->username.len, q->text.p, q->text.len);
		return;
	}
	hub_tell(to, &m);
}

/* PUBLIC_TEXT: to every other identified user; no reply. */
static void
hub_public_text(struct hub_conn *c, const struct msg *q)
{
	struct msg	m = { .type = MSG_PUBLIC_TEXT_FROM,
			    .username = hub_name(c), .text = q->text };

	hub_tell_others(&m, c);
	if (cluster_on())
		cluster_public_text(m.username.p, m.username.len, q->text.p,
		    q->text.len);
}

/* Makes room name, with c (the table's row free) its only member. */
struct hub_room *
hub_room_make(struct hub_conn *c, struct str name)
{
	struct hub_room	*r;

	r = xcalloc(1, sizeof(*r));
	r->idx = hub.free_rooms[--hub.nfree_rooms];
	shm_room_create(&hub.tab, r->idx, name.p, name.len, c->slot);
	r->creator = c->slot;
	r->seq = shm_room(&hub.tab, r->idx)->seq;
	c->rooms++;
	if (RB_INSERT(room_tree, &hub.rooms, r) != NULL)
		fatalx("%s: room indexed twice", __func__);
	return r;
}

/*
 * --cluster: Redis answered a parked NEW_ROOM.  Granted, the room is
 * made here (a stale room of that name here, not yet seen gone, undoes
 * it); taken, ROOM_ALREADY_EXISTS; no answer, TOO_MANY_ROOMS: the
 * server cannot take a room now (a decision).
 */
static void
hub_new_room_claimed(void *arg, const char *name, size_t len,
    enum cluster_claim res, uint64_t value)
{
	struct hub_conn	*c = arg;
	struct str	 n = { name, len };
	enum result	 r = RES_SUCCESS;

	(void)value;	/* a name claim's; rooms have none */
	if (c->dead) {
		c->parked = 0;
		if (res == CLAIM_GRANTED)
			cluster_leave_room(name, len, hub_name(c).p,
			    hub_name(c).len);
		return;
	}
	hub.reading = c;
	shm_begin(&hub.tab);
	if (res == CLAIM_FAILED)
		r = RES_TOO_MANY_ROOMS;
	else if (res == CLAIM_TAKEN || hub_room_find(n) != NULL ||
	    hub.nfree_rooms == 0)
		r = RES_ROOM_ALREADY_EXISTS;
	if (r == RES_SUCCESS)
		hub_room_make(c, n);
	else if (res == CLAIM_GRANTED)
		cluster_leave_room(name, len, hub_name(c).p, hub_name(c).len);
	hub_respond(c, MSG_NEW_ROOM, r, n);
	hub_park_end(c);
}

/* NEW_ROOM: creates a room whose only member is its creator. */
static void
hub_new_room(struct hub_conn *c, const struct msg *q)
{
	if (hub_room_find(q->roomname) != NULL) {
		hub_respond(c, MSG_NEW_ROOM, RES_ROOM_ALREADY_EXISTS, q->roomname);
		return;
	}
	if (hub.nfree_rooms == 0 || (hub.cfg->max_rooms_per_user != 0 &&
	    c->rooms >= hub.cfg->max_rooms_per_user)) {
		hub_respond(c, MSG_NEW_ROOM, RES_TOO_MANY_ROOMS, q->roomname);
		return;
	}
	/* In a cluster the name must be free on every node: ask Redis. */
	if (cluster_on()) {
		c->parked = 1;
		cluster_claim_room(q->roomname.p, q->roomname.len,
		    hub_name(c).p, hub_name(c).len, hub_new_room_claimed, c);
		return;
	}
	hub_room_make(c, q->roomname);
	hub_respond(c, MSG_NEW_ROOM, RES_SUCCESS, q->roomname);
}

/*
 * Finds the room a request names and checks the sender is a member,
 * answering NO_SUCH_ROOM or NOT_JOINED itself.  Returns the row or NULL.
 */
static struct shm_room *
hub_member_room(struct hub_conn *c, enum msg_type op, struct str name,
    struct hub_room **rp)
{
	struct hub_room	*r;
	struct shm_room	*row;

	if ((r = hub_room_find(name)) == NULL) {
		hub_respond(c, op, RES_NO_SUCH_ROOM, name);
		return NULL;
	}
	row = shm_room(&hub.tab, r->idx);
	if (!shm_bit_test(shm_room_members(&hub.tab, row), c->slot)) {
		hub_respond(c, op, RES_NOT_JOINED, name);
		return NULL;
	}
	if (rp != NULL)
		*rp = r;
	return row;
}

/* --cluster: an INVITE crosses to the invitees' nodes, in one script. */
static void
hub_invite_cluster(struct hub_conn *c, const struct msg *q)
{
	const char	**names;
	size_t		 *lens, i;

	names = xcalloc(q->nlist, sizeof(*names));
	lens = xcalloc(q->nlist, sizeof(*lens));
	for (i = 0; i < q->nlist; i++) {
		names[i] = q->list[i].p;
		lens[i] = q->list[i].len;
	}
	cluster_invite(q->roomname.p, q->roomname.len, hub_name(c).p,
	    hub_name(c).len, names, lens, q->nlist);
	free(names);
	free(lens);
}

/* INVITE: all or nothing; new invitees get INVITATION, no reply. */
static void
hub_invite(struct hub_conn *c, const struct msg *q)
{
	struct hub_room	*r;
	struct shm_room	*row;
	struct hub_conn	*to;
	struct msg	 m = { .type = MSG_INVITATION, .username = hub_name(c) };
	size_t		 i;

	if ((row = hub_member_room(c, MSG_INVITE, q->roomname, &r)) == NULL)
		return;
	for (i = 0; i < q->nlist; i++) {
		if (hub_user_find(q->list[i]) == NULL) {
			hub_respond(c, MSG_INVITE, RES_NO_SUCH_USER,
			    q->list[i]);
			return;
		}
	}
	/* One line for every invitee, encoded once. */
	m.roomname = hub_room_name(row);
	hub_encode(&m);
	for (i = 0; i < q->nlist; i++) {
		to = hub_user_find(q->list[i]);
		if (to == c || shm_room_is_member(&hub.tab, r->idx, to->slot) ||
		    shm_room_is_invited(&hub.tab, r->idx, to->slot))
			continue;
		shm_room_invite(&hub.tab, r->idx, to->slot);
		hub_send(to);
	}
	if (cluster_on())
		hub_invite_cluster(c, q);
}

/* Makes c a member of r: JOINED_ROOM to the other members. */
void
hub_join(struct hub_conn *c, struct hub_room *r)
{
	struct shm_room	*row = shm_room(&hub.tab, r->idx);
	struct msg	 m = { .type = MSG_JOINED_ROOM, .username = hub_name(c) };

	shm_room_join(&hub.tab, r->idx, c->slot);
	m.roomname = hub_room_name(row);
	hub_tell_room(row, &m, c);
}

/*
 * --cluster: Redis answered a parked JOIN_ROOM.  Granted, c joins here
 * too (unless the room went meanwhile); otherwise NOT_INVITED, for no
 * answer too (a decision: the client may try again).
 */
static void
hub_join_claimed(void *arg, const char *name, size_t len,
    enum cluster_claim res, uint64_t value)
{
	struct hub_conn	*c = arg;
	struct hub_room	*r;
	struct str	 n = { name, len };

	(void)value;	/* a name claim's; rooms have none */
	if (c->dead) {
		c->parked = 0;
		return;
	}
	hub.reading = c;
	shm_begin(&hub.tab);
	if ((r = hub_room_find(n)) == NULL)
		hub_respond(c, MSG_JOIN_ROOM, RES_NO_SUCH_ROOM, n);
	else if (res != CLAIM_GRANTED)
		hub_respond(c, MSG_JOIN_ROOM, RES_NOT_INVITED, n);
	else {
		hub_respond(c, MSG_JOIN_ROOM, RES_SUCCESS, n);
		hub_join(c, r);
	}
	hub_park_end(c);
}

/* JOIN_ROOM: an invited user becomes a member. */
static void
hub_join_room(struct hub_conn *c, const struct msg *q)
{
	struct hub_room	*r;

	if ((r = hub_room_find(q->roomname)) == NULL) {
		hub_respond(c, MSG_JOIN_ROOM, RES_NO_SUCH_ROOM, q->roomname);
		return;
	}
	if (shm_room_is_member(&hub.tab, r->idx, c->slot)) {
		hub_respond(c, MSG_JOIN_ROOM, RES_SUCCESS, q->roomname);
		return;
	}
	if (!shm_room_is_invited(&hub.tab, r->idx, c->slot)) {
		hub_respond(c, MSG_JOIN_ROOM, RES_NOT_INVITED, q->roomname);
		return;
	}
	/* In a cluster the invitation is used up in Redis, once. */
	if (cluster_on()) {
		c->parked = 1;
		cluster_join_room(q->roomname.p, q->roomname.len,
		    hub_name(c).p, hub_name(c).len, hub_join_claimed, c);
		return;
	}
	hub_respond(c, MSG_JOIN_ROOM, RES_SUCCESS, q->roomname);
	hub_join(c, r);
}

/* ROOM_USERS: the members of a room the sender is in. */
static void
hub_room_users(struct hub_conn *c, const struct msg *q)
{
	struct shm_room	*row;
	uint64_t	*members, w;
	struct hub_conn	*u;
	struct msg	 m = { .type = MSG_ROOM_USER_LIST };
	uint32_t	 i;
	size_t		 n = 0;

	if ((row = hub_member_room(c, MSG_ROOM_USERS, q->roomname,
	    NULL)) == NULL)
		return;
	members = shm_room_members(&hub.tab, row);
	hub_list_reserve(2 * (size_t)row->nmembers);
	for (i = 0; i < hub.tab.hdr->bitmap_words; i++) {
		for (w = members[i]; w != 0; w &= w - 1) {
			u = hub.conns[i * 64 + (uint32_t)__builtin_ctzll(w)];
			if (u == NULL || n / 2 >= row->nmembers)
				continue;
			hub_list_user(u, &n);
		}
	}
	m.roomname = hub_room_name(row);
	hub_tell_list(c, &m, n);
}

/* ROOM_TEXT: to every other member; no reply. */
static void
hub_room_text(struct hub_conn *c, const struct msg *q)
{
	struct shm_room	*row;
	struct msg	 m = { .type = MSG_ROOM_TEXT_FROM,
			    .username = hub_name(c), .text = q->text };

	if ((row = hub_member_room(c, MSG_ROOM_TEXT, q->roomname,
	    NULL)) == NULL)
		return;
	m.roomname = hub_room_name(row);
	hub_tell_room(row, &m, c);
	if (cluster_on())
		cluster_room_text(m.roomname.p, m.roomname.len,
		    m.username.p, m.username.len, q->text.p, q->text.len);
}

/* LEAVE_ROOM: LEFT_ROOM to the others; an empty room disappears. */
static void
hub_leave_room(struct hub_conn *c, const struct msg *q)
{
	struct hub_room	*r;

	if (hub_member_room(c, MSG_LEAVE_ROOM, q->roomname, &r) == NULL)
		return;
	hub_room_leave(c, r);
	if (cluster_on())
		cluster_leave_room(q->roomname.p, q->roomname.len,
		    hub_name(c).p, hub_name(c).len);
}

/* Queues the CLOSE frame that ends a channel, with its reason. */
static void
hub_put_close(struct hub_conn *c, uint32_t reason)
{
	struct ipc_close	cl;

	memset(&cl, 0, sizeof(cl));
	cl.reason = reason;
	hub_put(c, IPC_CLOSE, &cl, sizeof(cl));
}

/* DISCONNECT: the semantics of the protocol, then CLOSE to the worker. */
static void
hub_disconnect(struct hub_conn *c, const struct msg *q)
{
	(void)q;
	hub_part(c);
	c->parted = 1;
	hub_put_close(c, CLOSE_QUIT);
}

/*
 * An admin's kick (talknetctl, through the master): the user parts as
 * for a DISCONNECT, so everyone else sees DISCONNECTED, and the worker
 * gets CLOSE with CLOSE_KICKED after what is queued for it, and closes
 * its client; HUB_HELLO_MS later it is dropped if it has not.  The
 * master read the row without a lock: it must still be that process and
 * that identification, or nothing happens.
 */
void
hub_kick(const struct ipc_kick *k)
{
	struct hub_conn	*c;
	struct shm_user	*row;

	if (k->slot >= hub.cfg->max_users ||
	    (c = hub.conns[k->slot]) == NULL || c->dead || c->parted ||
	    c->remote || c->pid != k->pid) {
		log_info("hub: kick of row %u ignored: not that worker's now",
		    k->slot);
		return;
	}
	row = hub_row(c);
	if (row->state != USER_IDENTIFIED || row->seq != k->seq) {
		log_info("hub: kick of row %u ignored: not that user's now",
		    k->slot);
		return;
	}
	shm_begin(&hub.tab);
	hub_part(c);
	shm_commit(&hub.tab);
	c->parted = 1;
	c->kicked = 1;
	hub_put_close(c, CLOSE_KICKED);
	hub_kick_deadline(c);
}

/*
 * The CLOSE of a kick goes after what is queued, which a client that
 * reads nothing (with --stall-timeout 0) never takes: the channel joins
 * the list of those with a deadline, HUB_HELLO_MS from now like every
 * entry (so the list stays in order), and is dropped at it.  Again on a
 * worker's return after a hub restart: hub_reattach took the detached
 * conn, and its place on the list, away.
 */
void
hub_kick_deadline(struct hub_conn *c)
{
	if (c->waiting)
		return;
	c->hello_by = clock_now_ms() + HUB_HELLO_MS;
	c->waiting = 1;
	TAILQ_INSERT_TAIL(&hub.waiting, c, wait_entry);
}

/*
 * An IDENTIFY sent again after a hub restart, whose row the dead hub had
 * already named with the same name but whose seq it had not stored: it
 * crashed inside the update.  The identification stands; the answer and
 * NEW_USER, which died with the old hub's round, go out now.
 */
static void
hub_identify_again(struct hub_conn *c, const struct msg *q)
{
	hub_identified_as(c, q->username, RES_SUCCESS);
}

/* A request's handler: runs it for c, once checked and decoded. */
typedef void hub_handler(struct hub_conn *, const struct msg *);

/*
 * The handlers, one per request of the table in lib/request.c, and
 * whether each changes the table (HUB_WRITES) or only reads it and
 * routes lines (HUB_READS).
 */
enum hub_access { HUB_READS, HUB_WRITES };
static const struct {
	hub_handler	*run;
	enum hub_access	 access;
} hub_handlers[MSG_REQUEST_LAST + 1] = {
	[MSG_IDENTIFY] =	{ hub_identify, HUB_WRITES },
	[MSG_STATUS] =		{ hub_status, HUB_WRITES },
	[MSG_USERS] =		{ hub_users, HUB_READS },
	[MSG_TEXT] =		{ hub_text, HUB_READS },
	[MSG_PUBLIC_TEXT] =	{ hub_public_text, HUB_READS },
	[MSG_NEW_ROOM] =	{ hub_new_room, HUB_WRITES },
	[MSG_INVITE] =		{ hub_invite, HUB_WRITES },
	[MSG_JOIN_ROOM] =	{ hub_join_room, HUB_WRITES },
	[MSG_ROOM_USERS] =	{ hub_room_users, HUB_READS },
	[MSG_ROOM_TEXT] =	{ hub_room_text, HUB_READS },
	[MSG_LEAVE_ROOM] =	{ hub_leave_room, HUB_WRITES },
	[MSG_DISCONNECT] =	{ hub_disconnect, HUB_WRITES },
};

/* Runs one request from a worker; returns NULL, or why to drop it. */
const char *
hub_request(struct hub_conn *c, const struct ipc_hdr *h, const char *p)
{
	struct shm_user		*row = hub_row(c);
	struct proto_limits	 lim;
	struct ipc_chan		 ch;
	struct msg		 m;
	const char		*why;
	enum ipc_step		 step;

	lim.max_name = hub.cfg->max_name;
	lim.max_room = hub.cfg->max_room;
	if ((why = ipc_get_request(h, p, &lim, &hub.args, &hub.nargs,
	    &m)) != NULL)
		return why;
	memset(&ch, 0, sizeof(ch));
	ch.last_seq = row->last_seq;
	ch.identified = hub_identified(c);
	ch.parted = c->parted;
	if (ch.identified)
		ch.name = hub_name(c);
	if ((why = ipc_check_order(&ch, h->seq, &m, &step)) != NULL)
		return why;
	if (step == IPC_STEP_SKIP) {
		/* It ran; only its CLOSE, if DISCONNECT, may have been lost. */
		if (m.type == MSG_DISCONNECT) {
			c->parted = 1;
			hub_put_close(c, CLOSE_QUIT);
		}
		return NULL;
	}
	/* A text for a reader that is behind waits, whole, in c's input. */
	if (step != IPC_STEP_AGAIN && hub_hold_text(c, &m))
		return peer_again;
	hub.tab.hdr->counters.msgs_in++;
	hub.tab.hdr->counters.bytes_in += h->len;
	/*
	 * A request that only reads the table (texts, lists) runs before
	 * the update that records its seq: run inside it, a flood of texts
	 * to many users kept the table odd nearly all the time, and the
	 * master's seqlock reads for talknetctl found no gap ("show users"
	 * missed the flooding clients, "kick" said "no such user").  One
	 * that changes it lands in one update with its seq.
	 */
	if (step != IPC_STEP_AGAIN &&
	    hub_handlers[m.type].access == HUB_READS) {
		hub_handlers[m.type].run(c, &m);
		/*
		 * Only its seq changes in the table: one aligned word, which
		 * workers load atomically.  Stored without the seqlock, so a
		 * flood of texts leaves the generation alone and the master's
		 * reads for talknetctl find the table still (under ASan, one
		 * update per text left them no gap: "show users" saw none).
		 */
		if (!c->parked) {
			__atomic_store_n(&row->last_seq, h->seq,
			    __ATOMIC_RELEASE);
			return NULL;
		}
	}
	shm_begin(&hub.tab);
	if (step == IPC_STEP_AGAIN)
		hub_identify_again(c, &m);
	else if (hub_handlers[m.type].access == HUB_WRITES)
		hub_handlers[m.type].run(c, &m);
	/* Parked, its seq counts once Redis answered (hub_identify_claimed). */
	if (c->parked)
		c->park_seq = h->seq;
	else
		row->last_seq = h->seq;
	shm_commit(&hub.tab);
	return NULL;
}
