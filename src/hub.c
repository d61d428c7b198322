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
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/tree.h>
#include <sys/uio.h>

#include <linux/sockios.h>

#include <errno.h>
#include <fcntl.h>
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
#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "proto.h"
#include "shm.h"
#include "talknetd.h"
#include "title.h"
#include "xmalloc.h"

#define HUB_READ_SIZE		(64 * 1024)
#define HUB_KEEP		(128 * 1024)	/* buffer kept when idle */
#define HUB_MAX_EVENTS		256
#define HUB_GRACE_MS		3000	/* for workers to come back */
#define HUB_GRACE_TICK_MS	100
#define HUB_TRIM_IDLE_MS	1000	/* quiet time before malloc_trim */
#define HUB_PACE_TICK_MS	50	/* pacing checks while senders wait */
#define HUB_PACE_WINDOW_MS	1000	/* a pacing reader is measured over */
#define HUB_PACE_MIN_RATE	(64 * 1024)	/* bytes/s to pace a sender */
#define HUB_END_ROUND_PASSES	4	/* flushes per round, at most */
#define HUB_HELLO_MS		5000	/* a new channel's time to say HELLO */
#define HUB_PAUSE_MS		200	/* no accepting after EMFILE */
#define HUB_ACCEPT_BURST	64	/* channels accepted per round */
/*
 * Channels beyond max-clients: the master forks at most max-clients
 * workers it counts, but a worker that has gone may not have been seen
 * to close its channel yet when its successor connects, and workers
 * coming back after a hub restart reconnect in a burst.  A worker
 * closes its channel before the master stops counting it, so a few
 * dozen cover that lag.  48 and the hub's own fds (stdio, epoll, the
 * listener, the spare) fit the master's MASTER_FD_SLACK of 64.
 */
#define HUB_CHANNEL_MARGIN	48
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
	int			 watched;	/* in the epoll set */
	uint32_t		 close_reason;	/* enum ipc_close_reason */
	/*
	 * Flow control.  A sender whose line takes a reader's backlog over
	 * the high-water mark is paused (not read) until that reader
	 * drains; only a reader that drains at HUB_PACE_MIN_RATE may pace
	 * anyone, and one that does not is stuck: it is cut when its
	 * backlog reaches the cap, and nobody waits for it.
	 */
	int			 paused;	/* unread: a reader is behind */
	struct hub_conn		*paced_by;	/* that reader */
	int			 stuck;		/* too slow to pace anyone */
	uint64_t		 drained;	/* bytes written to it, ever */
	int64_t			 pace_at;	/* its pacing window began */
	uint64_t		 pace_taken;	/* hub_taken() when it began */
	size_t			 cap_extra;	/* held when max-queue fell */
	int			 waiting;	/* on hub.waiting, no HELLO yet */
	int64_t			 hello_by;	/* drop it then without HELLO */
	uint32_t		 rooms;		/* it created, still there */
	struct buf		 in;
	struct buf		 out;
	size_t			 share_off;	/* its part of hub.shared, */
	size_t			 share_len;	/* queued after out */
	char			 addr[64];
	TAILQ_ENTRY(hub_conn)	 dirty_entry;
	TAILQ_ENTRY(hub_conn)	 dead_entry;
	TAILQ_ENTRY(hub_conn)	 ident_entry;	/* identified, in order */
	TAILQ_ENTRY(hub_conn)	 paused_entry;
	TAILQ_ENTRY(hub_conn)	 wait_entry;	/* by hello_by */
	RB_ENTRY(hub_conn)	 name_entry;
	RB_ENTRY(hub_conn)	 pid_entry;	/* every conn with a row */
};

/*
 * A room, indexed by name; the room itself lives in the table.  Its
 * creator's row and the room's seq outlive the row, which the table
 * clears when the room empties, so the creator's count can drop then.
 */
struct hub_room {
	uint32_t		 idx;
	uint32_t		 creator;	/* user row */
	uint64_t		 seq;		/* when it was created */
	RB_ENTRY(hub_room)	 entry;
};

TAILQ_HEAD(conn_list, hub_conn);
RB_HEAD(user_tree, hub_conn);
RB_HEAD(pid_tree, hub_conn);
RB_HEAD(room_tree, hub_room);

static struct {
	const struct config	*cfg;
	struct shm_table	 tab;
	int			 epfd;
	int			 lfd;
	int			 ctl_fd;	/* the master's control pipe */
	struct buf		 ctl_in;
	struct shm_live		 live;		/* the limits in force */
	size_t			 max_line_seen;	/* longest any worker has */
	size_t			 q_low;		/* backlog: pacing ends */
	size_t			 q_high;	/* backlog: senders pause */
	size_t			 q_cap;		/* backlog: the reader is cut */
	uint32_t		 max_frame;	/* longest request payload */
	struct hub_conn		*reading;	/* whose frames run now */
	uint64_t		 gen_before;	/* the last hub's generation */
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
	struct conn_list	 paused;
	struct user_tree	 users;
	struct pid_tree		 pids;		/* one row per process */
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
	struct conn_list	 waiting;	/* channels before HELLO */
	size_t			 nchannels;	/* open channels (fd != -1) */
	size_t			 max_channels;
	size_t			 nrefused;	/* over the cap, not yet logged */
	int64_t			 refused_logged;
	int			 spare_fd;	/* given up to refuse at EMFILE */
	int64_t			 paused_until;	/* 0, or accepting resumes */
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
/* Orders connections by their worker's pid. */
static int
hub_pid_cmp(struct hub_conn *a, struct hub_conn *b)
{
	return (a->pid > b->pid) - (a->pid < b->pid);
}

RB_GENERATE_STATIC(user_tree, hub_conn, name_entry, hub_user_cmp)
RB_GENERATE_STATIC(pid_tree, hub_conn, pid_entry, hub_pid_cmp)
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

/*
 * Schedules a connection to be dropped at the end of the round, saying
 * why in the log and, in a CLOSE frame, to the worker.
 */
static void
hub_kill(struct hub_conn *c, uint32_t reason, const char *why)
{
	if (c->dead)
		return;
	log_info("worker %ld (%s): dropped: %s", (long)c->pid, c->addr, why);
	c->dead = 1;
	c->close_reason = reason;
	TAILQ_INSERT_TAIL(&hub.dead, c, dead_entry);
}

/* Bytes queued for a worker and not yet written to its channel. */
static size_t
hub_backlog(const struct hub_conn *c)
{
	return buf_pending(&c->out) + c->share_len;
}

/* Sets the events a channel is watched for: input unless paused. */
static void
hub_watch(struct hub_conn *c)
{
	struct epoll_event	ev;

	if (c->fd == -1 || !c->watched)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = (c->paused ? 0 : EPOLLIN) | (c->want_out ? EPOLLOUT : 0);
	ev.data.ptr = c;
	if (epoll_ctl(hub.epfd, EPOLL_CTL_MOD, c->fd, &ev) == -1)
		fatal("hub: epoll_ctl mod");
}

/*
 * Bytes a worker has read from its channel, ever.  What the hub wrote is
 * not enough: a Unix socket reports room again only once three quarters
 * of its buffer were read, so a worker reading steadily would look idle
 * for a second at a time; SIOCOUTQ says what the worker has not read.
 */
static uint64_t
hub_taken(const struct hub_conn *c)
{
	int	unread = 0;

	if (c->fd == -1 || ioctl(c->fd, SIOCOUTQ, &unread) == -1 ||
	    unread < 0)
		unread = 0;
	if ((uint64_t)unread > c->drained)
		return 0;
	return c->drained - (uint64_t)unread;
}

/*
 * A detached reader came back as a new conn (hub_reattach): the senders
 * it paced now wait for the new one, whose pacing window starts now.
 */
static void
hub_pace_moved(struct hub_conn *old, struct hub_conn *c)
{
	struct hub_conn	*s;

	TAILQ_FOREACH(s, &hub.paused, paused_entry) {
		if (s->paced_by == old)
			s->paced_by = c;
	}
	c->pace_at = 0;
}

/*
 * Pauses sender s because reader r is behind: s is read no more until r
 * drains, so TCP carries the back-pressure to s's client.  r's pacing
 * window starts now, if it has none running.
 */
static void
hub_pace(struct hub_conn *s, struct hub_conn *r)
{
	if (s->paused || s->dead)
		return;
	s->paused = 1;
	s->paced_by = r;
	TAILQ_INSERT_TAIL(&hub.paused, s, paused_entry);
	if (r->pace_at == 0) {
		r->pace_at = clock_now_ms();
		r->pace_taken = hub_taken(r);
	}
	hub_watch(s);
	log_debug("worker %ld (%s): paused for worker %ld (%s)",
	    (long)s->pid, s->addr, (long)r->pid, r->addr);
}

/*
 * After a frame was queued for a worker: marks it dirty; pauses the
 * sender if the worker's backlog is over the high-water mark and it
 * drains well; drops it if the backlog is over the cap.
 */
static void
hub_queued(struct hub_conn *c)
{
	size_t	b = hub_backlog(c);

	hub_mark_dirty(c);
	if (b > hub.q_cap + c->cap_extra) {
		log_debug("worker %ld (%s): %zu bytes held, %zu in its part of "
		    "the batch", (long)c->pid, c->addr, b, c->share_len);
		hub_kill(c, CLOSE_QUEUE, c->stuck ?
		    "queue over the limit, draining too slowly" :
		    "queue over the limit");
		return;
	}
	/* A reader away after a hub restart paces until its grace ends. */
	if (b > hub.q_high && !c->stuck &&
	    (c->fd != -1 || hub.grace_until != 0) &&
	    hub.reading != NULL && hub.reading != c)
		hub_pace(hub.reading, c);
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

/*
 * The conn of the user that created room r, if it is still there: the
 * user in the creator's row identified before r was made (anyone who
 * took the row later identified after), or NULL.
 */
static struct hub_conn *
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
hub_request_args(struct hub_conn *c, const struct ipc_hdr *h,
    const char *p, long *np)
{
	enum msg_type	 t = ipc_request_msg(h->type);
	long		 n;

	(void)c;
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
static const char *
hub_request(struct hub_conn *c, const struct ipc_hdr *h, const char *p)
{
	enum msg_type	 t = ipc_request_msg(h->type);
	struct shm_user	*row = hub_row(c);
	const char	*why;
	long		 n;
	int		 again = 0;

	if ((why = hub_request_args(c, h, p, &n)) != NULL)
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
	c->rooms = old->rooms;
	hub.conns[slot] = c;
	RB_REMOVE(pid_tree, &hub.pids, old);
	RB_INSERT(pid_tree, &hub.pids, c);
	hub_pace_moved(old, c);
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

/*
 * Whether a HELLO's address is made of what sockaddr_fmt writes for an
 * honest worker: "192.0.2.1:80", "[2001:db8::1]:80", "[fe80::1%eth0]:80"
 * (an interface name: letters, digits, '-', '_', '.'), or "?".
 */
static int
hub_addr_ok(const char *a)
{
	unsigned char	ch;

	if (*a == '\0')
		return 0;
	for (; *a != '\0'; a++) {
		ch = (unsigned char)*a;
		if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= 'A' && ch <= 'Z'))
			continue;
		if (strchr(".:[]%-_?", ch) == NULL)
			return 0;
	}
	return 1;
}

/* Takes a channel off the list of those that owe a HELLO. */
static void
hub_unwait(struct hub_conn *c)
{
	if (c->waiting) {
		TAILQ_REMOVE(&hub.waiting, c, wait_entry);
		c->waiting = 0;
	}
}

/*
 * The detached row of a worker that says it has none: the old hub gave
 * it a row (and may have run its IDENTIFY) but died before the WELCOME
 * reached it.  Found by the channel's pid, never by what the worker says.
 */
static uint32_t
hub_detached_row(pid_t pid)
{
	struct hub_conn	key, *c;

	key.pid = pid;
	if ((c = RB_FIND(pid_tree, &hub.pids, &key)) == NULL ||
	    c->fd != -1 || c->dead)
		return SLOT_NONE;
	return c->slot;
}

/* Whether a process already holds a row on a live channel. */
static int
hub_pid_has_row(pid_t pid)
{
	struct hub_conn	key, *c;

	key.pid = pid;
	return (c = RB_FIND(pid_tree, &hub.pids, &key)) != NULL &&
	    c->fd != -1;
}

/* HELLO: gives a new worker a row, or a returning one its own. */
static const char *
hub_hello(struct hub_conn *c, const char *p, size_t len)
{
	struct ipc_hello	hello;
	struct ipc_welcome	welcome;
	char			esc[LOG_ESCAPED(sizeof(hello.addr))];

	if (c->slot != SLOT_NONE)
		return "a second HELLO";
	if (ipc_get_hello(p, len, &hello) == -1)
		return "a malformed HELLO";
	/* It goes into log lines: only what an address is made of. */
	if (!hub_addr_ok(hello.addr)) {
		log_warnx("worker %ld: HELLO with a bad address \"%s\"",
		    (long)c->pid, log_escape(hello.addr, strlen(hello.addr),
		    esc, sizeof(esc)));
		return "a HELLO with a bad address";
	}
	(void)strlcpy(c->addr, hello.addr, sizeof(c->addr));
	if (hello.slot == IPC_SLOT_NEW)
		hello.slot = hub_detached_row(c->pid);
	if (hello.slot != SLOT_NONE) {
		if (hub_reattach(c, hello.slot) == -1) {
			/* Its row went when the grace period ended. */
			if (hello.slot < hub.cfg->max_clients &&
			    hub.conns[hello.slot] == NULL)
				c->close_reason = CLOSE_GONE;
			return "HELLO for a row that is not its own";
		}
	} else {
		/* A worker has one channel: more would be one process
		 * taking rows for clients it does not have. */
		if (hub_pid_has_row(c->pid))
			return "a second channel from one process";
		if (hub.nfree_users == 0) {
			c->close_reason = CLOSE_REFUSED;
			return "refused: table full";
		}
		c->slot = hub.free_users[--hub.nfree_users];
		hub.conns[c->slot] = c;
		RB_INSERT(pid_tree, &hub.pids, c);
		shm_begin(&hub.tab);
		shm_user_attach(&hub.tab, c->slot, c->pid);
		shm_commit(&hub.tab);
	}
	c->hello = 1;
	hub_unwait(c);
	memset(&welcome, 0, sizeof(welcome));
	welcome.slot = c->slot;
	welcome.last_seq = hub_row(c)->last_seq;
	hub_put(c, IPC_WELCOME, &welcome, sizeof(welcome));
	log_debug("worker %ld (%s): hello, row %u", (long)c->pid, c->addr,
	    c->slot);
	return NULL;
}

/* The dispatcher: one frame from a worker; NULL, or why to drop it. */
static const char *
hub_dispatch(struct hub_conn *c, const struct ipc_hdr *h, const char *p)
{
	if (h->type == IPC_HELLO)
		return hub_hello(c, p, h->len);
	if (!c->hello)
		return "a frame before HELLO";
	if (ipc_request_msg(h->type) == MSG_NONE)
		return "a frame of unknown type";
	return hub_request(c, h, p);
}

/*
 * Runs the complete frames in src, as the sender c, until they run out
 * or a reader that is behind pauses c; the rest stays in c's input.
 */
static void
hub_run_frames(struct hub_conn *c, struct buf *src)
{
	struct ipc_hdr	 h;
	const char	*p, *why;
	int		 r;

	hub.reading = c;
	while (!c->dead && !c->paused &&
	    (r = ipc_get_max(src, hub.max_frame, &h, &p)) != 0) {
		if (r == -1) {
			hub_kill(c, CLOSE_PROTOCOL, h.version != IPC_VERSION ?
			    "a frame of another IPC version" :
			    "a frame over the length limit");
			break;
		}
		if ((why = hub_dispatch(c, &h, p)) != NULL) {
			hub_kill(c, c->close_reason != 0 ? c->close_reason :
			    CLOSE_PROTOCOL, why);
			break;
		}
	}
	hub.reading = NULL;
	if (!c->dead)
		ipc_keep_rest(&c->in, src);
}

/* Reads what a worker sent and runs every complete frame. */
static void
hub_read(struct hub_conn *c)
{
	struct buf	 rb, *src;
	ssize_t		 n;
	int		 eof = 0;

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
	hub_run_frames(c, src);
	buf_shrink(&c->in, HUB_KEEP);
	if (eof)
		hub_kill(c, 0, "channel closed");
}

/*
 * Stops accepting for HUB_PAUSE_MS: out of fds or memory, accept would
 * fail again at once, and a level-triggered listener would spin the
 * loop.  The listener leaves the epoll set; hub_timers puts it back.
 */
static void
hub_accept_pause(void)
{
	if (epoll_ctl(hub.epfd, EPOLL_CTL_DEL, hub.lfd, NULL) == -1)
		fatal("hub: epoll_ctl del");
	hub.paused_until = clock_now_ms() + HUB_PAUSE_MS;
}

/*
 * Out of fds: the waiting worker would hang in the backlog until the
 * pause ends, and again after.  Give back the spare fd for a moment so
 * it can be accepted and closed (the worker tries again), then take the
 * spare again.
 */
static void
hub_refuse(void)
{
	int	fd, saved = errno;

	if (hub.spare_fd != -1) {
		close(hub.spare_fd);
		if ((fd = accept4(hub.lfd, NULL, NULL, SOCK_CLOEXEC)) != -1)
			close(fd);
	}
	/* -1 until an fd is free again; the next EMFILE tries once more. */
	hub.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	errno = saved;
}

/* A channel over the cap was closed: says so at most once a second. */
static void
hub_over_cap(void)
{
	int64_t	now = clock_now_ms();

	hub.nrefused++;
	if (hub.refused_logged != 0 && now - hub.refused_logged < 1000)
		return;
	log_warnx("hub: %zu channel(s) refused: %zu open, the most "
	    "(--max-clients + %d)", hub.nrefused, hub.nchannels,
	    HUB_CHANNEL_MARGIN);
	hub.nrefused = 0;
	hub.refused_logged = now;
}

/* Takes one channel in; it gets its row with HELLO, new or its own. */
static void
hub_add(int fd, pid_t pid)
{
	struct epoll_event	 ev;
	struct hub_conn		*c;

	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->pid = pid;
	c->slot = SLOT_NONE;
	(void)strlcpy(c->addr, "?", sizeof(c->addr));
	buf_init(&c->in);
	buf_init(&c->out);
	/* Accepted in time order: the list stays sorted by deadline. */
	c->hello_by = clock_now_ms() + HUB_HELLO_MS;
	c->waiting = 1;
	TAILQ_INSERT_TAIL(&hub.waiting, c, wait_entry);
	hub.nchannels++;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(hub.epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
		fatal("hub: epoll_ctl add");
	c->watched = 1;
}

/*
 * Accepts new worker channels, up to max-clients + HUB_CHANNEL_MARGIN
 * of them; one over that is closed at once.  Out of fds or memory,
 * accepting pauses (tmux's server_accept does the same).
 */
static void
hub_accept(void)
{
	struct ucred	cred;
	socklen_t	len;
	int		fd, i;

	for (i = 0; i < HUB_ACCEPT_BURST; i++) {
		fd = accept4(hub.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			switch (errno) {
			case EINTR:
			case ECONNABORTED:
				continue;
			case EAGAIN:
				return;
			case EMFILE:
			case ENFILE:
				hub_refuse();
				break;
			}
			/* One warning per pause, whatever the cause. */
			log_warn("hub: accept (pausing %d ms)", HUB_PAUSE_MS);
			hub_accept_pause();
			return;
		}
		if (hub.nchannels >= hub.max_channels) {
			close(fd);
			hub_over_cap();
			continue;
		}
		len = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
			log_warn("hub: SO_PEERCRED");
			close(fd);
			continue;
		}
		hub_add(fd, cred.pid);
	}
}

/*
 * The hub's timers: accepting resumes after a pause, and a channel that
 * owes a HELLO past its deadline is dropped.
 */
static void
hub_timers(void)
{
	struct epoll_event	 ev;
	struct hub_conn		*c;
	int64_t			 now = clock_now_ms();

	if (hub.paused_until != 0 && now >= hub.paused_until) {
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.ptr = NULL;
		if (epoll_ctl(hub.epfd, EPOLL_CTL_ADD, hub.lfd, &ev) == -1)
			fatal("hub: epoll_ctl add");
		hub.paused_until = 0;
	}
	while ((c = TAILQ_FIRST(&hub.waiting)) != NULL && c->hello_by <= now) {
		hub_unwait(c);
		hub_kill(c, CLOSE_TIMEOUT, "no HELLO in time");
	}
}

/* The epoll timeout: the sooner of t and the hub's next timer. */
static int
hub_timeout(int t)
{
	struct hub_conn	*c;
	int64_t		 next = 0, now = clock_now_ms();

	if (hub.paused_until != 0)
		next = hub.paused_until;
	if ((c = TAILQ_FIRST(&hub.waiting)) != NULL &&
	    (next == 0 || c->hello_by < next))
		next = c->hello_by;
	if (next == 0)
		return t;
	next = next > now ? next - now + 1 : 0;
	return t == -1 || next < t ? (int)next : t;
}

/* Takes a sender off the paused list. */
static void
hub_unpause(struct hub_conn *s)
{
	if (!s->paused)
		return;
	s->paused = 0;
	s->paced_by = NULL;
	TAILQ_REMOVE(&hub.paused, s, paused_entry);
}

/*
 * Says CLOSE and its reason on a channel the hub drops on purpose, so
 * the worker closes its client instead of reconnecting.  Only when
 * nothing is pending for it: a frame half written would garble the
 * CLOSE, and a worker that has a row sees it freed in the table anyway.
 */
static void
hub_say_close(struct hub_conn *c)
{
	struct ipc_close	cl;
	struct buf		b;
	char			store[sizeof(struct ipc_hdr) + sizeof(cl)];

	if (c->fd == -1 || c->close_reason == 0 || c->parted ||
	    buf_pending(&c->out) > 0)
		return;
	memset(&cl, 0, sizeof(cl));
	cl.reason = c->close_reason;
	buf_init_store(&b, store, sizeof(store));
	ipc_put(&b, IPC_CLOSE, c->slot, &cl, sizeof(cl));
	/* Best effort: a full channel means a worker that reads no more. */
	(void)send(c->fd, buf_head(&b), buf_pending(&b),
	    MSG_DONTWAIT | MSG_NOSIGNAL);
	buf_free(&b);
}

/* Drops a connection: DISCONNECT semantics, then frees its row. */
static void
hub_drop(struct hub_conn *c)
{
	struct hub_conn	*s, *next;

	hub_unpause(c);
	/* Whoever it paced goes on: hub_end_round runs their input. */
	TAILQ_FOREACH_SAFE(s, &hub.paused, paused_entry, next) {
		if (s->paced_by == c)
			s->paced_by = NULL;
	}
	if (c->slot != SLOT_NONE) {
		shm_begin(&hub.tab);
		hub_part(c);
		shm_user_detach(&hub.tab, c->slot);
		shm_commit(&hub.tab);
		hub.conns[c->slot] = NULL;
		hub.free_users[hub.nfree_users++] = c->slot;
		RB_REMOVE(pid_tree, &hub.pids, c);
	}
	if (c->dirty)
		TAILQ_REMOVE(&hub.dirty, c, dirty_entry);
	/* The row is free before the channel closes: a worker that sees
	 * the close and then its row gone knows it was dropped. */
	hub_say_close(c);
	hub_unwait(c);
	/* Closing the fd also removes it from the epoll set. */
	if (c->fd != -1) {
		close(c->fd);
		hub.nchannels--;
	} else
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
			hub_kill(c, 0, "write failed");
			continue;
		}
		if (n > 0) {
			c->drained += (uint64_t)n;
			own = (size_t)n < iov[0].iov_len ? (size_t)n :
			    iov[0].iov_len;
			buf_drain(&c->out, own);
			c->share_off += (size_t)n - own;
			c->share_len -= (size_t)n - own;
		}
		/* The batch is gone after this round: keep what is left. */
		hub_own_share(c);
		buf_shrink(&c->out, HUB_KEEP);
		/* Caught up: it may pace senders again if it falls behind. */
		if (buf_pending(&c->out) <= hub.q_low) {
			c->stuck = 0;
			c->pace_at = 0;
			c->cap_extra = 0;
		}
		want = buf_pending(&c->out) > 0;
		if (want != c->want_out) {
			c->want_out = want;
			hub_watch(c);
		}
	}
}

/*
 * Lets a sender taken off the paused list go on: watched for input
 * again, and the frames it had sent meanwhile run now (they may pause
 * it again).
 */
static void
hub_pace_resume(struct hub_conn *s)
{
	struct epoll_event	ev;

	if (s->dead)
		return;
	if (!s->watched) {
		/* Its channel hung up while paused: see the rest, then EOF. */
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN | (s->want_out ? EPOLLOUT : 0);
		ev.data.ptr = s;
		if (epoll_ctl(hub.epfd, EPOLL_CTL_ADD, s->fd, &ev) == -1)
			fatal("hub: epoll_ctl add");
		s->watched = 1;
	} else
		hub_watch(s);
	hub_run_frames(s, &s->in);
}

/*
 * Whether reader r still paces its senders: it exists, is behind, and
 * drained at HUB_PACE_MIN_RATE over its last window.  One that did not
 * is stuck from now on, until it catches up.
 */
static int
hub_still_pacing(struct hub_conn *r, int64_t now)
{
	uint64_t	taken;
	int64_t		elapsed;

	if (r == NULL || r->dead || r->stuck || hub_backlog(r) <= hub.q_low)
		return 0;
	if (r->fd == -1)
		return hub.grace_until != 0;
	if (r->pace_at == 0) {
		r->pace_at = now;
		r->pace_taken = hub_taken(r);
		return 1;
	}
	elapsed = now - r->pace_at;
	if (elapsed < HUB_PACE_WINDOW_MS)
		return 1;
	taken = hub_taken(r) - r->pace_taken;
	if (taken * 1000 < (uint64_t)HUB_PACE_MIN_RATE * (uint64_t)elapsed) {
		log_info("worker %ld (%s): read %llu bytes in %lld ms, "
		    "under %d a second: senders no longer wait for it",
		    (long)r->pid, r->addr, (unsigned long long)taken,
		    (long long)elapsed, HUB_PACE_MIN_RATE);
		r->stuck = 1;
		return 0;
	}
	r->pace_at = now;
	r->pace_taken = hub_taken(r);
	return 1;
}

/*
 * Resumes the senders whose reader caught up or stopped pacing; returns
 * whether any did.  They leave the list first, so running their frames
 * may pause them again.
 */
static int
hub_pace_check(void)
{
	struct conn_list	 go;
	struct hub_conn		*s, *next;
	int64_t			 now;

	if (TAILQ_EMPTY(&hub.paused))
		return 0;
	TAILQ_INIT(&go);
	now = clock_now_ms();
	TAILQ_FOREACH_SAFE(s, &hub.paused, paused_entry, next) {
		if (hub_still_pacing(s->paced_by, now))
			continue;
		hub_unpause(s);
		TAILQ_INSERT_TAIL(&go, s, paused_entry);
	}
	if (TAILQ_EMPTY(&go))
		return 0;
	while ((s = TAILQ_FIRST(&go)) != NULL) {
		TAILQ_REMOVE(&go, s, paused_entry);
		hub_pace_resume(s);
	}
	return 1;
}

/* Ends the round: drops dead workers and writes every batch. */
static void
hub_end_round(void)
{
	struct hub_conn	*c;

	int		 pass = 0;

	for (;;) {
		while (!TAILQ_EMPTY(&hub.dead) || !TAILQ_EMPTY(&hub.dirty)) {
			while ((c = TAILQ_FIRST(&hub.dead)) != NULL) {
				TAILQ_REMOVE(&hub.dead, c, dead_entry);
				hub_drop(c);
			}
			hub_flush();
		}
		/* Senders whose reader caught up run what they sent. */
		if (++pass > HUB_END_ROUND_PASSES || !hub_pace_check())
			break;
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
		/* Two rows of one pid: the second is not found by pid. */
		(void)RB_INSERT(pid_tree, &hub.pids, c);
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
		r->creator = shm_room(&hub.tab, i)->creator;
		r->seq = shm_room(&hub.tab, i)->seq;
		if (RB_INSERT(room_tree, &hub.rooms, r) != NULL) {
			/* Two rooms with one name: keep the first. */
			log_warnx("hub: room row %u repeats a name", i);
			memset(shm_room(&hub.tab, i), 0,
			    hub.tab.hdr->room_stride);
			hub.tab.hdr->nrooms--;
			hub.free_rooms[hub.nfree_rooms++] = i;
			free(r);
		} else if ((c = hub_room_creator(r)) != NULL)
			c->rooms++;	/* the count is rebuilt, not kept */
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
			hub_kill(c, CLOSE_GONE, "did not come back");
		else if (kill(c->pid, 0) == -1 && errno == ESRCH)
			hub_kill(c, 0, "exited while the hub was down");
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
	if (rt->shm_size >= sizeof(*hub.tab.hdr))
		hub.gen_before = hub.tab.hdr->hub_gen;
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

/*
 * Derives the hub's bounds from the limits in force and publishes the
 * limits in the table, for the workers.  A request comes from one line
 * of at most max-line bytes, and each of its strings costs the line at
 * least as much as the 4-byte prefix does the frame, so no honest
 * payload is longer than max_frame.  Workers started before a reload
 * that lowered max-line may still send up to the old limit, so the hub
 * takes the longest max-line any worker may have.
 */
static void
hub_limits(void)
{
	struct hub_conn	*c;
	size_t		 b;
	uint32_t	 i;

	if (hub.live.max_line > hub.max_line_seen)
		hub.max_line_seen = hub.live.max_line;
	hub.max_frame = (uint32_t)(2 * hub.max_line_seen + 4096);
	hub.q_low = hub.live.max_queue / 4;
	hub.q_high = hub.live.max_queue / 2;
	hub.q_cap = 2 * hub.live.max_queue + 2 * hub.max_line_seen + 65536;
	/*
	 * A lower max-queue does not cut a reader for what it was allowed
	 * to hold: it keeps that much on top of the new cap until it has
	 * caught up, and is paced meanwhile like any reader.
	 */
	for (i = 0; hub.conns != NULL && i < hub.cfg->max_clients; i++) {
		if ((c = hub.conns[i]) != NULL &&
		    (b = hub_backlog(c)) > hub.q_cap && b > c->cap_extra)
			c->cap_extra = b;
	}
	log_set_level((int)hub.live.log_level);
	if (hub.tab.hdr != NULL)
		shm_live_set(&hub.tab, &hub.live);
}

/*
 * Reads the master's control pipe: limits a reload changed.  The master
 * is trusted, but its frames are checked all the same; a bad one is
 * logged and ignored.
 */
static void
hub_ctl_read(void)
{
	struct ipc_hdr	 h;
	struct shm_live	 l;
	const char	*p;
	char		 rb[512];
	ssize_t		 n;
	int		 r;

	n = read(hub.ctl_fd, rb, sizeof(rb));
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* The master is gone; PR_SET_DEATHSIG ends the hub soon. */
		(void)epoll_ctl(hub.epfd, EPOLL_CTL_DEL, hub.ctl_fd, NULL);
		close(hub.ctl_fd);
		hub.ctl_fd = -1;
		return;
	}
	xbuf_append(&hub.ctl_in, rb, (size_t)n);
	while ((r = ipc_get_max(&hub.ctl_in, sizeof(l), &h, &p)) == 1) {
		if (h.type != IPC_LIMITS || h.len != sizeof(l)) {
			log_warnx("hub: control frame 0x%04x ignored", h.type);
			continue;
		}
		memcpy(&l, p, sizeof(l));
		if (ipc_check_limits(&l) == -1) {
			log_warnx("hub: limits out of range ignored");
			continue;
		}
		hub.live = l;
		hub_limits();
		log_debug("hub: limits reloaded");
	}
	if (r == -1) {
		log_warnx("hub: bad control frame; its bytes dropped");
		buf_reset(&hub.ctl_in);
	}
}

/* Sets up the epoll set: the hub's socket and the control pipe. */
static void
hub_epoll(void)
{
	struct epoll_event	ev;

	if ((hub.epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("hub: epoll_create1");
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	if (epoll_ctl(hub.epfd, EPOLL_CTL_ADD, hub.lfd, &ev) == -1)
		fatal("hub: epoll_ctl");
	if (hub.ctl_fd == -1)
		return;
	ev.data.ptr = &hub.ctl_fd;
	if (fcntl(hub.ctl_fd, F_SETFL, O_NONBLOCK) == -1 ||
	    epoll_ctl(hub.epfd, EPOLL_CTL_ADD, hub.ctl_fd, &ev) == -1)
		fatal("hub: control pipe");
}

/*
 * Handles one event of a worker's channel.  A paused sender is not
 * read; if its channel hangs up meanwhile it leaves the epoll set, which
 * would report the hang-up again and again, until it is resumed.
 */
static void
hub_event(struct hub_conn *c, uint32_t events)
{
	if (c->dead)
		return;
	if (c->paused && (events & (EPOLLHUP | EPOLLERR))) {
		if (epoll_ctl(hub.epfd, EPOLL_CTL_DEL, c->fd, NULL) == -1)
			fatal("hub: epoll_ctl del");
		c->watched = 0;
		return;
	}
	if (!c->paused && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		hub_read(c);
	if ((events & EPOLLOUT) && !c->dead)
		hub_mark_dirty(c);
}

/* The hub process: set up, then route until killed. */
void
hub_main(const struct config *cfg, const struct runtime *rt)
{
	struct epoll_event	 evs[HUB_MAX_EVENTS];
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
	hub.ctl_fd = rt->hub_ctl_fd;
	hub.max_line_seen = rt->max_line_seen;
	conf_live_limits(cfg, &hub.live);
	hub_limits();
	TAILQ_INIT(&hub.dirty);
	TAILQ_INIT(&hub.dead);
	TAILQ_INIT(&hub.idents);
	TAILQ_INIT(&hub.paused);
	TAILQ_INIT(&hub.waiting);
	hub.max_channels = cfg->max_clients + HUB_CHANNEL_MARGIN;
	/* Held in reserve: hub_refuse spends it to turn a channel away. */
	if ((hub.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1)
		fatal("hub: /dev/null");
	RB_INIT(&hub.users);
	RB_INIT(&hub.pids);
	RB_INIT(&hub.rooms);
	buf_init(&hub.line);
	buf_init(&hub.shared);
	hub.rbuf = xcalloc(1, HUB_READ_SIZE);
	hub_map(rt);
	/*
	 * A new generation tells workers that lost their channel that this
	 * is a new hub, worth reconnecting to; the old one dropped them on
	 * purpose if the generation did not change.
	 */
	hub.tab.hdr->hub_gen = hub.gen_before + 1;
	hub_limits();
	hub_epoll();
	log_debug("hub: ready, %zu bytes of table", rt->shm_size);

	for (;;) {
		timeout = hub.grace_until != 0 ? HUB_GRACE_TICK_MS : -1;
		if (!TAILQ_EMPTY(&hub.paused))
			timeout = HUB_PACE_TICK_MS;
		if (hub.ndropped > 0 && timeout == -1)
			timeout = HUB_TRIM_IDLE_MS;
		timeout = hub_timeout(timeout);
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
			if ((c = evs[k].data.ptr) == NULL)
				hub_accept();
			else if (evs[k].data.ptr == &hub.ctl_fd)
				hub_ctl_read();
			else
				hub_event(c, evs[k].events);
		}
		hub_timers();
		hub_grace();
		hub_end_round();
	}
}
