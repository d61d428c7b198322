/*
 * cluster_int.h: what cluster.c and cluster_redis.c share, and nothing
 * else includes: one connection to Redis, driven by the hub's epoll.
 */
#ifndef TALKNETD_CLUSTER_INT_H
#define TALKNETD_CLUSTER_INT_H

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "conf.h"
#include "shm.h"

#define CLUSTER_STREAM_MAX	"100000"	/* a stream's entries, about */

/*
 * A node (re)joined tn:nodes: one entry in tn:joins, which every node's
 * XREAD includes, so the others' blocked reads wake at once and read
 * the new node's stream from its start, rather than after their block
 * of up to a second (its first users' NEW_USER came that late).
 */
#define CLUSTER_JOINS		CLUSTER_PREFIX "joins"
#define CLUSTER_LUA_JOINED(id) \
	"redis.call('XADD', '" CLUSTER_JOINS "', 'MAXLEN', '~', '1000', " \
	"'*', 'n', " id ")\n"

struct cluster_redis;
typedef void (*cluster_redis_fn)(struct cluster_redis *);

/*
 * One connection.  It connects, authenticates and selects its database
 * on its own, and after a loss reconnects with a doubling backoff;
 * on_ready runs each time it is ready for commands, on_lost each time
 * a ready connection is lost.
 */
struct cluster_redis {
	const char		*role;		/* for logs: "commands" */
	const struct cluster_addr *addr;
	const char		*password;	/* "": no AUTH */
	char			 client_name[160];
	int			 epfd;
	redisAsyncContext	*ac;		/* NULL: not connected */
	uint32_t		 events;	/* registered in epfd */
	int			 registered;
	int			 fd;
	int			 ready;		/* AUTH and SELECT done */
	int64_t			 connect_by;	/* ms: connecting fails then */
	int64_t			 retry_at;	/* ms: 0, or reconnect then */
	int			 backoff;	/* ms, the next wait */
	int			 warned;	/* the loss is logged */
	cluster_redis_fn	 on_ready;
	cluster_redis_fn	 on_lost;
};

/* Sets a connection up and starts connecting. */
void	 cluster_redis_init(struct cluster_redis *, const char *role,
	    const struct cluster_addr *, const char *password,
	    const char *node_id, int epfd, cluster_redis_fn on_ready,
	    cluster_redis_fn on_lost);
/*
 * Sends one command (hiredis's format) on a ready connection; fn gets
 * its reply, or NULL if the connection is lost first.  -1 if it is not
 * ready (fn is not called).
 */
int	 cluster_redis_cmd(struct cluster_redis *, redisCallbackFn *,
	    void *, const char *, ...);
/* The same, with argv (binary-safe strings). */
int	 cluster_redis_argv(struct cluster_redis *, redisCallbackFn *,
	    void *, int, const char **, const size_t *);
/* Handles an epoll event of its fd. */
void	 cluster_redis_event(struct cluster_redis *, uint32_t);
/* Reconnects, or gives up a connect that takes too long. */
void	 cluster_redis_timers(struct cluster_redis *, int64_t now);
/* Its next timer (ms, monotonic), or 0: none. */
int64_t	 cluster_redis_next(const struct cluster_redis *);
/* Drops the connection on purpose (a bad reply): it reconnects. */
void	 cluster_redis_drop(struct cluster_redis *, const char *why);
/*
 * Rooms in Redis (cluster_room.c): tn:rooms, the set of their names;
 * tn:room:R, a hash (creator); tn:rm:R and tn:ri:R, its members and
 * its invited; tn:ur:U, the rooms user U is a member of or invited to.
 * The prefixes differ, so no room or user name makes two keys meet.
 * Two Lua functions the scripts share: a room dropped when its last
 * member left, and a user gone from every room (its node ended it).
 */
#define CLUSTER_LUA_ROOMS \
	"local function drop_room(r)\n" \
	"  for _, v in ipairs(redis.call('SMEMBERS', 'tn:ri:' .. r)) do\n" \
	"    redis.call('SREM', 'tn:ur:' .. v, r)\n" \
	"  end\n" \
	"  redis.call('DEL', 'tn:room:' .. r, 'tn:rm:' .. r, 'tn:ri:' .. r)\n" \
	"  redis.call('SREM', 'tn:rooms', r)\n" \
	"end\n" \
	"local function forget_user(u)\n" \
	"  for _, r in ipairs(redis.call('SMEMBERS', 'tn:ur:' .. u)) do\n" \
	"    redis.call('SREM', 'tn:rm:' .. r, u)\n" \
	"    redis.call('SREM', 'tn:ri:' .. r, u)\n" \
	"    if redis.call('SCARD', 'tn:rm:' .. r) == 0 then drop_room(r) end\n" \
	"  end\n" \
	"  redis.call('DEL', 'tn:ur:' .. u)\n" \
	"end\n"

/* cluster.c, for cluster_room.c: scripts and writes on the commands. */
void	 cluster_claim_argv(const char *, size_t, const char *user, size_t,
	    int, const char **, const size_t *, cluster_claim_fn, void *);
int	 cluster_write_argv(int, const char **, const size_t *);
const char *cluster_stream_key(void);
struct cluster_redis *cluster_cmd(void);
const char *cluster_node_id(void);
size_t	 cluster_ttl_ms(void);
const char *cluster_names_key(void);

/* cluster_reap.c: exactly one live node reaps each dead one. */
/*
 * Another node's "gone" says a user of this node lost its name: it is
 * closed unless tn:names still gives the name to this node.
 */
void	 cluster_evict_checked(const char *, size_t);
/*
 * A mirrored user moved to another node on a stream's word: tn:names
 * is asked, and the user given back to the node it names if not that.
 */
void	 cluster_owner_checked(const char *, size_t);
/* Whether a node id (from Redis) is one conf.c would take. */
int	 cluster_node_valid(const char *, size_t);
void	 cluster_reap(void);

#define STREAM_ID_MAX	SHM_TAIL_ID	/* "ms-seq": two 64-bit numbers */

/* One stream read: its node, its key, the last id applied. */
struct stream_tail {
	char	 node[SHM_NODE_ID];
	char	 key[160];
	char	 id[STREAM_ID_MAX];
	int64_t	 absent_since;	/* 0, or out of tn:nodes since */
	int64_t	 bad_until;	/* its key is not a stream */
};

/* cluster_stream.c: reading the other nodes' streams. */
void	 cluster_stream_start(const struct cluster_addr *,
	    const struct config *, int epfd);
int	 cluster_stream_owns(const void *);
void	 cluster_stream_event(uint32_t);
void	 cluster_stream_timers(int64_t now);
int64_t	 cluster_stream_next(void);
/* Throws the streams' state away: a new snapshot, then reading on. */
void	 cluster_stream_resync(void);
/* The last id read of node's stream, or NULL. */
const char *cluster_stream_tail(const char *);

/*
 * cluster_tails.c: the streams' last ids, kept in the table's header
 * too, so a hub started again after a crash reads on from there.
 * save writes the set when its nodes or their order changed (always
 * if force); id writes row i's last id as it is applied; joins,
 * tn:joins'; forget marks them not to be read on from (fencing);
 * load reads them back for a new hub: 0, or -1 if there are none it
 * can trust.
 */
void	 cluster_tails_save(const struct stream_tail *, size_t n,
	    const char *joins, int force);
void	 cluster_tails_id(size_t i, const char *id);
void	 cluster_tails_joins(const char *id);
void	 cluster_tails_forget(void);
int	 cluster_tails_load(struct shm_tails *, const char *self);
/* Asks which streams lost entries after their place; 1 if any did. */
int	 cluster_tails_gaps_ask(struct cluster_redis *,
	    const struct stream_tail *, size_t, redisCallbackFn *);
int	 cluster_tails_gaps(const redisReply *);
/* Whether a name was granted (since, Redis's ms) after the place t. */
int	 cluster_tails_after(const struct stream_tail *t,
	    const redisReply *since);

/* cluster_show.c: the nodes, read after each heartbeat, into the table. */
void	 cluster_show(void);

/* Connects synchronously, AUTH and SELECT done; NULL with err. */
redisContext *cluster_redis_sync(const struct cluster_addr *,
	    const char *password, char *err, size_t errlen);

#endif
