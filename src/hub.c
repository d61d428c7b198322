/*
 * hub.c: the router.  One process, one epoll loop.  Every worker holds
 * one Unix stream connection to the hub; the hub owns the users and rooms
 * table (it is its only writer), turns each request into JSON lines for
 * the recipients' workers, and batches them: a line is appended to each
 * recipient's output buffer, and every dirty buffer is written once at
 * the end of the loop iteration.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/tree.h>
#include <sys/uio.h>

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <time.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "ipc.h"
#include "log.h"
#include "proto.h"
#include "shm.h"
#include "talknetd.h"
#include "title.h"
#include "utf8.h"
#include "xmalloc.h"

#define HUB_READ_SIZE		(64 * 1024)
#define HUB_KEEP		(128 * 1024)	/* buffer kept when idle */
#define HUB_MAX_EVENTS		256
#define HUB_GRACE_MS		3000	/* for workers to come back */
#define HUB_GRACE_TICK_MS	100
#define HUB_TRIM_IDLE_MS	1000	/* quiet time before malloc_trim */
#define SLOT_NONE		UINT32_MAX

/*
 * One worker's channel.  After a hub restart, a worker's row in the
 * table gets a detached conn (fd -1) that keeps its place, and lines for
 * it queue up, until the worker reconnects or the grace period ends.
 */
struct hub_conn {
	int			 fd;		/* -1: detached */
	pid_t			 pid;
	uint32_t		 slot;		/* its row in the users table */
	int			 hello;		/* HELLO received */
	int			 parted;	/* DISCONNECT done, CLOSE sent */
	int			 dead;		/* to be dropped this round */
	int			 dirty;		/* out has frames to write */
	int			 want_out;	/* EPOLLOUT is registered */
	struct buf		 in;
	struct buf		 out;
	size_t			 share_off;	/* its part of hub.shared, */
	size_t			 share_len;	/* queued after out */
	char			 addr[64];
	TAILQ_ENTRY(hub_conn)	 dirty_entry;
	TAILQ_ENTRY(hub_conn)	 dead_entry;
	TAILQ_ENTRY(hub_conn)	 ident_entry;	/* identified, in order */
	RB_ENTRY(hub_conn)	 name_entry;
};

/* A room, indexed by name; the room itself lives in the table. */
struct hub_room {
	uint32_t		 idx;
	RB_ENTRY(hub_room)	 entry;
};

TAILQ_HEAD(conn_list, hub_conn);
RB_HEAD(user_tree, hub_conn);
RB_HEAD(room_tree, hub_room);

static struct {
	const struct config	*cfg;
	struct shm_table	 tab;
	int			 epfd;
	int			 lfd;
	size_t			 out_cap;	/* per-worker backlog limit */
	uint32_t		 max_frame;	/* longest request payload */
	int64_t			 grace_until;	/* 0, or when detached rows go */
	size_t			 ndetached;
	struct hub_conn		**conns;	/* by slot */
	uint32_t		*free_users;	/* stack of free user rows */
	uint32_t		 nfree_users;
	uint32_t		*free_rooms;	/* stack of free room rows */
	uint32_t		 nfree_rooms;
	struct conn_list	 dirty;
	struct conn_list	 dead;
	struct conn_list	 idents;
	struct user_tree	 users;
	struct room_tree	 rooms;
	struct buf		 line;		/* one encoded JSON line */
	struct buf		 shared;	/* this round's lines to many */
	size_t			 shared_frame;	/* where the last one starts */
	struct str		*list;		/* user lists being encoded */
	size_t			 nlist;
	struct str		*args;		/* strings of one request */
	size_t			 nargs;
	struct str		 key;		/* name looked up in the trees */
	char			*rbuf;		/* HUB_READ_SIZE, for every read */
	size_t			 ndropped;	/* workers gone since the trim */
} hub;

/* The name of a user row, or the look-up key for SLOT_NONE. */
static struct str
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

/* libbsd's tree.h marks static generators __unused but leaves it undefined. */
#ifndef __unused
#define __unused __attribute__((__unused__))
#endif
RB_GENERATE_STATIC(user_tree, hub_conn, name_entry, hub_user_cmp)
RB_GENERATE_STATIC(room_tree, hub_room, entry, hub_room_cmp)

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

/* The table row of a connection's user. */
static struct shm_user *
hub_row(const struct hub_conn *c)
{
	return shm_user(&hub.tab, c->slot);
}

/* A connection's user name. */
static struct str
hub_name(const struct hub_conn *c)
{
	return hub_user_key(c);
}

/* Whether a connection's user has identified. */
static int
hub_identified(const struct hub_conn *c)
{
	return hub_row(c)->state == USER_IDENTIFIED;
}

/* Queues a connection for the end-of-round write. */
static void
hub_mark_dirty(struct hub_conn *c)
{
	if (!c->dirty) {
		c->dirty = 1;
		TAILQ_INSERT_TAIL(&hub.dirty, c, dirty_entry);
	}
}

/* Schedules a connection to be dropped at the end of the round. */
static void
hub_kill(struct hub_conn *c, const char *why)
{
	if (c->dead)
		return;
	log_info("worker %ld (%s): dropped: %s", (long)c->pid, c->addr, why);
	c->dead = 1;
	TAILQ_INSERT_TAIL(&hub.dead, c, dead_entry);
}

/*
 * After a frame was queued for a worker: marks it dirty, and drops it if
 * its backlog (own frames and its part of the shared batch) is too big.
 */
static void
hub_queued(struct hub_conn *c)
{
	hub_mark_dirty(c);
	if (buf_pending(&c->out) + c->share_len > hub.out_cap)
		hub_kill(c, "backlog over the limit");
}

/*
 * Copies a worker's part of the shared batch into its own queue: before
 * anything else is queued for it, and for what a write did not take.
 */
static void
hub_own_share(struct hub_conn *c)
{
	if (c->share_len == 0)
		return;
	xbuf_append(&c->out, buf_head(&hub.shared) + c->share_off,
	    c->share_len);
	c->share_len = 0;
}

/*
 * Puts the encoded line into this round's shared batch once, for
 * hub_share to give to each recipient: a broadcast is copied once, not
 * once per worker, and hub_flush writes each worker's part from there.
 */
static void
hub_share_line(void)
{
	hub.shared_frame = buf_pending(&hub.shared);
	ipc_put(&hub.shared, IPC_LINE, IPC_SLOT_NEW, buf_head(&hub.line),
	    buf_pending(&hub.line));
}

/* Queues the last shared line for one worker. */
static void
hub_share(struct hub_conn *c)
{
	size_t	end = buf_pending(&hub.shared);

	if (c->dead)
		return;
	/* Its part must stay one run of the batch, last in its queue. */
	if (c->share_len > 0 &&
	    c->share_off + c->share_len != hub.shared_frame)
		hub_own_share(c);
	if (c->share_len == 0)
		c->share_off = hub.shared_frame;
	c->share_len = end - c->share_off;
	hub_queued(c);
}

/* Appends one frame for a worker, dropping it if its backlog is full. */
static void
hub_put(struct hub_conn *c, uint16_t type, const void *p, size_t len)
{
	if (c->dead)
		return;
	hub_own_share(c);
	ipc_put(&c->out, type, c->slot, p, len);
	hub_queued(c);
}

/* Encodes m once into the shared line buffer. */
static void
hub_encode(const struct msg *m)
{
	buf_reset(&hub.line);
	if (proto_encode(&hub.line, m) == -1)
		fatal("proto_encode");
}

/* Sends the encoded line to one worker. */
static void
hub_send(struct hub_conn *c)
{
	hub_put(c, IPC_LINE, buf_head(&hub.line), buf_pending(&hub.line));
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

/* Forgets a room whose row the table freed when it emptied. */
static void
hub_room_forget(struct hub_room *r)
{
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
static void
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
	if (hub.nfree_rooms == 0) {
		hub_respond(c, MSG_NEW_ROOM, RES_TOO_MANY_ROOMS, a[0]);
		return;
	}
	r = xcalloc(1, sizeof(*r));
	r->idx = hub.free_rooms[--hub.nfree_rooms];
	shm_room_create(&hub.tab, r->idx, a[0].p, a[0].len, c->slot);
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

/* DISCONNECT: the semantics of the protocol, then CLOSE to the worker. */
static void
hub_disconnect(struct hub_conn *c)
{
	hub_part(c);
	c->parted = 1;
	hub_put(c, IPC_CLOSE, NULL, 0);
}

static void	hub_run(struct hub_conn *, enum msg_type, size_t);

/* Runs one request from a worker; returns -1 to drop the worker. */
static int
hub_request(struct hub_conn *c, const struct ipc_hdr *h, const char *p)
{
	enum msg_type	 t = ipc_request_msg(h->type);
	struct shm_user	*row = hub_row(c);
	long		 n;

	if ((n = ipc_get_strs(p, h->len, NULL, 0)) == -1 ||
	    ipc_check_request(h->type, n) == -1)
		return -1;
	if ((size_t)n > hub.nargs) {
		hub.args = xreallocarray(hub.args, (size_t)n,
		    sizeof(*hub.args));
		hub.nargs = (size_t)n;
	}
	(void)ipc_get_strs(p, h->len, hub.args, hub.nargs);
	if (!ipc_check_args(t, hub.args, (size_t)n, hub.cfg->max_name,
	    hub.cfg->max_room))
		return -1;
	/*
	 * A request resent after a hub restart that already ran is skipped;
	 * only its CLOSE, if it was DISCONNECT, may have been lost.
	 */
	if (h->seq <= row->last_seq) {
		if (t == MSG_DISCONNECT) {
			c->parted = 1;
			hub_put(c, IPC_CLOSE, NULL, 0);
		}
		return 0;
	}
	if (h->seq != row->last_seq + 1 || c->parted)
		return -1;
	/* The worker answers NOT_IDENTIFIED and double IDENTIFY itself. */
	if (t != MSG_DISCONNECT && hub_identified(c) != (t != MSG_IDENTIFY))
		return -1;
	/* The request's effects and its seq land in one table update. */
	shm_begin(&hub.tab);
	hub_run(c, t, (size_t)n);
	row->last_seq = h->seq;
	shm_commit(&hub.tab);
	return 0;
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

/*
 * A worker that was connected before a hub restart takes its detached
 * row back.  Its identity is still the channel: the row must belong to
 * the same process (SO_PEERCRED), or the worker is dropped.  The live
 * conn c takes the detached one's place in every index.
 */
static int
hub_reattach(struct hub_conn *c, uint32_t slot)
{
	struct hub_conn	*old;

	if (slot >= hub.cfg->max_clients || (old = hub.conns[slot]) == NULL ||
	    old->fd != -1 || old->dead || old->pid != c->pid)
		return -1;
	c->slot = slot;
	c->hello = old->hello;
	c->parted = old->parted;
	hub.conns[slot] = c;
	if (hub_identified(old)) {
		TAILQ_INSERT_BEFORE(old, c, ident_entry);
		TAILQ_REMOVE(&hub.idents, old, ident_entry);
		RB_REMOVE(user_tree, &hub.users, old);
		RB_INSERT(user_tree, &hub.users, c);
	}
	/* Lines queued while it was away go out first. */
	hub_own_share(old);
	if (buf_pending(&old->out) > 0) {
		xbuf_append(&c->out, buf_head(&old->out),
		    buf_pending(&old->out));
		hub_mark_dirty(c);
	}
	if (old->dirty)
		TAILQ_REMOVE(&hub.dirty, old, dirty_entry);
	buf_free(&old->in);
	buf_free(&old->out);
	free(old);
	hub.ndetached--;
	log_info("worker %ld (%s): back on row %u", (long)c->pid, c->addr,
	    slot);
	return 0;
}

/* HELLO: gives a new worker a row, or a returning one its own. */
static int
hub_hello(struct hub_conn *c, const char *p, size_t len)
{
	struct ipc_hello	hello;
	struct ipc_welcome	welcome;

	if (c->slot != SLOT_NONE || ipc_get_hello(p, len, &hello) == -1)
		return -1;
	(void)strlcpy(c->addr, hello.addr, sizeof(c->addr));
	if (!utf8_valid(c->addr, strlen(c->addr)))
		(void)strlcpy(c->addr, "?", sizeof(c->addr));
	if (hello.slot != IPC_SLOT_NEW) {
		if (hub_reattach(c, hello.slot) == -1)
			return -1;
	} else {
		if (hub.nfree_users == 0) {
			log_warnx("worker %ld (%s) refused: table full",
			    (long)c->pid, c->addr);
			return -1;
		}
		c->slot = hub.free_users[--hub.nfree_users];
		hub.conns[c->slot] = c;
		shm_begin(&hub.tab);
		shm_user_attach(&hub.tab, c->slot, c->pid);
		shm_commit(&hub.tab);
	}
	c->hello = 1;
	memset(&welcome, 0, sizeof(welcome));
	welcome.slot = c->slot;
	welcome.last_seq = hub_row(c)->last_seq;
	hub_put(c, IPC_WELCOME, &welcome, sizeof(welcome));
	log_debug("worker %ld (%s): hello, row %u", (long)c->pid, c->addr,
	    c->slot);
	return 0;
}

/* The dispatcher: one frame from a worker; returns -1 to drop it. */
static int
hub_dispatch(struct hub_conn *c, const struct ipc_hdr *h, const char *p)
{
	switch (h->type) {
	case IPC_HELLO:
		return hub_hello(c, p, h->len);
	default:
		if (!c->hello || ipc_request_msg(h->type) == MSG_NONE)
			return -1;
		return hub_request(c, h, p);
	}
}

/* Reads what a worker sent and runs every complete frame. */
static void
hub_read(struct hub_conn *c)
{
	struct ipc_hdr	 h;
	struct buf	 rb, *src;
	const char	*p;
	ssize_t		 n;
	int		 r, eof = 0;

	/*
	 * One read buffer for every worker: a channel keeps a buffer of its
	 * own only for a frame that arrived in part, so thousands of idle
	 * channels cost no read buffers.
	 */
	n = read(c->fd, hub.rbuf, HUB_READ_SIZE);
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		log_warn("worker %ld: read", (long)c->pid);
		eof = 1;
	} else if (n == 0)
		eof = 1;
	src = ipc_feed(&c->in, &rb, hub.rbuf, eof ? 0 : (size_t)n);
	while (!c->dead && (r = ipc_get_max(src, hub.max_frame, &h,
	    &p)) != 0) {
		if (r == -1 || hub_dispatch(c, &h, p) == -1) {
			hub_kill(c, "malformed frame");
			return;
		}
	}
	if (!c->dead)
		ipc_keep_rest(&c->in, src);
	buf_shrink(&c->in, HUB_KEEP);
	if (eof)
		hub_kill(c, "channel closed");
}

/* Accepts new worker channels, giving each a row in the users table. */
static void
hub_accept(void)
{
	struct epoll_event	 ev;
	struct ucred		 cred;
	socklen_t		 len;
	struct hub_conn		*c;
	int			 fd;

	for (;;) {
		fd = accept4(hub.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				log_warn("hub: accept");
			return;
		}
		len = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
			log_warn("hub: SO_PEERCRED");
			close(fd);
			continue;
		}
		/* The row comes with HELLO: new, or the worker's own. */
		c = xcalloc(1, sizeof(*c));
		c->fd = fd;
		c->pid = cred.pid;
		c->slot = SLOT_NONE;
		(void)strlcpy(c->addr, "?", sizeof(c->addr));
		buf_init(&c->in);
		buf_init(&c->out);

		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(hub.epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
			fatal("hub: epoll_ctl add");
	}
}

/* Drops a connection: DISCONNECT semantics, then frees its row. */
static void
hub_drop(struct hub_conn *c)
{
	if (c->slot != SLOT_NONE) {
		shm_begin(&hub.tab);
		hub_part(c);
		shm_user_detach(&hub.tab, c->slot);
		shm_commit(&hub.tab);
		hub.conns[c->slot] = NULL;
		hub.free_users[hub.nfree_users++] = c->slot;
	}
	if (c->dirty)
		TAILQ_REMOVE(&hub.dirty, c, dirty_entry);
	/* Closing the fd also removes it from the epoll set. */
	if (c->fd != -1)
		close(c->fd);
	else
		hub.ndetached--;
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
	hub.ndropped++;
}

/* Writes each dirty worker's batch once; waits for EPOLLOUT if partial. */
static void
hub_flush(void)
{
	struct epoll_event	 ev;
	struct hub_conn		*c;
	struct iovec		 iov[2];
	ssize_t			 n;
	size_t			 own;
	int			 want;

	while ((c = TAILQ_FIRST(&hub.dirty)) != NULL) {
		TAILQ_REMOVE(&hub.dirty, c, dirty_entry);
		c->dirty = 0;
		if (c->dead) {
			c->share_len = 0;
			continue;
		}
		/* A detached worker's lines wait for it to come back. */
		if (c->fd == -1) {
			hub_own_share(c);
			continue;
		}
		/* Its own frames, then its part of the shared batch. */
		iov[0].iov_base = buf_head(&c->out);
		iov[0].iov_len = buf_pending(&c->out);
		iov[1].iov_base = buf_head(&hub.shared) + c->share_off;
		iov[1].iov_len = c->share_len;
		n = writev(c->fd, iov, c->share_len > 0 ? 2 : 1);
		if (n == -1 && errno != EAGAIN && errno != EINTR) {
			c->share_len = 0;
			hub_kill(c, "write failed");
			continue;
		}
		if (n > 0) {
			own = (size_t)n < iov[0].iov_len ? (size_t)n :
			    iov[0].iov_len;
			buf_drain(&c->out, own);
			c->share_off += (size_t)n - own;
			c->share_len -= (size_t)n - own;
		}
		/* The batch is gone after this round: keep what is left. */
		hub_own_share(c);
		buf_shrink(&c->out, HUB_KEEP);
		want = buf_pending(&c->out) > 0;
		if (want != c->want_out) {
			memset(&ev, 0, sizeof(ev));
			ev.events = EPOLLIN | (want ? EPOLLOUT : 0);
			ev.data.ptr = c;
			if (epoll_ctl(hub.epfd, EPOLL_CTL_MOD, c->fd, &ev) == -1)
				fatal("hub: epoll_ctl mod");
			c->want_out = want;
		}
	}
}

/* Ends the round: drops dead workers and writes every batch. */
static void
hub_end_round(void)
{
	struct hub_conn	*c;

	while (!TAILQ_EMPTY(&hub.dead) || !TAILQ_EMPTY(&hub.dirty)) {
		while ((c = TAILQ_FIRST(&hub.dead)) != NULL) {
			TAILQ_REMOVE(&hub.dead, c, dead_entry);
			hub_drop(c);
		}
		hub_flush();
	}
	/*
	 * Every part of the shared batch was written or copied by now (a
	 * worker with a part is dirty until flushed), and a line to many
	 * may have had no one to go to: start the next round empty.
	 */
	buf_reset(&hub.shared);
	buf_shrink(&hub.shared, HUB_KEEP);
}

/* Orders identified users by when they identified. */
static int
hub_seq_cmp(const void *a, const void *b)
{
	const struct hub_conn	*x = *(struct hub_conn *const *)a;
	const struct hub_conn	*y = *(struct hub_conn *const *)b;
	uint64_t		 sx = hub_row(x)->seq, sy = hub_row(y)->seq;

	return (sx > sy) - (sx < sy);
}

/*
 * A restarted hub takes the table as the last one left it: repairs what
 * a crash mid-update may have torn, then rebuilds its private indices.
 * Every attached row gets a detached conn until its worker comes back.
 */
static void
hub_resume(void)
{
	struct shm_hdr	 *h = hub.tab.hdr;
	struct shm_user	 *u;
	struct hub_conn	 *c, **idents;
	struct hub_room	 *r;
	size_t		  nidents = 0, k;
	uint32_t	  i;
	unsigned	  fixes;

	if ((fixes = shm_repair(&hub.tab)) > 0)
		log_warnx("hub: table repaired (%u fixes)", fixes);
	idents = xcalloc(h->max_users, sizeof(*idents));
	for (i = h->max_users; i-- > 0; ) {
		u = shm_user(&hub.tab, i);
		if (u->state == USER_FREE) {
			hub.free_users[hub.nfree_users++] = i;
			continue;
		}
		c = xcalloc(1, sizeof(*c));
		c->fd = -1;
		c->pid = u->pid;
		c->slot = i;
		c->hello = 1;
		(void)strlcpy(c->addr, "(away)", sizeof(c->addr));
		buf_init(&c->in);
		buf_init(&c->out);
		hub.conns[i] = c;
		hub.ndetached++;
		if (u->state == USER_IDENTIFIED) {
			if (RB_INSERT(user_tree, &hub.users, c) != NULL) {
				/* Two rows with one name: keep the first. */
				shm_user_unidentify(&hub.tab, i);
				continue;
			}
			idents[nidents++] = c;
		}
	}
	qsort(idents, nidents, sizeof(*idents), hub_seq_cmp);
	for (k = 0; k < nidents; k++)
		TAILQ_INSERT_TAIL(&hub.idents, idents[k], ident_entry);
	free(idents);
	for (i = h->max_rooms; i-- > 0; ) {
		if (!shm_room(&hub.tab, i)->in_use) {
			hub.free_rooms[hub.nfree_rooms++] = i;
			continue;
		}
		r = xcalloc(1, sizeof(*r));
		r->idx = i;
		if (RB_INSERT(room_tree, &hub.rooms, r) != NULL) {
			/* Two rooms with one name: keep the first. */
			log_warnx("hub: room row %u repeats a name", i);
			memset(shm_room(&hub.tab, i), 0,
			    hub.tab.hdr->room_stride);
			hub.tab.hdr->nrooms--;
			hub.free_rooms[hub.nfree_rooms++] = i;
			free(r);
		}
	}
	hub.grace_until = clock_now_ms() + HUB_GRACE_MS;
	log_info("hub: resumed %u users (%zu identified) and %u rooms",
	    h->max_users - hub.nfree_users, nidents, h->nrooms);
}

/*
 * During the grace period after a restart, drops the rows whose worker
 * died meanwhile; when it ends, drops every row still detached.
 */
static void
hub_grace(void)
{
	struct hub_conn	*c;
	uint32_t	 i;
	int		 over;

	if (hub.grace_until == 0)
		return;
	over = clock_now_ms() >= hub.grace_until;
	for (i = 0; i < hub.cfg->max_clients; i++) {
		if ((c = hub.conns[i]) == NULL || c->fd != -1 || c->dead)
			continue;
		if (over)
			hub_kill(c, "did not come back");
		else if (kill(c->pid, 0) == -1 && errno == ESRCH)
			hub_kill(c, "exited while the hub was down");
	}
	if (over || hub.ndetached == 0)
		hub.grace_until = 0;
}

/*
 * Maps the table writable.  A table a previous hub left is resumed;
 * otherwise (a fresh, zeroed segment) it is laid out empty.
 */
static void
hub_map(const struct runtime *rt)
{
	void	*mem;
	int	 resume;

	/* Only the hub maps the segment writable: it is the table's writer. */
	mem = mmap(NULL, rt->shm_size, PROT_READ | PROT_WRITE, MAP_SHARED,
	    rt->shm_fd, 0);
	if (mem == MAP_FAILED)
		fatal("hub: mmap");
	close(rt->shm_fd);
	hub.tab.hdr = mem;
	hub.tab.size = rt->shm_size;
	resume = shm_check(mem, rt->shm_size) == 0 &&
	    hub.tab.hdr->max_users == hub.cfg->max_clients &&
	    hub.tab.hdr->max_rooms == hub.cfg->max_rooms;
	if (!resume)
		shm_format(mem, rt->shm_size, hub.cfg->max_clients,
		    hub.cfg->max_rooms, hub.cfg->max_name, hub.cfg->max_room);
	hub.conns = xcalloc(hub.cfg->max_clients, sizeof(*hub.conns));
	hub.free_users = xcalloc(hub.cfg->max_clients,
	    sizeof(*hub.free_users));
	hub.free_rooms = xcalloc(hub.cfg->max_rooms, sizeof(*hub.free_rooms));
	if (resume) {
		hub_resume();
		return;
	}
	/* Lowest rows first: the stacks pop from the end. */
	for (hub.nfree_users = 0; hub.nfree_users < hub.cfg->max_clients;
	    hub.nfree_users++)
		hub.free_users[hub.nfree_users] = (uint32_t)
		    (hub.cfg->max_clients - 1 - hub.nfree_users);
	for (hub.nfree_rooms = 0; hub.nfree_rooms < hub.cfg->max_rooms;
	    hub.nfree_rooms++)
		hub.free_rooms[hub.nfree_rooms] = (uint32_t)
		    (hub.cfg->max_rooms - 1 - hub.nfree_rooms);
}

/* The hub process: set up, then route until killed. */
void
hub_main(const struct config *cfg, const struct runtime *rt)
{
	struct epoll_event	 ev, evs[HUB_MAX_EVENTS];
	struct hub_conn		*c;
	int			 n, k, timeout;

	title_set("hub");
	/* The table's writer: no process of our uid may ptrace it (again:
	 * dropping to -u USER reset the flag inherited from the master). */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fatal("hub: prctl PR_SET_DUMPABLE");
	/* Die with the master, so no hub outlives the service. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
		fatal("hub: prctl");

	/* Bursts must not pin memory: big chunks go back when freed. */
	(void)mallopt(M_MMAP_THRESHOLD, HUB_KEEP);
	(void)mallopt(M_TRIM_THRESHOLD, HUB_KEEP);
	hub.cfg = cfg;
	hub.lfd = rt->hub_listen_fd;
	hub.out_cap = 2 * cfg->max_queue + 2 * cfg->max_line + 65536;
	/*
	 * A request comes from one line of at most max_line bytes, and each
	 * of its strings costs the line at least as much as the 4-byte
	 * prefix does the frame: no honest payload is longer than this.
	 * A hostile worker cannot make the hub buffer or allocate more.
	 */
	hub.max_frame = (uint32_t)(2 * cfg->max_line + 4096);
	TAILQ_INIT(&hub.dirty);
	TAILQ_INIT(&hub.dead);
	TAILQ_INIT(&hub.idents);
	RB_INIT(&hub.users);
	RB_INIT(&hub.rooms);
	buf_init(&hub.line);
	buf_init(&hub.shared);
	hub.rbuf = xcalloc(1, HUB_READ_SIZE);
	hub_map(rt);

	if ((hub.epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("hub: epoll_create1");
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	if (epoll_ctl(hub.epfd, EPOLL_CTL_ADD, hub.lfd, &ev) == -1)
		fatal("hub: epoll_ctl");
	log_debug("hub: ready, %zu bytes of table", rt->shm_size);

	for (;;) {
		timeout = hub.grace_until != 0 ? HUB_GRACE_TICK_MS : -1;
		if (hub.ndropped > 0 && timeout == -1)
			timeout = HUB_TRIM_IDLE_MS;
		n = epoll_wait(hub.epfd, evs, HUB_MAX_EVENTS, timeout);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			fatal("hub: epoll_wait");
		}
		/*
		 * Quiet after workers left: give their memory back.  Freed
		 * chunks amid live ones stay in the heap otherwise, and
		 * bursts of thousands of clients would ratchet it up.
		 */
		if (n == 0 && hub.ndropped > 0) {
			(void)malloc_trim(0);
			hub.ndropped = 0;
		}
		for (k = 0; k < n; k++) {
			if ((c = evs[k].data.ptr) == NULL) {
				hub_accept();
				continue;
			}
			if (c->dead)
				continue;
			if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				hub_read(c);
			if ((evs[k].events & EPOLLOUT) && !c->dead)
				hub_mark_dirty(c);
		}
		hub_grace();
		hub_end_round();
	}
}
