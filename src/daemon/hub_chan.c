/*
 * hub_chan.c: one worker's channel in the hub: reading and checking its
 * frames, HELLO and reattaching after a restart, queueing lines for it
 * (its own buffer and its part of the round's shared batch), flow
 * control (pacing senders behind a slow reader), and dropping it.
 * hub_round.c writes what is queued.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/tree.h>
#include <sys/uio.h>

#include <linux/sockios.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "cluster.h"
#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "proto.h"
#include "request.h"
#include "shm.h"
#include "talknetd.h"
#include "xmalloc.h"
#include "hub.h"

/* The table row of a connection's user. */
struct shm_user *
hub_row(const struct hub_conn *c)
{
	return shm_user(&hub.tab, c->slot);
}

/* A connection's user name. */
struct str
hub_name(const struct hub_conn *c)
{
	return hub_user_key(c);
}

/* Whether a connection's user has identified. */
int
hub_identified(const struct hub_conn *c)
{
	return hub_row(c)->state == USER_IDENTIFIED;
}

/*
 * Schedules a connection to be dropped at the end of the round, saying
 * why in the log and, in a CLOSE frame, to the worker.
 */
void
hub_kill(struct hub_conn *c, uint32_t reason, const char *why)
{
	if (c->dead)
		return;
	/*
	 * Without a reason the worker closed its channel (or it broke):
	 * the worker logs its session's end, so the hub adds nothing.
	 */
	if (reason == 0)
		log_debug("worker %ld (%s): dropped: %s", (long)c->pid,
		    c->addr, why);
	else
		log_info("worker %ld (%s): dropped: %s", (long)c->pid,
		    c->addr, why);
	c->dead = 1;
	c->close_reason = reason;
	TAILQ_INSERT_TAIL(&hub.dead, c, dead_entry);
}

/* Bytes queued for a worker and not yet written to its channel. */
size_t
hub_backlog(const struct hub_conn *c)
{
	return buf_pending(&c->peer.out) + c->share_len;
}

/*
 * Publishes a worker's backlog in its row, for talknetctl "show users".
 * Not under shm_begin: it is one aligned word, read without a lock.
 */
void
hub_note_backlog(const struct hub_conn *c)
{
	if (c->slot != SLOT_NONE)
		hub_row(c)->queued = hub_backlog(c);
}

/* Counts one line queued for a worker, for "show stats". */
static void
hub_count_out(size_t len)
{
	hub.tab.hdr->counters.msgs_out++;
	hub.tab.hdr->counters.bytes_out += len;
}

/* Sets the events a channel is watched for: input unless paused. */
void
hub_watch(struct hub_conn *c)
{
	struct epoll_event	ev;

	if (c->peer.fd == -1 || !c->watched)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = (c->paused || c->parked ? 0 : EPOLLIN) |
	    (c->want_out ? EPOLLOUT : 0);
	ev.data.ptr = c;
	if (epoll_ctl(hub.epfd, EPOLL_CTL_MOD, c->peer.fd, &ev) == -1)
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

	if (c->peer.fd == -1 || ioctl(c->peer.fd, SIOCOUTQ, &unread) == -1 ||
	    unread < 0)
		unread = 0;
	if ((uint64_t)unread > c->drained)
		return 0;
	return c->drained - (uint64_t)unread;
}

/*
 * Whether reader r is behind: over the high-water mark, and still one
 * that paces (not stuck; a channel, or one on its way back after a hub
 * restart).  Then a sender waits for it.
 */
static int
hub_behind(const struct hub_conn *r)
{
	return !r->dead && !r->stuck && !r->remote &&
	    hub_backlog(r) > hub.q_high &&
	    (r->peer.fd != -1 || hub.grace_until != 0);
}

/* Takes a reader off hub.behind. */
static void
hub_unbehind(struct hub_conn *r)
{
	if (r->behind) {
		TAILQ_REMOVE(&hub.behind, r, behind_entry);
		r->behind = 0;
	}
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
	if (old->behind) {
		hub_unbehind(old);
		TAILQ_INSERT_TAIL(&hub.behind, c, behind_entry);
		c->behind = 1;
	}
}

/*
 * Starts reader r's pacing window, if none runs.  Every reader a held
 * text would reach is measured from then, not only the one its sender
 * waits for first: four that read nothing held it four windows in a row.
 */
static void
hub_pace_window(struct hub_conn *r)
{
	if (r->pace_at == 0) {
		r->pace_at = clock_now_ms();
		r->pace_taken = hub_taken(r);
	}
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
	hub_pace_window(r);
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

	hub_note_backlog(c);
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
	if (!hub_behind(c))
		return;
	if (!c->behind) {
		TAILQ_INSERT_TAIL(&hub.behind, c, behind_entry);
		c->behind = 1;
	}
	if (hub.reading != NULL && hub.reading != c)
		hub_pace(hub.reading, c);
}

/*
 * The first reader on hub.behind that text m from c would reach (its
 * addressee, a member of its room, or anyone identified for a public
 * one), or NULL; the pacing windows of all it would reach start.  Those
 * no longer behind leave the list on the way.
 */
static struct hub_conn *
hub_text_behind(const struct hub_conn *c, const struct msg *m)
{
	struct hub_conn	*r, *next, *to = NULL, *first = NULL;
	struct hub_room	*room;
	uint64_t	*members = NULL;

	if (m->type == MSG_TEXT &&
	    (to = hub_user_find(m->username)) == NULL)
		return NULL;
	if (m->type == MSG_ROOM_TEXT) {
		if ((room = hub_room_find(m->roomname)) == NULL)
			return NULL;
		members = shm_room_members(&hub.tab,
		    shm_room(&hub.tab, room->idx));
	}
	TAILQ_FOREACH_SAFE(r, &hub.behind, behind_entry, next) {
		if (!hub_behind(r)) {
			hub_unbehind(r);
			continue;
		}
		/* A text to oneself waits for oneself like any other. */
		if ((r == c && to != c) || r->slot == SLOT_NONE)
			continue;
		if (to != NULL ? r == to : members != NULL ?
		    shm_bit_test(members, r->slot) : hub_identified(r)) {
			hub_pace_window(r);
			if (first == NULL)
				first = r;
		}
	}
	return first;
}

/*
 * Whether text m from c waits: a reader it would reach is behind.  Then
 * c is paused for that reader before anything is queued, and the frame
 * goes back to c's input (peer_again) to run once the reader drains.
 * Pausing only after the line was queued let each of many senders add
 * a line per drain of any reader, and a prompt reader of two dozen
 * senders of long texts was cut at the cap.
 */
int
hub_hold_text(struct hub_conn *c, const struct msg *m)
{
	struct hub_conn	*r;

	if (TAILQ_EMPTY(&hub.behind) || (m->type != MSG_TEXT &&
	    m->type != MSG_PUBLIC_TEXT && m->type != MSG_ROOM_TEXT))
		return 0;
	if ((r = hub_text_behind(c, m)) == NULL)
		return 0;
	hub_pace(c, r);
	return 1;
}

/*
 * Copies a worker's part of the shared batch into its own queue: before
 * anything else is queued for it, and for what a write did not take.
 */
void
hub_own_share(struct hub_conn *c)
{
	if (c->share_len == 0)
		return;
	xbuf_append(&c->peer.out, buf_head(&hub.shared) + c->share_off,
	    c->share_len);
	c->share_len = 0;
}

/*
 * Puts the encoded line into this round's shared batch once, for
 * hub_share to give to each recipient: a broadcast is copied once, not
 * once per worker, and hub_flush writes each worker's part from there.
 */
void
hub_share_line(void)
{
	hub.shared_frame = buf_pending(&hub.shared);
	ipc_put(&hub.shared, IPC_LINE, IPC_SLOT_NEW, buf_head(&hub.line),
	    buf_pending(&hub.line));
}

/* Queues the last shared line for one worker. */
void
hub_share(struct hub_conn *c)
{
	size_t	end = buf_pending(&hub.shared);

	if (c->dead || c->remote)
		return;
	/* Its part must stay one run of the batch, last in its queue. */
	if (c->share_len > 0 &&
	    c->share_off + c->share_len != hub.shared_frame)
		hub_own_share(c);
	if (c->share_len == 0)
		c->share_off = hub.shared_frame;
	c->share_len = end - c->share_off;
	hub_count_out(buf_pending(&hub.line));
	hub_queued(c);
}

/* Appends one frame for a worker, dropping it if its backlog is full. */
void
hub_put(struct hub_conn *c, uint16_t type, const void *p, size_t len)
{
	if (c->dead || c->remote)
		return;
	hub_own_share(c);
	ipc_put(&c->peer.out, type, c->slot, p, len);
	hub_queued(c);
}

/* Encodes m once into the shared line buffer. */
void
hub_encode(const struct msg *m)
{
	buf_reset(&hub.line);
	if (proto_encode(&hub.line, m) == -1)
		fatal("proto_encode");
}

/* Sends the encoded line to one worker. */
void
hub_send(struct hub_conn *c)
{
	if (!c->dead && !c->remote)
		hub_count_out(buf_pending(&hub.line));
	hub_put(c, IPC_LINE, buf_head(&hub.line), buf_pending(&hub.line));
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

	if (slot >= hub.cfg->max_users || (old = hub.conns[slot]) == NULL ||
	    old->peer.fd != -1 || old->dead || old->pid != c->pid)
		return -1;
	c->slot = slot;
	c->hello = old->hello;
	c->parted = old->parted;
	c->kicked = old->kicked;
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
	if (buf_pending(&old->peer.out) > 0) {
		xbuf_append(&c->peer.out, buf_head(&old->peer.out),
		    buf_pending(&old->peer.out));
		hub_mark_dirty(c);
	}
	hub_unmark_dirty(old);
	/* Kicked while away: hub_hello puts c on the list in its place. */
	hub_unwait(old);
	buf_free(&old->peer.in);
	buf_free(&old->peer.out);
	free(old);
	hub.ndetached--;
	log_info("worker %ld (%s): back on row %u", (long)c->pid, c->addr,
	    slot);
	return 0;
}

/* Takes a channel off the list of those that owe a HELLO. */
void
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
	    c->peer.fd != -1 || c->dead)
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
	    c->peer.fd != -1;
}

/* HELLO: gives a new worker a row, or a returning one its own. */
static const char *
hub_hello(struct hub_conn *c, const char *p, size_t len)
{
	struct ipc_hello	hello;
	struct ipc_welcome	welcome;
	char			esc[LOG_ESCAPED(sizeof(hello.addr))];
	const char		*why;

	if ((why = ipc_check_hello(c->slot != SLOT_NONE, p, len,
	    &hello)) != NULL)
		return why;
	/* It goes into log lines: only what an address is made of. */
	if (!ipc_addr_ok(hello.addr)) {
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
			if (hello.slot < hub.cfg->max_users &&
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
	if (c->kicked)
		hub_kick_deadline(c);
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
hub_dispatch(struct peer *p, const void *hdr, const char *payload)
{
	struct hub_conn	*c = p->arg;
	struct ipc_hdr	 h;

	memcpy(&h, hdr, sizeof(h));
	if (h.type == IPC_HELLO)
		return hub_hello(c, payload, h.len);
	if (!c->hello)
		return "a frame before HELLO";
	if (req_of_wire(h.type) == MSG_NONE)
		return "a frame of unknown type";
	/*
	 * Kicked: what its client sent before the worker read the CLOSE is
	 * still on the way.  It does not run, and is no error: dropping the
	 * worker would throw away that CLOSE, queued behind its lines.
	 */
	if (c->kicked)
		return NULL;
	return hub_request(c, &h, payload);
}

/* Drops a worker that broke the protocol, with its CLOSE reason. */
static void
hub_drop_peer(struct peer *p, const char *why)
{
	struct hub_conn	*c = p->arg;

	hub_kill(c, c->close_reason != 0 ? c->close_reason : CLOSE_PROTOCOL,
	    why);
}

/*
 * A sender that a reader behind paused, or whose IDENTIFY waits for the
 * cluster, keeps its frames for later.
 */
static enum peer_want
hub_want(const struct peer *p)
{
	const struct hub_conn	*c = p->arg;

	if (c->dead)
		return PEER_GONE;
	return c->paused || c->parked ? PEER_HOLD : PEER_MORE;
}

/* A worker's channel, as the hub reads it. */
static const struct peer_role hub_worker_role = {
	sizeof(struct ipc_hdr), IPC_VERSION, "a frame of another IPC version",
	"a frame over the length limit", hub_dispatch, hub_drop_peer, hub_want,
	NULL
};

/* A new channel's conn, on fd (-1: a detached row), named addr. */
struct hub_conn *
hub_conn_new(int fd, pid_t pid, const char *addr)
{
	struct hub_conn	*c;

	c = xcalloc(1, sizeof(*c));
	peer_init(&c->peer, &hub_worker_role, c, fd, hub.max_frame);
	c->pid = pid;
	(void)strlcpy(c->addr, addr, sizeof(c->addr));
	return c;
}

/*
 * Runs the complete frames in src, as the sender c, until they run out
 * or a reader that is behind pauses c; the rest stays in c's input.
 */
static void
hub_run_frames(struct hub_conn *c, struct buf *src)
{
	hub.reading = c;
	/* The limit in force: a reload may have raised it. */
	c->peer.max = hub.max_frame;
	peer_run(&c->peer, src);
	hub.reading = NULL;
}

/* Reads what a worker sent and runs every complete frame. */
void
hub_read(struct hub_conn *c)
{
	int	r;

	hub.reading = c;
	c->peer.max = hub.max_frame;
	r = peer_read(&c->peer, hub.rbuf, HUB_READ_SIZE);
	hub.reading = NULL;
	if (r == 0)
		return;
	if (r == -1) {
		if (errno != 0)
			log_warn("worker %ld: read", (long)c->pid);
		/* What came before the end still runs. */
		hub_run_frames(c, &c->peer.in);
	}
	buf_shrink(&c->peer.in, HUB_KEEP);
	if (r == -1)
		hub_kill(c, 0, "channel closed");
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

	if (c->peer.fd == -1 || c->close_reason == 0 || c->parted ||
	    buf_pending(&c->peer.out) > 0)
		return;
	memset(&cl, 0, sizeof(cl));
	cl.reason = c->close_reason;
	buf_init_store(&b, store, sizeof(store));
	ipc_put(&b, IPC_CLOSE, c->slot, &cl, sizeof(cl));
	/* Best effort: a full channel means a worker that reads no more. */
	peer_say(c->peer.fd, &b);
	buf_free(&b);
}

/*
 * Lets the senders reader r paces go on: hub_end_round runs their input,
 * and a held text that still reaches a reader behind waits again.  For
 * a reader that goes, or leaves a room: a text for a room it left must
 * not wait until it drains.
 */
void
hub_pace_release(struct hub_conn *r)
{
	struct hub_conn	*s;

	TAILQ_FOREACH(s, &hub.paused, paused_entry) {
		if (s->paced_by == r)
			s->paced_by = NULL;
	}
}

/* Drops a connection: DISCONNECT semantics, then frees its row. */
void
hub_drop(struct hub_conn *c)
{
	hub_unpause(c);
	hub_unbehind(c);
	/* A claim still on its way must not call back into a freed conn. */
	if (c->parked)
		cluster_claim_cancel(c);
	hub_pace_release(c);
	if (c->slot != SLOT_NONE) {
		shm_begin(&hub.tab);
		hub_part(c);
		shm_user_detach(&hub.tab, c->slot);
		shm_commit(&hub.tab);
		hub.conns[c->slot] = NULL;
		hub.free_users[hub.nfree_users++] = c->slot;
		RB_REMOVE(pid_tree, &hub.pids, c);
	}
	hub_unmark_dirty(c);
	/* The row is free before the channel closes: a worker that sees
	 * the close and then its row gone knows it was dropped. */
	hub_say_close(c);
	hub_unwait(c);
	/* Closing the fd also removes it from the epoll set. */
	if (c->peer.fd != -1) {
		close(c->peer.fd);
		hub.nchannels--;
	} else
		hub.ndetached--;
	buf_free(&c->peer.in);
	buf_free(&c->peer.out);
	free(c);
	hub.ndropped++;
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
		if (epoll_ctl(hub.epfd, EPOLL_CTL_ADD, s->peer.fd, &ev) == -1)
			fatal("hub: epoll_ctl add");
		s->watched = 1;
	} else
		hub_watch(s);
	hub_run_frames(s, &s->peer.in);
}

/*
 * The cluster answered a parked IDENTIFY: the channel is read again
 * and what it sent meanwhile runs, unless a reader paused it too.
 */
void
hub_unpark(struct hub_conn *c)
{
	c->parked = 0;
	if (!c->paused)
		hub_pace_resume(c);
}

/*
 * Whether reader r still paces its senders: it exists, is behind, and
 * drained at pace-min-rate over its last window (pace-window-ms, both
 * live).  One that did not is stuck from now on, until it catches up.
 */
static int
hub_still_pacing(struct hub_conn *r, int64_t now)
{
	uint64_t	taken;
	int64_t		elapsed;

	/* Parted (DISCONNECT, kick): no text reaches it any more. */
	if (r == NULL || r->dead || r->stuck || r->parted ||
	    hub_backlog(r) <= hub.q_low)
		return 0;
	if (r->peer.fd == -1)
		return hub.grace_until != 0;
	/* A window over a lapse of the hub's measures the hub: anew. */
	if (r->pace_at == 0 || r->pace_at <= hub.pace_lapse) {
		r->pace_at = now;
		r->pace_taken = hub_taken(r);
		return 1;
	}
	elapsed = now - r->pace_at;
	if (elapsed < (int64_t)hub.live.pace_window_ms)
		return 1;
	taken = hub_taken(r) - r->pace_taken;
	/* Both at most 2^30 and 2^63 / 2^30 ms: no overflow. */
	if (taken * 1000 < hub.live.pace_min_rate * (uint64_t)elapsed) {
		log_info("worker %ld (%s): read %llu bytes in %lld ms, "
		    "under %llu a second: senders no longer wait for it",
		    (long)r->pid, r->addr, (unsigned long long)taken,
		    (long long)elapsed,
		    (unsigned long long)hub.live.pace_min_rate);
		r->stuck = 1;
		return 0;
	}
	r->pace_at = now;
	r->pace_taken = hub_taken(r);
	return 1;
}

/*
 * Notes a lapse of the hub itself.  While a sender waits the checks come
 * every HUB_PACE_TICK_MS, so half a window (four ticks at least) between
 * two means the hub stood still (stopped, starved of CPU) and wrote
 * nobody anything: a reader that drained its channel meanwhile and then
 * had nothing to read was judged stuck on it, and cut at the cap by the
 * rest of a flood.
 */
static void
hub_pace_lapse(int64_t now)
{
	int64_t	lapse = (int64_t)hub.live.pace_window_ms / 2;

	if (lapse < 4 * HUB_PACE_TICK_MS)
		lapse = 4 * HUB_PACE_TICK_MS;
	if (hub.pace_last != 0 && now - hub.pace_last > lapse)
		hub.pace_lapse = now;
	hub.pace_last = now;
}

/*
 * Resumes the senders whose reader caught up or stopped pacing; returns
 * whether any did.  They leave the list first, so running their frames
 * may pause them again.
 */
int
hub_pace_check(void)
{
	struct conn_list	 go;
	struct hub_conn		*s, *next;
	int64_t			 now;

	if (TAILQ_EMPTY(&hub.paused)) {
		hub.pace_last = 0;
		return 0;
	}
	TAILQ_INIT(&go);
	now = clock_now_ms();
	hub_pace_lapse(now);
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
