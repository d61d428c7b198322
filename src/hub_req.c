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
#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "proto.h"
#include "shm.h"
#include "talknetd.h"
#include "xmalloc.h"
#include "hub.h"

/* The name of a user row, or the look-up key for SLOT_NONE. */
struct str
hub_user_key(const struct hub_conn *c)
{
	struct shm_user	*u;
	struct str	 s;

	if (c->slot == SLOT_NONE)
		return hub.key;
	u = shm_user(&hub.tab, c->slot);
	s.p = shm_user_name(&hub.tab, u);
	s.len = u->name_len;
	return s;
}

/* The name of a room row, or the look-up key for SLOT_NONE. */
static struct str
hub_room_key(const struct hub_room *r)
{
	struct shm_room	*row;
	struct str	 s;

	if (r->idx == SLOT_NONE)
		return hub.key;
	row = shm_room(&hub.tab, r->idx);
	s.p = shm_room_name(&hub.tab, row);
	s.len = row->name_len;
	return s;
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
	return hub_str_cmp(hub_user_key(a), hub_user_key(b));
}

/* Orders rooms by name. */
static int
hub_room_cmp(struct hub_room *a, struct hub_room *b)
{
	return hub_str_cmp(hub_room_key(a), hub_room_key(b));
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

/* Finds an identified user by name. */
static struct hub_conn *
hub_user_find(struct str name)
{
	struct hub_conn	key;

	key.slot = SLOT_NONE;
	hub.key = name;
	return RB_FIND(user_tree, &hub.users, &key);
}

/* Finds a room by name. */
static struct hub_room *
hub_room_find(struct str name)
{
	struct hub_room	key;

	key.idx = SLOT_NONE;
	hub.key = name;
	return RB_FIND(room_tree, &hub.rooms, &key);
}

/* Sends a RESPONSE to one worker. */
static void
hub_respond(struct hub_conn *c, enum msg_type op, enum result res,
    struct str extra)
{
	struct msg	m;

	memset(&m, 0, sizeof(m));
	m.type = MSG_RESPONSE;
	m.op = op;
	m.res = res;
	m.extra = extra;
	m.has_extra = 1;
	hub_encode(&m);
	hub_send(c);
}

/* Sends the encoded line to every identified user but one. */
static void
hub_send_others(const struct hub_conn *except)
{
	struct hub_conn	*c;

	hub_share_line();
	TAILQ_FOREACH(c, &hub.idents, ident_entry) {
		if (c != except)
			hub_share(c);
	}
}

/* Sends the encoded line to every member of a room but one. */
static void
hub_send_room(struct shm_room *row, const struct hub_conn *except)
{
	uint64_t	*members = shm_room_members(&hub.tab, row);
	uint64_t	 w;
	uint32_t	 i, slot;

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
static struct str
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
static void
hub_room_leave(struct hub_conn *c, struct hub_room *r)
{
	struct shm_room	*row = shm_room(&hub.tab, r->idx);
	struct msg	 m;

	if (shm_room_leave(&hub.tab, r->idx, c->slot) == 0) {
		hub_room_forget(r);
		return;
	}
	memset(&m, 0, sizeof(m));
	m.type = MSG_LEFT_ROOM;
	m.roomname = hub_room_name(row);
	m.username = hub_name(c);
	hub_encode(&m);
	hub_send_room(row, c);
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
	struct msg	 m;

	if (!hub_identified(c))
		return;
	RB_FOREACH_SAFE(r, room_tree, &hub.rooms, next) {
		shm_room_uninvite(&hub.tab, r->idx, c->slot);
		if (shm_room_is_member(&hub.tab, r->idx, c->slot))
			hub_room_leave(c, r);
	}
	TAILQ_REMOVE(&hub.idents, c, ident_entry);
	memset(&m, 0, sizeof(m));
	m.type = MSG_DISCONNECTED;
	m.username = hub_name(c);
	hub_encode(&m);
	hub_send_others(c);
	RB_REMOVE(user_tree, &hub.users, c);
	shm_user_unidentify(&hub.tab, c->slot);
}

/*
 * Logs "alice identified from 127.0.0.1:5555", the name escaped.  The
 * hub logs it, not the worker: the hub is the one that decides, and a
 * worker's first log line would write a page of libc's data (stderr's
 * FILE, syslog's state) that each idle worker then keeps a copy of.  The
 * address is the one the master formatted from accept(2) and handed the
 * worker, which named it in its HELLO (hub_addr_ok checked its shape);
 * the worker's pid says which process, for the master's own lines.
 */
static void
hub_log_identified(const struct hub_conn *c, struct str name)
{
	char	esc[256];

	log_info("%s identified from %s", log_escape(name.p, name.len, esc,
	    sizeof(esc)), c->addr);
}

/* IDENTIFY: takes a free name, or says it is taken. */
static void
hub_identify(struct hub_conn *c, const struct str *a)
{
	struct ipc_identified	 id;
	struct msg		 m;

	memset(&id, 0, sizeof(id));
	id.slot = c->slot;
	if (hub_user_find(a[0]) != NULL) {
		hub_respond(c, MSG_IDENTIFY, RES_USER_ALREADY_EXISTS, a[0]);
		hub_put(c, IPC_IDENTIFIED, &id, sizeof(id));
		return;
	}
	shm_user_identify(&hub.tab, c->slot, a[0].p, a[0].len);
	if (RB_INSERT(user_tree, &hub.users, c) != NULL)
		fatalx("%s: name indexed twice", __func__);
	TAILQ_INSERT_TAIL(&hub.idents, c, ident_entry);

	hub_respond(c, MSG_IDENTIFY, RES_SUCCESS, a[0]);
	id.ok = 1;
	hub_put(c, IPC_IDENTIFIED, &id, sizeof(id));
	hub_log_identified(c, a[0]);
	memset(&m, 0, sizeof(m));
	m.type = MSG_NEW_USER;
	m.username = a[0];
	hub_encode(&m);
	hub_send_others(c);
}

/* STATUS: a change is told to every other user; no reply. */
static void
hub_status(struct hub_conn *c, const struct str *a)
{
	struct shm_user	*u = hub_row(c);
	struct msg	 m;
	int		 st = proto_status_lookup(a[0].p, a[0].len);

	if ((uint32_t)st == u->status)
		return;
	u->status = (uint32_t)st;
	memset(&m, 0, sizeof(m));
	m.type = MSG_NEW_STATUS;
	m.username = hub_name(c);
	m.st = (enum user_status)st;
	hub_encode(&m);
	hub_send_others(c);
}

/* USERS: every identified user with its status, in order of arrival. */
static void
hub_users(struct hub_conn *c, const struct str *a)
{
	struct hub_conn	*u;
	struct msg	 m;
	size_t		 n = 0;

	(void)a;
	hub_list_reserve(2 * (size_t)hub.tab.hdr->nidentified);
	TAILQ_FOREACH(u, &hub.idents, ident_entry) {
		hub.list[n++] = hub_name(u);
		hub.list[n++] = str_c(proto_status_name(hub_row(u)->status));
	}
	memset(&m, 0, sizeof(m));
	m.type = MSG_USER_LIST;
	m.list = hub.list;
	m.nlist = n / 2;
	hub_encode(&m);
	hub_send(c);
}

/* TEXT: a private message to one user. */
static void
hub_text(struct hub_conn *c, const struct str *a)
{
	struct hub_conn	*to;
	struct msg	 m;

	if ((to = hub_user_find(a[0])) == NULL) {
		hub_respond(c, MSG_TEXT, RES_NO_SUCH_USER, a[0]);
		return;
	}
	memset(&m, 0, sizeof(m));
	m.type = MSG_TEXT_FROM;
	m.username = hub_name(c);
	m.text = a[1];
	hub_encode(&m);
	hub_send(to);
}

/* PUBLIC_TEXT: to every other identified user; no reply. */
static void
hub_public_text(struct hub_conn *c, const struct str *a)
{
	struct msg	m;

	memset(&m, 0, sizeof(m));
	m.type = MSG_PUBLIC_TEXT_FROM;
	m.username = hub_name(c);
	m.text = a[0];
	hub_encode(&m);
	hub_send_others(c);
}

/* NEW_ROOM: creates a room whose only member is its creator. */
static void
hub_new_room(struct hub_conn *c, const struct str *a)
{
	struct hub_room	*r;

	if (hub_room_find(a[0]) != NULL) {
		hub_respond(c, MSG_NEW_ROOM, RES_ROOM_ALREADY_EXISTS, a[0]);
		return;
	}
	if (hub.nfree_rooms == 0 || (hub.cfg->max_rooms_per_user != 0 &&
	    c->rooms >= hub.cfg->max_rooms_per_user)) {
		hub_respond(c, MSG_NEW_ROOM, RES_TOO_MANY_ROOMS, a[0]);
		return;
	}
	r = xcalloc(1, sizeof(*r));
	r->idx = hub.free_rooms[--hub.nfree_rooms];
	shm_room_create(&hub.tab, r->idx, a[0].p, a[0].len, c->slot);
	r->creator = c->slot;
	r->seq = shm_room(&hub.tab, r->idx)->seq;
	c->rooms++;
	if (RB_INSERT(room_tree, &hub.rooms, r) != NULL)
		fatalx("%s: room indexed twice", __func__);
	hub_respond(c, MSG_NEW_ROOM, RES_SUCCESS, a[0]);
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

/* INVITE: all or nothing; new invitees get INVITATION, no reply. */
static void
hub_invite(struct hub_conn *c, const struct str *a, size_t n)
{
	struct hub_room	*r;
	struct shm_room	*row;
	struct hub_conn	*to;
	struct msg	 m;
	size_t		 i;

	if ((row = hub_member_room(c, MSG_INVITE, a[0], &r)) == NULL)
		return;
	for (i = 1; i < n; i++) {
		if (hub_user_find(a[i]) == NULL) {
			hub_respond(c, MSG_INVITE, RES_NO_SUCH_USER, a[i]);
			return;
		}
	}
	memset(&m, 0, sizeof(m));
	m.type = MSG_INVITATION;
	m.username = hub_name(c);
	m.roomname = hub_room_name(row);
	hub_encode(&m);
	for (i = 1; i < n; i++) {
		to = hub_user_find(a[i]);
		if (to == c || shm_room_is_member(&hub.tab, r->idx, to->slot) ||
		    shm_room_is_invited(&hub.tab, r->idx, to->slot))
			continue;
		shm_room_invite(&hub.tab, r->idx, to->slot);
		hub_send(to);
	}
}

/* JOIN_ROOM: an invited user becomes a member. */
static void
hub_join_room(struct hub_conn *c, const struct str *a)
{
	struct hub_room	*r;
	struct shm_room	*row;
	struct msg	 m;

	if ((r = hub_room_find(a[0])) == NULL) {
		hub_respond(c, MSG_JOIN_ROOM, RES_NO_SUCH_ROOM, a[0]);
		return;
	}
	row = shm_room(&hub.tab, r->idx);
	if (shm_room_is_member(&hub.tab, r->idx, c->slot)) {
		hub_respond(c, MSG_JOIN_ROOM, RES_SUCCESS, a[0]);
		return;
	}
	if (!shm_room_is_invited(&hub.tab, r->idx, c->slot)) {
		hub_respond(c, MSG_JOIN_ROOM, RES_NOT_INVITED, a[0]);
		return;
	}
	shm_room_join(&hub.tab, r->idx, c->slot);
	hub_respond(c, MSG_JOIN_ROOM, RES_SUCCESS, a[0]);
	memset(&m, 0, sizeof(m));
	m.type = MSG_JOINED_ROOM;
	m.roomname = hub_room_name(row);
	m.username = hub_name(c);
	hub_encode(&m);
	hub_send_room(row, c);
}

/* ROOM_USERS: the members of a room the sender is in. */
static void
hub_room_users(struct hub_conn *c, const struct str *a)
{
	struct shm_room	*row;
	uint64_t	*members, w;
	struct hub_conn	*u;
	struct msg	 m;
	uint32_t	 i;
	size_t		 n = 0;

	if ((row = hub_member_room(c, MSG_ROOM_USERS, a[0], NULL)) == NULL)
		return;
	members = shm_room_members(&hub.tab, row);
	hub_list_reserve(2 * (size_t)row->nmembers);
	for (i = 0; i < hub.tab.hdr->bitmap_words; i++) {
		for (w = members[i]; w != 0; w &= w - 1) {
			u = hub.conns[i * 64 + (uint32_t)__builtin_ctzll(w)];
			if (u == NULL || n / 2 >= row->nmembers)
				continue;
			hub.list[n++] = hub_name(u);
			hub.list[n++] =
			    str_c(proto_status_name(hub_row(u)->status));
		}
	}
	memset(&m, 0, sizeof(m));
	m.type = MSG_ROOM_USER_LIST;
	m.roomname = hub_room_name(row);
	m.list = hub.list;
	m.nlist = n / 2;
	hub_encode(&m);
	hub_send(c);
}

/* ROOM_TEXT: to every other member; no reply. */
static void
hub_room_text(struct hub_conn *c, const struct str *a)
{
	struct shm_room	*row;
	struct msg	 m;

	if ((row = hub_member_room(c, MSG_ROOM_TEXT, a[0], NULL)) == NULL)
		return;
	memset(&m, 0, sizeof(m));
	m.type = MSG_ROOM_TEXT_FROM;
	m.roomname = hub_room_name(row);
	m.username = hub_name(c);
	m.text = a[1];
	hub_encode(&m);
	hub_send_room(row, c);
}

/* LEAVE_ROOM: LEFT_ROOM to the others; an empty room disappears. */
static void
hub_leave_room(struct hub_conn *c, const struct str *a)
{
	struct hub_room	*r;

	if (hub_member_room(c, MSG_LEAVE_ROOM, a[0], &r) == NULL)
		return;
	hub_room_leave(c, r);
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
hub_disconnect(struct hub_conn *c)
{
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

	if (k->slot >= hub.cfg->max_clients ||
	    (c = hub.conns[k->slot]) == NULL || c->dead || c->parted ||
	    c->pid != k->pid) {
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
hub_identify_again(struct hub_conn *c, const struct str *a)
{
	struct ipc_identified	 id;
	struct msg		 m;

	hub_respond(c, MSG_IDENTIFY, RES_SUCCESS, a[0]);
	memset(&id, 0, sizeof(id));
	id.ok = 1;
	id.slot = c->slot;
	hub_put(c, IPC_IDENTIFIED, &id, sizeof(id));
	memset(&m, 0, sizeof(m));
	m.type = MSG_NEW_USER;
	m.username = a[0];
	hub_encode(&m);
	hub_send_others(c);
}

static void	hub_run(struct hub_conn *, enum msg_type, size_t);

/*
 * Checks a request frame and splits its strings into hub.args; returns
 * NULL, or why the worker must be dropped.
 */
static const char *
hub_request_args(const struct ipc_hdr *h, const char *p, long *np)
{
	enum msg_type	 t = ipc_request_msg(h->type);
	long		 n;

	if ((n = ipc_get_strs(p, h->len, NULL, 0)) == -1)
		return "request strings run past the frame";
	if (ipc_check_request(h->type, n) == -1)
		return "request with a wrong number of strings";
	if ((size_t)n > hub.nargs) {
		hub.args = xreallocarray(hub.args, (size_t)n,
		    sizeof(*hub.args));
		hub.nargs = (size_t)n;
	}
	(void)ipc_get_strs(p, h->len, hub.args, hub.nargs);
	if (!ipc_check_args(t, hub.args, (size_t)n, hub.cfg->max_name,
	    hub.cfg->max_room))
		return "request with a bad name, text or status";
	*np = n;
	return NULL;
}

/* Runs one request from a worker; returns NULL, or why to drop it. */
const char *
hub_request(struct hub_conn *c, const struct ipc_hdr *h, const char *p)
{
	enum msg_type	 t = ipc_request_msg(h->type);
	struct shm_user	*row = hub_row(c);
	const char	*why;
	long		 n;
	int		 again = 0;

	if ((why = hub_request_args(h, p, &n)) != NULL)
		return why;
	/*
	 * A request resent after a hub restart that already ran is skipped;
	 * only its CLOSE, if it was DISCONNECT, may have been lost.
	 */
	if (h->seq <= row->last_seq) {
		if (t == MSG_DISCONNECT) {
			c->parted = 1;
			hub_put_close(c, CLOSE_QUIT);
		}
		return NULL;
	}
	if (h->seq != row->last_seq + 1)
		return "request out of sequence";
	if (c->parted)
		return "request after DISCONNECT";
	/* The worker answers NOT_IDENTIFIED and double IDENTIFY itself. */
	if (t == MSG_IDENTIFY && hub_identified(c)) {
		if (hub_str_cmp(hub_name(c), hub.args[0]) != 0)
			return "IDENTIFY when identified";
		again = 1;
	} else if (t != MSG_DISCONNECT && t != MSG_IDENTIFY &&
	    !hub_identified(c))
		return "request before IDENTIFY";
	hub.tab.hdr->counters.msgs_in++;
	hub.tab.hdr->counters.bytes_in += h->len;
	/* The request's effects and its seq land in one table update. */
	shm_begin(&hub.tab);
	if (again)
		hub_identify_again(c, hub.args);
	else
		hub_run(c, t, (size_t)n);
	row->last_seq = h->seq;
	shm_commit(&hub.tab);
	return NULL;
}

/* Runs one checked request: the one switch over request types. */
static void
hub_run(struct hub_conn *c, enum msg_type t, size_t n)
{
	switch (t) {
	case MSG_IDENTIFY:
		hub_identify(c, hub.args);
		return;
	case MSG_STATUS:
		hub_status(c, hub.args);
		return;
	case MSG_USERS:
		hub_users(c, hub.args);
		return;
	case MSG_TEXT:
		hub_text(c, hub.args);
		return;
	case MSG_PUBLIC_TEXT:
		hub_public_text(c, hub.args);
		return;
	case MSG_NEW_ROOM:
		hub_new_room(c, hub.args);
		return;
	case MSG_INVITE:
		hub_invite(c, hub.args, n);
		return;
	case MSG_JOIN_ROOM:
		hub_join_room(c, hub.args);
		return;
	case MSG_ROOM_USERS:
		hub_room_users(c, hub.args);
		return;
	case MSG_ROOM_TEXT:
		hub_room_text(c, hub.args);
		return;
	case MSG_LEAVE_ROOM:
		hub_leave_room(c, hub.args);
		return;
	case MSG_DISCONNECT:
		hub_disconnect(c);
		return;
	default:
		fatalx("%s: request type %d", __func__, t);
	}
}
