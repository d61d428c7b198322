/*
 * shm.h: the users and rooms table, in POSIX shared memory.
 *
 * The master creates and sizes the segment, the hub is its only writer,
 * and the workers map it read-only.  Everything is in fixed-size rows
 * addressed by index, with no pointers, so a restarted hub can map the
 * same segment and resume from it.
 *
 * Layout: one struct shm_hdr, then max_users user rows, then max_rooms
 * room rows.  A user row is struct shm_user followed by the name bytes.
 * A room row is struct shm_room, then two bitmaps over the user rows
 * (members, then invited), then the name bytes.
 *
 * Consistency: gen is odd while the hub is changing the table and even
 * when the table is consistent (shm_begin/shm_commit).
 */
#ifndef TALKNETD_SHM_H
#define TALKNETD_SHM_H

#include <stddef.h>
#include <stdint.h>

#define SHM_MAGIC	0x544b4e54U	/* "TKNT" */
#define SHM_VERSION	7

/* The cluster's state in the header (cluster_state). */
enum shm_cluster {
	SHM_CLUSTER_NONE = 0,	/* no --cluster */
	SHM_CLUSTER_OK,
	SHM_CLUSTER_DEGRADED	/* Redis unreachable: no new users */
};

/*
 * --cluster: the nodes as the hub last read them from Redis, for
 * "talknetctl show cluster" (the master serves it; only the hub talks
 * to Redis).  Fixed size: the first SHM_NODES_MAX ids in order, and
 * how many there were.  The hub writes it under its own seqlock (gen);
 * the master checks it before it shows it (version, counts, ids).
 */
#define SHM_NODES_VERSION	1
#define SHM_NODES_MAX		32
#define SHM_NODE_ID		128	/* bytes of an id, its NUL included */

enum shm_node_flags {
	SHM_NODE_SELF = 1,	/* this node */
	SHM_NODE_LIVE = 2	/* its heartbeat key is there */
};

struct shm_node {
	char		id[SHM_NODE_ID];	/* NUL-terminated */
	uint32_t	flags;		/* enum shm_node_flags */
	uint32_t	clients;	/* the names it holds in Redis */
	int64_t		beat_ms;	/* since its last heartbeat, on
					   Redis's clock; -1: none */
	int64_t		lag_ms;		/* its stream's last entry minus
					   the last this node read; -1:
					   not read here (itself, or new) */
};

struct shm_nodes {
	volatile uint64_t gen;		/* odd while the hub writes */
	uint32_t	version;	/* SHM_NODES_VERSION once written */
	uint32_t	n;		/* rows in node[] */
	uint32_t	total;		/* nodes in the cluster: n or more */
	uint32_t	pad;
	int64_t		at;		/* when read (wall clock, seconds) */
	struct shm_node	node[SHM_NODES_MAX];
};

/*
 * --cluster: the last id this node's hub applied of each other node's
 * stream, and of tn:joins, so that a hub started again after a crash
 * reads on from there: what the other nodes wrote while no hub ran
 * here still reaches this node's users (cluster_stream.c).  Only the
 * hub reads and writes it.  gen is odd while one is written: a hub
 * killed in the middle leaves it odd, and the next one takes a
 * snapshot instead.  version 0: nothing to read on from (a new table,
 * a fenced node, or more streams than fit).
 */
#define SHM_TAILS_VERSION	1
#define SHM_TAILS_MAX		64
#define SHM_TAIL_ID		48	/* "ms-seq", its NUL included */
struct shm_tail {
	char		node[SHM_NODE_ID];	/* NUL-terminated */
	char		id[SHM_TAIL_ID];	/* NUL-terminated */
};
struct shm_tails {
	volatile uint64_t gen;		/* odd while the hub writes */
	uint32_t	version;	/* SHM_TAILS_VERSION, or 0 */
	uint32_t	n;		/* rows in tail[] */
	char		joins[SHM_TAIL_ID];	/* tn:joins' last id */
	struct shm_tail	tail[SHM_TAILS_MAX];
};
enum shm_user_state {
	USER_FREE = 0,		/* no worker */
	USER_CONNECTED,		/* a worker, not identified yet */
	USER_IDENTIFIED
};

/*
 * The limits a reload (SIGHUP) may change.  The master sends them to the
 * hub, the hub writes them here, and every worker applies them from here
 * on its next loop: a reloaded limit holds in every process at once.
 */
struct shm_live {
	uint32_t	log_level;
	uint32_t	max_gather;	/* ms a hub round may gather */
	uint64_t	max_line;
	uint64_t	max_queue;
	uint64_t	login_timeout;	/* seconds, 0: none */
	uint64_t	rate_limit;	/* messages a second, 0: none */
	uint64_t	rate_burst;
	uint64_t	stall_timeout;	/* seconds, 0: none */
	uint64_t	pace_min_rate;	/* bytes/s a pacing reader takes */
	uint64_t	pace_window_ms;	/* measured over this */
	uint64_t	reloads;	/* the master's reloads when sent */
};

struct shm_hdr {
	uint32_t	magic;
	uint32_t	version;
	uint64_t	size;		/* bytes of the whole segment */
	uint32_t	max_users;
	uint32_t	max_rooms;
	uint32_t	name_bytes;	/* room for a user name */
	uint32_t	room_bytes;	/* room for a room name */
	uint32_t	bitmap_words;	/* uint64_t words per bitmap */
	uint32_t	user_stride;
	uint32_t	room_stride;
	uint32_t	pad;
	uint64_t	users_off;
	uint64_t	rooms_off;
	volatile uint64_t gen;		/* odd while an update is under way */
	uint64_t	seq;		/* orders identifications and rooms */
	uint32_t	nidentified;
	uint32_t	nrooms;
	/*
	 * --cluster, as the hub sees it (enum shm_cluster): the master
	 * refuses new clients while degraded, sd_notifies it and shows it
	 * in "talknetctl show stats" (master_cluster.c).
	 */
	volatile uint32_t cluster_state;
	uint32_t	pad2;
	volatile uint64_t hub_gen;	/* one more for each hub started */
	volatile uint64_t live_gen;	/* odd while live is being written */
	struct shm_live	live;
	/*
	 * What the hub routed, since the table was made: only the hub
	 * writes them, and talknetctl's "show stats" reads them without a
	 * lock (each is one aligned word).  A cache line of their own, so
	 * their updates do not bounce the line workers read gen from.
	 */
	struct shm_counters {
		uint64_t	msgs_in;	/* requests run */
		uint64_t	msgs_out;	/* lines queued to workers */
		uint64_t	bytes_in;	/* their payload bytes */
		uint64_t	bytes_out;
	} __attribute__((aligned(64))) counters;
	struct shm_nodes nodes;		/* --cluster: "show cluster" */
	struct shm_tails tails;		/* --cluster: the streams read */
};

struct shm_user {
	uint32_t	state;		/* enum shm_user_state */
	int32_t		pid;		/* the worker's process */
	uint32_t	status;		/* enum user_status */
	uint32_t	name_len;
	uint64_t	seq;		/* when it identified */
	uint64_t	last_seq;	/* the worker's last request that ran */
	uint64_t	queued;		/* bytes the hub holds for it: its
					   server-side backlog */
	uint32_t	remote;		/* --cluster: a user of another
					   node, mirrored; no worker */
	uint32_t	pad;
	uint64_t	since_ms;	/* --cluster: when Redis granted
					   the name (its clock) */
	/* followed by name_bytes bytes of name */
};

struct shm_room {
	uint32_t	in_use;
	uint32_t	name_len;
	uint32_t	nmembers;
	uint32_t	creator;	/* the user row that created it */
	uint64_t	seq;		/* when it was created */
	/* followed by members[bitmap_words], invited[bitmap_words], name */
};

/* A mapped table: the header pointer and the size of its mapping. */
struct shm_table {
	struct shm_hdr	*hdr;
	size_t		 size;
};

/* Bytes a table for these limits takes; 0 if it would overflow. */
size_t	 shm_size(size_t max_users, size_t max_rooms, size_t max_name,
	    size_t max_room);
/* Lays out an empty table over mem (size bytes, zeroed or not). */
void	 shm_format(void *mem, size_t size, size_t max_users,
	    size_t max_rooms, size_t max_name, size_t max_room);
/* Checks a mapped header against its mapping size; 0 if sane, -1 if not. */
int	 shm_check(const void *mem, size_t size);
/*
 * Makes a table a dead hub left consistent again: rows with a bad state
 * or name are cleared, room bits point only at identified users, member
 * counts are recounted, empty rooms are freed, and gen is made even.
 * Returns how many things it had to fix.
 */
unsigned shm_repair(const struct shm_table *);

/*
 * Maps the named segment read-only from a read-only descriptor, so that
 * mprotect cannot make the mapping writable: what the master hands to
 * every worker.  Returns NULL with errno set on failure.
 */
const void	*shm_map_readonly(const char *name, size_t size);

/* Row i of the users, or of the rooms. */
struct shm_user	*shm_user(const struct shm_table *, uint32_t i);
struct shm_room	*shm_room(const struct shm_table *, uint32_t i);
/* A user's or room's name bytes. */
char		*shm_user_name(const struct shm_table *, struct shm_user *);
char		*shm_room_name(const struct shm_table *, struct shm_room *);
/* A room's member and invited bitmaps, indexed by user row. */
uint64_t	*shm_room_members(const struct shm_table *, struct shm_room *);
uint64_t	*shm_room_invited(const struct shm_table *, struct shm_room *);

/* Bit operations over the bitmaps. */
int	 shm_bit_test(const uint64_t *, uint32_t);
void	 shm_bit_set(uint64_t *, uint32_t);
void	 shm_bit_clear(uint64_t *, uint32_t);

/* Writes the live limits (the hub only). */
void	 shm_live_set(const struct shm_table *, const struct shm_live *);
/*
 * Reads the live limits as of generation *gen (a seqlock: it retries
 * while the hub writes).  Returns 0, or -1 if no stable copy was read.
 */
int	 shm_live_get(const struct shm_table *, struct shm_live *,
	    uint64_t *gen);
/* The generation of the live limits, to see cheaply if they changed. */
uint64_t shm_live_gen(const struct shm_table *);

/* Writes the cluster's nodes (the hub only), under their seqlock. */
void	 shm_nodes_set(const struct shm_table *, const struct shm_nodes *);
/* Reads a stable copy of them; 0, or -1 if none was read. */
int	 shm_nodes_get(const struct shm_table *, struct shm_nodes *);

/* Writes every stream's last id (the hub only), under their seqlock. */
void	 shm_tails_set(const struct shm_table *, const struct shm_tails *);
/* Writes one row's last id; row -1 is tn:joins' (the hub only). */
void	 shm_tails_id(const struct shm_table *, int row, const char *id);
/* Reads a stable copy of them; 0, or -1 if none was read. */
int	 shm_tails_get(const struct shm_table *, struct shm_tails *);
/* Marks the table as being changed (gen odd), and as consistent again. */
void	 shm_begin(const struct shm_table *);
void	 shm_commit(const struct shm_table *);

/*
 * Updates, for the hub only (the table's single writer).  The caller
 * brackets each request's updates with shm_begin/shm_commit; names are
 * already checked and fit their rows.
 */
/* Gives user row i to a worker's connection. */
void	 shm_user_attach(const struct shm_table *, uint32_t i, int32_t pid);
/* Gives user row i to a user of another node (--cluster): no worker. */
void	 shm_user_attach_remote(const struct shm_table *, uint32_t i);
/* Names user row i and makes it IDENTIFIED. */
void	 shm_user_identify(const struct shm_table *, uint32_t i,
	    const char *name, size_t len);
/* Takes the name back: the row stays attached, unidentified. */
void	 shm_user_unidentify(const struct shm_table *, uint32_t i);
/* Frees user row i. */
void	 shm_user_detach(const struct shm_table *, uint32_t i);
/* Creates room row r with its creator as the only member. */
void	 shm_room_create(const struct shm_table *, uint32_t r,
	    const char *name, size_t len, uint32_t creator);
/* Whether user u is a member, or invited, of room r. */
int	 shm_room_is_member(const struct shm_table *, uint32_t r, uint32_t u);
int	 shm_room_is_invited(const struct shm_table *, uint32_t r, uint32_t u);
/* Invites user u to room r; members and the invited are left alone. */
void	 shm_room_invite(const struct shm_table *, uint32_t r, uint32_t u);
/* Drops user u's invitation to room r, if any. */
void	 shm_room_uninvite(const struct shm_table *, uint32_t r, uint32_t u);
/* Makes user u a member, using up the invitation. */
void	 shm_room_join(const struct shm_table *, uint32_t r, uint32_t u);
/*
 * Removes member u from room r and returns how many members are left;
 * at 0 the room row is freed with its invitations.
 */
uint32_t shm_room_leave(const struct shm_table *, uint32_t r, uint32_t u);

#endif
