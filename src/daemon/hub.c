/*
 * hub.c: the router.  One process, one epoll loop.  Every worker holds
 * one Unix stream connection to the hub; the hub owns the users and rooms
 * table (it is its only writer), turns each request into JSON lines for
 * the recipients' workers, and batches them: a line is appended to each
 * recipient's output buffer; the requester's is written at the end of
 * the loop iteration, everyone else's in passes that gather under load
 * (hub_round.c).
 *
 * This file is the process: its epoll loop, accepting channels, the
 * master's control pipe, and mapping the table and resuming from it
 * after a restart.  hub_chan.c does one channel's I/O and flow control,
 * hub_req.c the requests.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/tree.h>


#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
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
#include "shm.h"
#include "talknetd.h"
#include "title.h"
#include "xmalloc.h"
#include "hub.h"

struct hub_state hub;

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

	c = hub_conn_new(fd, pid, "?");
	c->slot = SLOT_NONE;
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
		fd = peer_accept(hub.lfd, NULL, NULL,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EAGAIN)
				return;
			if (errno == EMFILE || errno == ENFILE)
				hub_refuse();
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
		if (c->kicked)
			hub_kill(c, CLOSE_KICKED, "kicked, and its client "
			    "took nothing in time");
		else
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
		c = hub_conn_new(-1, u->pid,
		    u->remote ? HUB_ADDR_REMOTE : "(away)");
		c->slot = i;
		c->hello = 1;
		hub.conns[i] = c;
		/* Another node's user: the mirror's, no worker to wait for. */
		if (u->remote)
			c->remote = 1;
		else {
			hub.ndetached++;
			/* Two rows of one pid: the second is not found by pid. */
			(void)RB_INSERT(pid_tree, &hub.pids, c);
		}
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
	for (i = 0; i < hub.cfg->max_users; i++) {
		if ((c = hub.conns[i]) == NULL || c->peer.fd != -1 ||
		    c->dead || c->remote)
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
	    hub.tab.hdr->max_users == hub.cfg->max_users &&
	    hub.tab.hdr->max_rooms == hub.cfg->max_rooms;
	if (!resume)
		shm_format(mem, rt->shm_size, hub.cfg->max_users,
		    hub.cfg->max_rooms, hub.cfg->max_name, hub.cfg->max_room);
	hub.conns = xcalloc(hub.cfg->max_users, sizeof(*hub.conns));
	hub.free_users = xcalloc(hub.cfg->max_users,
	    sizeof(*hub.free_users));
	hub.free_rooms = xcalloc(hub.cfg->max_rooms, sizeof(*hub.free_rooms));
	if (resume) {
		hub_resume();
		return;
	}
	/* Lowest rows first: the stacks pop from the end. */
	for (hub.nfree_users = 0; hub.nfree_users < hub.cfg->max_users;
	    hub.nfree_users++)
		hub.free_users[hub.nfree_users] = (uint32_t)
		    (hub.cfg->max_users - 1 - hub.nfree_users);
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
	for (i = 0; hub.conns != NULL && i < hub.cfg->max_users; i++) {
		if ((c = hub.conns[i]) != NULL &&
		    (b = hub_backlog(c)) > hub.q_cap && b > c->cap_extra)
			c->cap_extra = b;
	}
	hub_gather_clamp();
	log_set_level((int)hub.live.log_level);
	if (hub.tab.hdr != NULL)
		shm_live_set(&hub.tab, &hub.live);
}

/*
 * One frame on the master's control pipe: limits a reload changed, or
 * a kick.  The master is trusted, but its frames are checked all the
 * same; a bad one is logged and ignored.
 */
static const char *
hub_ctl_dispatch(struct peer *p, const void *hdr, const char *payload)
{
	struct ipc_hdr	 h;
	struct ipc_kick	 k;
	struct shm_live	 l;

	(void)p;
	memcpy(&h, hdr, sizeof(h));
	if (h.type == IPC_KICK && h.len == sizeof(k)) {
		memcpy(&k, payload, sizeof(k));
		hub_kick(&k);
		return NULL;
	}
	if (h.type != IPC_LIMITS || h.len != sizeof(l)) {
		log_warnx("hub: control frame 0x%04x ignored", h.type);
		return NULL;
	}
	memcpy(&l, payload, sizeof(l));
	if (ipc_check_limits(&l) == -1) {
		log_warnx("hub: limits out of range ignored");
		return NULL;
	}
	hub.live = l;
	hub_limits();
	log_debug("hub: limits reloaded");
	return NULL;
}

/* A bad header on the control pipe: what came so far is forgotten. */
static void
hub_ctl_bad(struct peer *p, const char *why)
{
	(void)p;
	log_warnx("hub: %s; its bytes dropped", why);
}

/* The master's control pipe, as the hub reads it. */
static const struct peer_role hub_ctl_role = {
	sizeof(struct ipc_hdr), IPC_VERSION, "bad control frame",
	"bad control frame", hub_ctl_dispatch, hub_ctl_bad, NULL, NULL
};

/* Reads the master's control pipe and runs its frames. */
static void
hub_ctl_read(void)
{
	char	rb[512];

	if (peer_read(&hub.ctl, rb, sizeof(rb)) != -1)
		return;
	/* The master is gone; PR_SET_DEATHSIG ends the hub soon. */
	(void)epoll_ctl(hub.epfd, EPOLL_CTL_DEL, hub.ctl.fd, NULL);
	close(hub.ctl.fd);
	hub.ctl.fd = -1;
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
	if (hub.ctl.fd == -1)
		return;
	ev.data.ptr = &hub.ctl;
	if (fcntl(hub.ctl.fd, F_SETFL, O_NONBLOCK) == -1 ||
	    epoll_ctl(hub.epfd, EPOLL_CTL_ADD, hub.ctl.fd, &ev) == -1)
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
	if ((c->paused || c->parked) && (events & (EPOLLHUP | EPOLLERR))) {
		if (epoll_ctl(hub.epfd, EPOLL_CTL_DEL, c->peer.fd, NULL) == -1)
			fatal("hub: epoll_ctl del");
		c->watched = 0;
		return;
	}
	if (!c->paused && !c->parked &&
	    (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		hub_read(c);
	/*
	 * Room again: disarm EPOLLOUT until the pass writes it (hub_write
	 * arms it again if bytes are left), or level-triggered epoll would
	 * report it on every wait and the hub spin through the gather.
	 */
	if ((events & EPOLLOUT) && !c->dead) {
		c->want_out = 0;
		hub_watch(c);
		hub_mark_dirty(c);
	}
}

/*
 * Publishes the cluster's state in the table's header for the master
 * (cluster.c calls it too, before it logs a change: once "cluster: ok"
 * is logged, the master accepts).
 */
void
hub_cluster_state(void)
{
	uint32_t	st = SHM_CLUSTER_NONE;

	if (cluster_on())
		st = cluster_degraded() ? SHM_CLUSTER_DEGRADED :
		    SHM_CLUSTER_OK;
	if (hub.tab.hdr->cluster_state != st)
		__atomic_store_n(&hub.tab.hdr->cluster_state, st,
		    __ATOMIC_RELEASE);
}

/* The hub process: set up, then route until killed. */
void
hub_main(const struct config *cfg, const struct runtime *rt)
{
	struct epoll_event	 evs[HUB_MAX_EVENTS];
	struct hub_conn		*c;
	int			 n, k, timeout, gather;

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
	peer_init(&hub.ctl, &hub_ctl_role, NULL, rt->hub_ctl_fd,
	    sizeof(struct shm_live));
	hub.max_line_seen = rt->max_line_seen;
	conf_live_limits(cfg, &hub.live);
	hub_limits();
	TAILQ_INIT(&hub.replies);
	TAILQ_INIT(&hub.dirty);
	TAILQ_INIT(&hub.dead);
	TAILQ_INIT(&hub.idents);
	TAILQ_INIT(&hub.paused);
	TAILQ_INIT(&hub.behind);
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
	/* --cluster: Redis on this epoll set (no-op without it). */
	cluster_start(cfg, hub.epfd);
	log_debug("hub: ready, %zu bytes of table", rt->shm_size);

	for (;;) {
		timeout = hub.grace_until != 0 ? HUB_GRACE_TICK_MS : -1;
		if (!TAILQ_EMPTY(&hub.paused))
			timeout = HUB_PACE_TICK_MS;
		if (hub.ndropped > 0 && timeout == -1)
			timeout = HUB_TRIM_IDLE_MS;
		timeout = cluster_timeout(hub_timeout(timeout));
		if ((gather = hub_round_timeout()) != -1 &&
		    (timeout == -1 || gather < timeout))
			timeout = gather;
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
		/* New limits first: a worker forked after the reload may
		 * already send what only they allow. */
		for (k = 0; k < n; k++)
			if (evs[k].data.ptr == &hub.ctl)
				hub_ctl_read();
		for (k = 0; k < n; k++) {
			if ((c = evs[k].data.ptr) == NULL)
				hub_accept();
			else if (cluster_owns(evs[k].data.ptr))
				cluster_event(evs[k].data.ptr, evs[k].events);
			else if (evs[k].data.ptr != &hub.ctl)
				hub_event(c, evs[k].events);
		}
		hub_timers();
		cluster_timers();
		hub_cluster_state();
		hub_grace();
		hub_end_round();
	}
}
