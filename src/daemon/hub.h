/*
 * hub.h: what the hub's files share, and nothing outside the hub
 * includes: its limits, a channel (struct hub_conn), a room's index
 * entry, the hub's one state struct, and the functions one of its files
 * calls in another.  hub.c is the process (epoll, accepting, the master's
 * pipe, resuming after a restart), hub_chan.c one channel's I/O and flow
 * control, hub_round.c the end of a round (who is written when),
 * hub_req.c the requests and the name indices.
 */
#ifndef TALKNETD_HUB_H
#define TALKNETD_HUB_H

#include "peer.h"

#define HUB_READ_SIZE		(64 * 1024)
#define HUB_KEEP		(128 * 1024)	/* buffer kept when idle */
#define HUB_MAX_EVENTS		256
#define HUB_GRACE_MS		3000	/* for workers to come back */
#define HUB_GRACE_TICK_MS	100
#define HUB_TRIM_IDLE_MS	1000	/* quiet time before malloc_trim */
#define HUB_PACE_TICK_MS	50	/* pacing checks while senders wait */
#define HUB_END_ROUND_PASSES	4	/* flushes per round, at most */
#define HUB_HELLO_MS		5000	/* a new channel's time to say HELLO,
					   a kicked one's to close */
#define HUB_PAUSE_MS		200	/* no accepting after EMFILE */
#define HUB_ACCEPT_BURST	64	/* channels accepted per round */
/*
 * The flush to many goes in passes, each worker written once a pass; a
 * pass yields to requests every HUB_FLUSH_SLICE_US.  A pass that took
 * over HUB_GATHER_MIN_US makes the next one start HUB_GATHER_FACTOR
 * times as long (at most max-gather ms) after it ended, so lines that
 * arrive meanwhile wake each worker once, not once each.
 */
#define HUB_FLUSH_SLICE_US	1000
#define HUB_FLUSH_CLOCK_EVERY	16	/* writes between clock reads */
#define HUB_GATHER_MIN_US	500
#define HUB_GATHER_FACTOR	1
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
 * A restarted hub's remote rows name no node until Redis says whose
 * they are (cluster_mirror_owned): node ids hold no parentheses.
 */
#define HUB_ADDR_REMOTE		"(remote)"
/*
 * ... and one whose name Redis says another holder took after the dead
 * hub's place in that holder's stream: a former holder's row, which
 * that holder's "user" replaces (cluster_mirror_user).
 */
#define HUB_ADDR_FORMER		"(former)"

/*
 * One worker's channel.  After a hub restart, a worker's row in the
 * table gets a detached conn (fd -1) that keeps its place, and lines for
 * it queue up, until the worker reconnects or the grace period ends.
 */
struct hub_conn {
	struct peer		 peer;		/* fd -1: detached */
	pid_t			 pid;
	uint32_t		 slot;		/* its row in the users table */
	int			 hello;		/* HELLO received */
	int			 parted;	/* DISCONNECT done, CLOSE sent */
	int			 kicked;	/* by talknetctl: a deadline */
	int			 dead;		/* to be dropped this round */
	int			 dirty;		/* out has frames to write */
	int			 replied;	/* dirty as a requester */
	uint64_t		 pass;		/* dirty: the pass it is for */
	int			 want_out;	/* EPOLLOUT is registered */
	int			 watched;	/* in the epoll set */
	uint32_t		 close_reason;	/* enum ipc_close_reason */
	/*
	 * Flow control.  A sender whose line takes a reader's backlog over
	 * the high-water mark is paused (not read) until that reader
	 * drains; only a reader that drains at pace-min-rate may pace
	 * anyone, and one that does not is stuck: it is cut when its
	 * backlog reaches the cap, and nobody waits for it.  A reader over
	 * the mark is on hub.behind, and a text for it does not run: its
	 * sender is paused before the line is queued (hub_hold_text), so
	 * however many send to it, one text at most goes past the mark.
	 */
	int			 paused;	/* unread: a reader is behind */
	struct hub_conn		*paced_by;	/* that reader */
	int			 stuck;		/* too slow to pace anyone */
	int			 behind;	/* on hub.behind */
	uint64_t		 drained;	/* bytes written to it, ever */
	int64_t			 pace_at;	/* its pacing window began */
	uint64_t		 pace_taken;	/* hub_taken() when it began */
	size_t			 cap_extra;	/* held when max-queue fell */
	int			 waiting;	/* on hub.waiting */
	/*
	 * --cluster: its IDENTIFY waits for Redis to grant the name; its
	 * channel is not read meanwhile (the next request may need the
	 * name), and park_seq is recorded once the answer came.
	 */
	int			 parked;
	uint64_t		 park_seq;
	/*
	 * --cluster: a user of another node, mirrored (cluster_mirror.c):
	 * no channel, no worker; lines for it are not queued, and what is
	 * meant for it crosses to its node through this node's stream.
	 */
	int			 remote;
	int			 stale;		/* not in the last snapshot */
	int64_t			 hello_by;	/* drop it then without HELLO */
	uint32_t		 rooms;		/* it created, still there */
	size_t			 share_off;	/* its part of hub.shared, */
	size_t			 share_len;	/* queued after out */
	char			 addr[64];
	TAILQ_ENTRY(hub_conn)	 dirty_entry;
	TAILQ_ENTRY(hub_conn)	 dead_entry;
	TAILQ_ENTRY(hub_conn)	 ident_entry;	/* identified, in order */
	TAILQ_ENTRY(hub_conn)	 paused_entry;
	TAILQ_ENTRY(hub_conn)	 behind_entry;
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

/* The hub's state: one process, so one of it (hub.c defines it). */
struct hub_state {
	const struct config	*cfg;
	struct shm_table	 tab;
	int			 epfd;
	int			 lfd;
	struct peer		 ctl;		/* the master's control pipe */
	struct shm_live		 live;		/* the limits in force */
	size_t			 max_line_seen;	/* longest any worker has */
	size_t			 q_low;		/* backlog: pacing ends */
	size_t			 q_high;	/* backlog: senders pause */
	size_t			 q_cap;		/* backlog: the reader is cut */
	uint32_t		 max_frame;	/* longest request payload */
	struct hub_conn		*reading;	/* whose frames run now */
	uint64_t		 gen_before;	/* the last hub's generation */
	int64_t			 grace_until;	/* 0, or when detached rows go */
	int64_t			 pace_last;	/* last pacing check, or 0 */
	int64_t			 pace_lapse;	/* the hub last stood still */
	size_t			 ndetached;
	struct hub_conn		**conns;	/* by slot */
	uint32_t		*free_users;	/* stack of free user rows */
	uint32_t		 nfree_users;
	uint32_t		*free_rooms;	/* stack of free room rows */
	uint32_t		 nfree_rooms;
	struct conn_list	 replies;	/* dirty: requesters, first */
	struct conn_list	 dirty;		/* dirty: everyone else */
	int			 flushing;	/* a pass is under way */
	uint64_t		 pass_cur;	/* the pass under way */
	uint64_t		 pass_next;	/* the pass new lines go in */
	int64_t			 pass_start;	/* µs: it began */
	size_t			 pass_base;	/* hub.shared's length then */
	size_t			 pass_written;	/* workers it wrote */
	int64_t			 gather_until;	/* µs: the next pass begins */
	int			 gather_none;	/* no gap after this pass */
	struct conn_list	 dead;
	struct conn_list	 idents;
	struct conn_list	 paused;
	struct conn_list	 behind;	/* readers over q_high, maybe */
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
	struct conn_list	 waiting;	/* before HELLO, or kicked:
						   each gone by hello_by */
	size_t			 nchannels;	/* open channels (fd != -1) */
	size_t			 max_channels;
	size_t			 nrefused;	/* over the cap, to be logged */
	int64_t			 refused_logged;
	int			 spare_fd;	/* spent to refuse at EMFILE */
	int64_t			 paused_until;	/* 0, or accepting resumes */
};

extern struct hub_state hub;

/* Generated non-static in hub_req.c: every hub file walks the indices. */
RB_PROTOTYPE(user_tree, hub_conn, name_entry, hub_user_cmp)
RB_PROTOTYPE(pid_tree, hub_conn, pid_entry, hub_pid_cmp)
RB_PROTOTYPE(room_tree, hub_room, entry, hub_room_cmp)

/* hub_chan.c */
struct shm_user	*hub_row(const struct hub_conn *);
struct str	 hub_name(const struct hub_conn *);
int		 hub_identified(const struct hub_conn *);
void		 hub_kill(struct hub_conn *, uint32_t, const char *);
size_t		 hub_backlog(const struct hub_conn *);
void		 hub_note_backlog(const struct hub_conn *);
void		 hub_watch(struct hub_conn *);
void		 hub_own_share(struct hub_conn *);
void		 hub_share_line(void);
void		 hub_share(struct hub_conn *);
void		 hub_put(struct hub_conn *, uint16_t, const void *, size_t);
void		 hub_encode(const struct msg *);
void		 hub_send(struct hub_conn *);
void		 hub_unwait(struct hub_conn *);
struct hub_conn	*hub_conn_new(int, pid_t, const char *);
void		 hub_read(struct hub_conn *);
void		 hub_drop(struct hub_conn *);
int		 hub_pace_check(void);
void		 hub_pace_release(struct hub_conn *);
int		 hub_hold_text(struct hub_conn *, const struct msg *);
void		 hub_unpark(struct hub_conn *);

/* hub_round.c */
void		 hub_mark_dirty(struct hub_conn *);
void		 hub_unmark_dirty(struct hub_conn *);
void		 hub_end_round(void);
void		 hub_gather_clamp(void);
int		 hub_round_timeout(void);

/* hub_req.c */
struct str	 hub_user_key(const struct hub_conn *);
struct hub_conn	*hub_user_find(struct str);
void		 hub_tell(struct hub_conn *, const struct msg *);
void		 hub_tell_others(const struct msg *, const struct hub_conn *);
struct hub_room	*hub_room_find(struct str);
struct hub_room	*hub_room_make(struct hub_conn *, struct str);
struct str	 hub_room_name(struct shm_room *);
void		 hub_room_leave(struct hub_conn *, struct hub_room *);
void		 hub_join(struct hub_conn *, struct hub_room *);
void		 hub_tell_room(struct shm_room *, const struct msg *,
		    const struct hub_conn *);
struct hub_conn	*hub_room_creator(const struct hub_room *);
void		 hub_part(struct hub_conn *);
void		 hub_kick(const struct ipc_kick *);
void		 hub_kick_deadline(struct hub_conn *);
const char	*hub_request(struct hub_conn *, const struct ipc_hdr *,
		    const char *);

#endif
