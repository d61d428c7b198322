/*
 * hub_round.c: the end of the hub's round, that is, who is written when.
 *
 * A line for a worker is queued (hub_chan.c) and the worker marked
 * dirty.  The sender of the request being run is a requester: it goes on
 * the replies list, written at the end of the same round, before anyone
 * else.  Everyone else goes on the dirty list, written in passes: a pass
 * writes each of its workers once, everything queued for it by then,
 * and yields to requests every HUB_FLUSH_SLICE_US; lines queued for a
 * worker the pass has already written wait for the next pass.  Under
 * load a pass takes longer, so more lines ride in each write and each
 * worker wakes less often per line; after a long pass the next one
 * waits in proportion (up to max-gather), as interrupt moderation does.
 * A quiet hub's passes are short and follow at once.
 *
 * A worker's frames leave in the order they were queued, whichever list
 * it is on: its queue is written whole, never in parts out of order.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/tree.h>
#include <sys/uio.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "ipc.h"
#include "log.h"
#include "proto.h"
#include "shm.h"
#include "talknetd.h"
#include "hub.h"

/* The round's clock, in microseconds. */
static int64_t
hub_now_us(void)
{
	return clock_now_ns() / 1000;
}

/*
 * Queues a connection to be written.  The sender of the frame being run
 * goes on the replies list: its answer never waits behind the broadcast
 * it caused, nor for a pass.  Anyone else is for the next pass.
 */
void
hub_mark_dirty(struct hub_conn *c)
{
	int	reply = c == hub.reading;

	/*
	 * Over the high-water mark with room in its channel: it is behind
	 * only because lines are gathered for it, and a reader that reads
	 * well must not wait out a long gap with that much held for it
	 * (senders it paces, the cap it would reach): the gather ends.
	 */
	if (!reply && c->peer.fd != -1 && !c->want_out &&
	    hub_backlog(c) > hub.q_high) {
		if (hub.flushing)
			hub.gather_none = 1;
		else
			hub.gather_until = 0;
	}
	if (c->dirty) {
		if (!reply || c->replied)
			return;
		/* Its lines queued for a pass leave with its reply. */
		TAILQ_REMOVE(&hub.dirty, c, dirty_entry);
	}
	c->dirty = 1;
	c->replied = reply;
	c->pass = hub.pass_next;
	TAILQ_INSERT_TAIL(reply ? &hub.replies : &hub.dirty, c, dirty_entry);
}

/* Takes a connection off whichever list it is queued on. */
void
hub_unmark_dirty(struct hub_conn *c)
{
	if (!c->dirty)
		return;
	TAILQ_REMOVE(c->replied ? &hub.replies : &hub.dirty, c, dirty_entry);
	c->dirty = 0;
	c->replied = 0;
}

/*
 * Writes everything queued for one worker, taken off its list, with one
 * writev: its own frames, then its part of the shared batch.  What the
 * channel does not take is kept, and EPOLLOUT awaited.
 */
static void
hub_write(struct hub_conn *c)
{
	struct iovec	iov[2];
	ssize_t		n;
	size_t		own;
	int		want;

	hub_unmark_dirty(c);
	if (c->dead) {
		c->share_len = 0;
		return;
	}
	/* A detached worker's lines wait for it to come back. */
	if (c->peer.fd == -1) {
		hub_own_share(c);
		return;
	}
	iov[0].iov_base = buf_head(&c->peer.out);
	iov[0].iov_len = buf_pending(&c->peer.out);
	iov[1].iov_base = buf_head(&hub.shared) + c->share_off;
	iov[1].iov_len = c->share_len;
	n = writev(c->peer.fd, iov, c->share_len > 0 ? 2 : 1);
	if (n == -1 && errno != EAGAIN && errno != EINTR) {
		c->share_len = 0;
		hub_kill(c, 0, "write failed");
		return;
	}
	if (n > 0) {
		c->drained += (uint64_t)n;
		own = (size_t)n < iov[0].iov_len ? (size_t)n : iov[0].iov_len;
		buf_drain(&c->peer.out, own);
		c->share_off += (size_t)n - own;
		c->share_len -= (size_t)n - own;
	}
	/* The batch may be dropped after this pass: keep what is left. */
	hub_own_share(c);
	buf_shrink(&c->peer.out, HUB_KEEP);
	hub_note_backlog(c);
	/* Caught up: it may pace senders again if it falls behind. */
	if (buf_pending(&c->peer.out) <= hub.q_low) {
		c->stuck = 0;
		c->pace_at = 0;
		c->cap_extra = 0;
	}
	want = buf_pending(&c->peer.out) > 0;
	if (want != c->want_out) {
		c->want_out = want;
		hub_watch(c);
	}
}

/*
 * Drops the dead and writes the requesters, until neither is left (a
 * drop may answer someone, a failed write kill someone).
 */
static void
hub_settle(void)
{
	struct hub_conn	*c;

	while (!TAILQ_EMPTY(&hub.dead) || !TAILQ_EMPTY(&hub.replies)) {
		while ((c = TAILQ_FIRST(&hub.dead)) != NULL) {
			TAILQ_REMOVE(&hub.dead, c, dead_entry);
			hub_drop(c);
		}
		while ((c = TAILQ_FIRST(&hub.replies)) != NULL)
			hub_write(c);
	}
}

/*
 * A pass is over: the next begins after a pause in proportion to its
 * length.  The shared batch before the pass began is no one's any more
 * (every worker with a part in it was in the pass, or a requester since),
 * so it goes, and the later parts' offsets move down with it.
 */
static void
hub_pass_end(int64_t now)
{
	struct hub_conn	*c;
	int64_t		 took = now - hub.pass_start, gap = 0;
	int64_t		 cap = (int64_t)hub.live.max_gather * 1000;

	hub.flushing = 0;
	log_debug("hub: pass %llu wrote %zu workers in %lld us",
	    (unsigned long long)hub.pass_cur, hub.pass_written,
	    (long long)took);
	if (took >= HUB_GATHER_MIN_US && !hub.gather_none)
		gap = took * HUB_GATHER_FACTOR;
	hub.gather_none = 0;
	hub.gather_until = now + (gap < cap ? gap : cap);
	if (TAILQ_EMPTY(&hub.dirty)) {
		buf_reset(&hub.shared);
		buf_shrink(&hub.shared, HUB_KEEP);
		return;
	}
	TAILQ_FOREACH(c, &hub.dirty, dirty_entry) {
		if (c->share_len == 0)
			continue;
		/* Cannot be, by the above; if it were, copy rather than lose. */
		if (c->share_off < hub.pass_base)
			hub_own_share(c);
		else
			c->share_off -= hub.pass_base;
	}
	buf_drain(&hub.shared, hub.pass_base);
	hub.shared_frame = 0;
}

/*
 * Cuts the gap under way to the max-gather in force: a reload that
 * lowers it holds at once, not after a gap the old value allowed.
 */
void
hub_gather_clamp(void)
{
	int64_t	until;

	until = hub_now_us() + (int64_t)hub.live.max_gather * 1000;
	if (hub.gather_until > until)
		hub.gather_until = until;
}

/*
 * Runs the pass under way for one slice, or begins the next one if its
 * time has come.  Workers are written in the order they were queued.
 */
static void
hub_pass_run(void)
{
	struct hub_conn	*c;
	int64_t		 now = hub_now_us(), until;
	unsigned int	 n = 0;

	if (!hub.flushing) {
		if (TAILQ_EMPTY(&hub.dirty) || now < hub.gather_until)
			return;
		hub.flushing = 1;
		hub.pass_cur = hub.pass_next++;
		hub.pass_start = now;
		hub.pass_base = buf_pending(&hub.shared);
		hub.pass_written = 0;
	}
	until = now + HUB_FLUSH_SLICE_US;
	while ((c = TAILQ_FIRST(&hub.dirty)) != NULL &&
	    c->pass == hub.pass_cur) {
		hub_write(c);
		hub.pass_written++;
		if (++n % HUB_FLUSH_CLOCK_EVERY == 0 &&
		    (now = hub_now_us()) >= until)
			return;
	}
	hub_pass_end(hub_now_us());
}

/*
 * Ends the round: drops dead workers, writes the requesters, lets the
 * senders whose reader caught up go on, then runs a slice of the pass.
 */
void
hub_end_round(void)
{
	int	tries = 0;

	for (;;) {
		hub_settle();
		/* Senders whose reader caught up run what they sent. */
		if (++tries > HUB_END_ROUND_PASSES || !hub_pace_check())
			break;
	}
	hub_pass_run();
	/* Workers a failed write killed go now; what that says to the
	 * others is for the next pass. */
	hub_settle();
	/* A line to many may have had no one to go to. */
	if (!hub.flushing && TAILQ_EMPTY(&hub.dirty)) {
		buf_reset(&hub.shared);
		buf_shrink(&hub.shared, HUB_KEEP);
	}
}

/*
 * The epoll timeout the round asks for, in ms: none while a pass is
 * under way (requests are checked between slices), the time until the
 * next pass if lines wait for it, or -1.
 */
int
hub_round_timeout(void)
{
	int64_t	left;

	if (hub.flushing)
		return 0;
	if (TAILQ_EMPTY(&hub.dirty))
		return -1;
	left = hub.gather_until - hub_now_us();
	return left <= 0 ? 0 : (int)((left + 999) / 1000);
}
