/*
 * cluster.c: one node's part of the cluster (issue 19; doc/design.md,
 * "The cluster").  Redis holds the cluster's state, and every
 * check-and-set is one Lua script, so two nodes never both win one:
 *
 *   tn:node:ID	   hash: token, host, pid, beat; PEXPIREs unless the
 *		   node's hub refreshes it (its heartbeat)
 *   tn:nodes	   set of the ids that ever joined
 *   tn:names	   hash: user name -> the id of the node holding it
 *   tn:names:ID	   set: the names node ID holds
 *   tn:stream:ID   the node's stream: what its users did, in order
 *
 * The master claims the node's id (cluster_join) before anything
 * starts; the hub keeps it alive and claims names, one script each.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/queue.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "cluster.h"
#include "cluster_int.h"
#include "conf.h"
#include "log.h"
#include "talknetd.h"
#include "xmalloc.h"

/* After a reconnect: long enough for every other node to reconnect. */
#define CLUSTER_REAP_GRACE_MS	(CLUSTER_BACKOFF_MAX_MS + \
			    CLUSTER_CONNECT_MS + CLUSTER_BEAT_MS(cl.cfg))

/*
 * Joins: takes the node's key unless a live node holds it.  KEYS: the
 * node's key, tn:nodes, tn:names:ID, tn:names, tn:stream:ID, tn:status,
 * tn:reaped:ID (a tombstone another node's reaping left);
 * ARGV: token, ttl ms, host, pid, the token a dead holder on this host
 * left ("": none), the node id.  The names a previous run of this id
 * held are freed: whoever held the id before is gone, and its users
 * with it.  The stream starts again empty, with their "gone" events,
 * so that a node reading it from its start replays only this run.
 * Returns "OK", or the holder's {token, host, pid}, or an error if a
 * live node's ttl (cluster-ttl-ms) is not this one's.
 */
static const char cluster_lua_join[] =
	CLUSTER_LUA_ROOMS
	"local t = redis.call('HGET', KEYS[1], 'token')\n"
	"if t and t ~= ARGV[5] then\n"
	"  return {t, redis.call('HGET', KEYS[1], 'host') or '',\n"
	"    redis.call('HGET', KEYS[1], 'pid') or ''}\n"
	"end\n"
	"for _, n in ipairs(redis.call('SMEMBERS', KEYS[2])) do\n"
	"  local o = redis.call('HGET', 'tn:node:' .. n, 'ttl')\n"
	"  if n ~= ARGV[6] and o and o ~= ARGV[2] then return\n"
	"    redis.error_reply('cluster-ttl-ms is ' .. ARGV[2] .. ', node '\n"
	"    .. n .. ' runs with ' .. o .. ': it must be the same') end\n"
	"end\n"
	"redis.call('DEL', KEYS[5])\n"
	"for _, n in ipairs(redis.call('SMEMBERS', KEYS[3])) do\n"
	"  if redis.call('HGET', KEYS[4], n) == ARGV[6] then\n"
	"    redis.call('HDEL', KEYS[4], n)\n"
	"    redis.call('HDEL', KEYS[6], n)\n"
	"    redis.call('HDEL', 'tn:since', n)\n"
	"    forget_user(n)\n"
	"    redis.call('XADD', KEYS[5], '*', 'e', 'gone', 'n', n)\n"
	"  end\n"
	"end\n"
	"redis.call('DEL', KEYS[1], KEYS[3], KEYS[7])\n"
	"local now = redis.call('TIME')\n"
	"redis.call('HSET', KEYS[1], 'token', ARGV[1], 'host', ARGV[3],\n"
	"  'pid', ARGV[4], 'beat', now[1] * 1000 + math.floor(now[2] / 1000),\n"
	"  'ttl', ARGV[2])\n"
	"redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
	"redis.call('SADD', KEYS[2], ARGV[6])\n"
	CLUSTER_LUA_JOINED("ARGV[6]")
	"return redis.status_reply('OK')\n";

/*
 * The heartbeat: refreshes the node's key if it is still this run's.
 * KEYS: the node's key, tn:nodes, tn:reaped:ID, tn:stream:ID; ARGV:
 * token, ttl ms, pid, host, node id.  0: refreshed; 1: it had lapsed
 * and is taken again; 2: it lapsed and another node reaped this one
 * meanwhile (its users are gone from the cluster: fence; its stream
 * starts again empty, as at a join); -1: another run holds it.
 */
static const char cluster_lua_beat[] =
	"local t = redis.call('HGET', KEYS[1], 'token')\n"
	"if t and t ~= ARGV[1] then return -1 end\n"
	"local reaped = not t and redis.call('DEL', KEYS[3]) == 1\n"
	"local now = redis.call('TIME')\n"
	"redis.call('HSET', KEYS[1], 'token', ARGV[1], 'host', ARGV[4],\n"
	"  'pid', ARGV[3], 'beat', now[1] * 1000 + math.floor(now[2] / 1000),\n"
	"  'ttl', ARGV[2])\n"
	"redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
	"if t then return 0 end\n"
	"redis.call('SADD', KEYS[2], ARGV[5])\n"
	CLUSTER_LUA_JOINED("ARGV[5]")
	"if reaped then\n"
	"  redis.call('DEL', KEYS[4])\n"
	"  return 2\n"
	"end\n"
	"return 1\n";

/*
 * Claims a name: the claim and the event for the other nodes in one
 * script, so one write.  KEYS: tn:names, tn:names:ID, tn:stream:ID;
 * ARGV: name, node id.  Granted: the cluster's time of the claim (ms,
 * kept in tn:since: the older claim wins a conflict); 0: taken; minus
 * the claim's time: this node holds it already (a claim granted to a
 * hub that died before it could answer; the hub decides).
 */
static const char cluster_lua_claim[] =
	"local h = redis.call('HGET', KEYS[1], ARGV[1])\n"
	"if h == ARGV[2] then\n"
	"  return -(tonumber(redis.call('HGET', 'tn:since', ARGV[1])) or 1)\n"
	"end\n"
	"if h then return 0 end\n"
	"redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
	"local now = redis.call('TIME')\n"
	"local since = now[1] * 1000 + math.floor(now[2] / 1000)\n"
	"redis.call('HSET', 'tn:since', ARGV[1], since)\n"
	"redis.call('SADD', KEYS[2], ARGV[1])\n"
	"redis.call('XADD', KEYS[3], 'MAXLEN', '~', '" CLUSTER_STREAM_MAX "',\n"
	"  '*', 'e', 'user', 'n', ARGV[1])\n"
	"return since\n";

/*
 * Releases a name this node holds (its user leaves its rooms), and
 * tells the other nodes, which run the DISCONNECT semantics.  The
 * claim's KEYS and tn:status; the same ARGV.  1: released; 0: not this
 * node's.
 */
static const char cluster_lua_release[] =
	CLUSTER_LUA_ROOMS
	"if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then\n"
	"  return 0\n"
	"end\n"
	"forget_user(ARGV[1])\n"
	"redis.call('HDEL', 'tn:since', ARGV[1])\n"
	"redis.call('HDEL', KEYS[1], ARGV[1])\n"
	"redis.call('HDEL', KEYS[4], ARGV[1])\n"
	"redis.call('SREM', KEYS[2], ARGV[1])\n"
	"redis.call('XADD', KEYS[3], 'MAXLEN', '~', '" CLUSTER_STREAM_MAX "',\n"
	"  '*', 'e', 'gone', 'n', ARGV[1])\n"
	"return 1\n";

/*
 * A status: kept for the snapshots of nodes that start later, and told
 * to the nodes reading now, in one write.  KEYS: tn:status,
 * tn:stream:ID; ARGV: name, status (a digit).
 */
static const char cluster_lua_status[] =
	"redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
	"redis.call('XADD', KEYS[2], 'MAXLEN', '~', '" CLUSTER_STREAM_MAX "',\n"
	"  '*', 'e', 'status', 'n', ARGV[1], 's', ARGV[2])\n"
	"return 1\n";

/* A claim waiting for Redis: a name's, or a room's (create, join). */
struct cluster_claim_req {
	cluster_claim_fn		 fn;
	void				*arg;	/* NULL: cancelled */
	char				*name;	/* the user's, or the room's */
	size_t				 len;
	char				*user;	/* a room's: who; or NULL */
	size_t				 ulen;
	enum cluster_claim		 res;	/* not sent: the answer */
	TAILQ_ENTRY(cluster_claim_req)	 entry;
};
TAILQ_HEAD(cluster_claims, cluster_claim_req);

/* The node's cluster state: the hub's, one of it. */
static struct {
	int			 on;
	const struct config	*cfg;
	struct cluster_addr	 addr;
	struct cluster_redis	 cmd;		/* scripts and commands */
	char			 host[256];
	char			 pid[16];	/* the master's */
	char			 k_node[192];	/* tn:node:ID */
	char			 k_names_node[192];	/* tn:names:ID */
	char			 k_stream[192];	/* tn:stream:ID */
	char			 k_reaped[192];	/* tn:reaped:ID */
	int64_t			 beat_at;	/* the next heartbeat */
	int			 beat_sent;	/* one is on its way */
	int64_t			 beat_sent_at;
	int			 fenced;	/* another run holds the id */
	int			 beaten;	/* a heartbeat was answered */
	int			 degraded;	/* as last logged */
	int			 was_lost;	/* its connection broke */
	int64_t			 reap_from;	/* reaps from then */
	struct cluster_claims	 claims;	/* in the order sent */
	struct cluster_claims	 failed;	/* not sent: fail next round */
	struct cluster_claims	 failing;	/* failed, last round */
	struct cluster_claims	 pending;	/* releases Redis missed */
	size_t			 npending;
} cl;

static void	cluster_fail_claims(void);
static void	cluster_fence(void);
static void	cluster_release_pending(void);
static void	cluster_write_reply(redisAsyncContext *, void *, void *);
static struct cluster_claim_req *cluster_claim_new(const char *, size_t,
		    cluster_claim_fn, void *);
static void	cluster_claim_sent(struct cluster_claim_req *, int);
static void	cluster_claim_undo(struct cluster_claim_req *);
static void	cluster_claim_free(struct cluster_claim_req *);
static int	cluster_claim_in_flight(const char *, size_t);

/* The keys of node id. */
static void
cluster_keys(const char *id, char *node, size_t nlen, char *names,
    size_t nmlen, char *stream, size_t slen)
{
	(void)snprintf(node, nlen, CLUSTER_PREFIX "node:%s", id);
	(void)snprintf(names, nmlen, CLUSTER_PREFIX "names:%s", id);
	(void)snprintf(stream, slen, CLUSTER_PREFIX "stream:%s", id);
}

/* Makes this run's token: random, so two runs never share one. */
static void
cluster_token(char *buf, size_t len)
{
	uint32_t	a = arc4random(), b = arc4random(), c = arc4random(),
			d = arc4random();

	(void)snprintf(buf, len, "%08x%08x%08x%08x", a, b, c, d);
}

/* Whether pid has exited and waits for its parent to reap it. */
static int
cluster_pid_zombie(pid_t pid)
{
	FILE	*f;
	char	 path[64], state = '?';
	int	 n;

	(void)snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	/* "pid (comm) S ...": comm may hold spaces, the last ')' ends it. */
	n = fscanf(f, "%*d (%*[^)]) %c", &state);
	fclose(f);
	return n == 1 && state == 'Z';
}

/*
 * Whether the holder of an id is a talknetd of this host that is gone:
 * its master's pid no longer runs.  Then its id may be taken at once,
 * not only after its heartbeat lapses (a restart).  A pid that runs,
 * whatever it is now, counts as alive: the safe side.
 */
static int
cluster_holder_dead(const redisReply *rep, const char *host)
{
	const char	*errstr;
	long long	 pid;

	if (rep->elements != 3 || rep->element[1]->type !=
	    REDIS_REPLY_STRING || rep->element[2]->type != REDIS_REPLY_STRING)
		return 0;
	if (strcmp(rep->element[1]->str, host) != 0)
		return 0;
	pid = strtonum(rep->element[2]->str, 2, INT32_MAX, &errstr);
	if (errstr != NULL)
		return 0;
	if (kill((pid_t)pid, 0) == -1 && errno == ESRCH)
		return 1;
	return cluster_pid_zombie((pid_t)pid);
}

/* Runs the join script once; the reply, or NULL with err (escaped). */
static redisReply *
cluster_join_try(redisContext *c, const struct config *cfg,
    const char *host, const char *takeover, char *err, size_t errlen)
{
	char		 k_node[192], k_names[192], k_stream[192], ttl[16],
			 pid[16], k_reaped[192], eerr[LOG_ESCAPED(96)];
	redisReply	*rep;

	cluster_keys(cfg->node_id, k_node, sizeof(k_node), k_names,
	    sizeof(k_names), k_stream, sizeof(k_stream));
	(void)snprintf(ttl, sizeof(ttl), "%zu", cfg->cluster_ttl_ms);
	(void)snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	(void)snprintf(k_reaped, sizeof(k_reaped), CLUSTER_PREFIX "reaped:%s",
	    cfg->node_id);
	rep = redisCommand(c, "EVAL %s 7 %s %s %s %s %s %s %s "
	    "%s %s %s %s %s %s", cluster_lua_join, k_node,
	    CLUSTER_PREFIX "nodes", k_names, CLUSTER_PREFIX "names", k_stream,
	    CLUSTER_PREFIX "status", k_reaped, cfg->cluster_token, ttl, host,
	    pid, takeover, cfg->node_id);
	if (rep == NULL)
		(void)snprintf(err, errlen, "redis: %s", c->errstr);
	else if (rep->type == REDIS_REPLY_ERROR) {
		(void)snprintf(err, errlen, "redis: %s", log_escape(rep->str,
		    rep->len, eerr, sizeof(eerr)));
		freeReplyObject(rep);
		rep = NULL;
	}
	return rep;
}

/* Claims the node's id before the master starts; -1 with err. */
int
cluster_join(struct config *cfg, char *err, size_t errlen)
{
	struct cluster_addr	 a;
	redisContext		*c;
	redisReply		*rep;
	char			 host[256], takeover[64];
	char			 ehost[LOG_ESCAPED(64)];
	char			 epid[LOG_ESCAPED(16)];
	int			 rc = -1;

	err[0] = '\0';
	if (conf_cluster_parse(cfg->cluster, &a, err, errlen) == -1)
		return -1;
	if (gethostname(host, sizeof(host)) == -1)
		(void)strlcpy(host, "?", sizeof(host));
	cluster_token(cfg->cluster_token, sizeof(cfg->cluster_token));
	if ((c = cluster_redis_sync(&a, cfg->cluster_password, err,
	    errlen)) == NULL)
		return -1;
	if ((rep = cluster_join_try(c, cfg, host, "", err, errlen)) == NULL)
		goto out;
	if (rep->type == REDIS_REPLY_ARRAY && cluster_holder_dead(rep, host)) {
		(void)strlcpy(takeover, rep->element[0]->str,
		    sizeof(takeover));
		log_info("cluster: node id %s: its last run on this host "
		    "(pid %s) is gone; taking it over", cfg->node_id,
		    rep->element[2]->str);
		freeReplyObject(rep);
		if ((rep = cluster_join_try(c, cfg, host, takeover, err,
		    errlen)) == NULL)
			goto out;
	}
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
	    rep->element[1]->type == REDIS_REPLY_STRING &&
	    rep->element[2]->type == REDIS_REPLY_STRING)
		/* The key's fields are anyone's who writes to Redis. */
		(void)snprintf(err, errlen, "node id %s is in use by a live "
		    "node (host %s, pid %s); a node's id is free %zu ms "
		    "after it stops", cfg->node_id,
		    log_escape(rep->element[1]->str, rep->element[1]->len,
		    ehost, sizeof(ehost)),
		    log_escape(rep->element[2]->str, rep->element[2]->len,
		    epid, sizeof(epid)), cfg->cluster_ttl_ms);
	else if (rep->type != REDIS_REPLY_STATUS)
		(void)snprintf(err, errlen, "redis: unexpected reply to the "
		    "join script");
	else
		rc = 0;
	freeReplyObject(rep);
out:
	redisFree(c);
	return rc;
}

/* Says when the node's state changes: degraded, or back. */
static void
cluster_note_state(void)
{
	int	degraded = !cl.cmd.ready || cl.fenced;

	if (degraded == cl.degraded)
		return;
	cl.degraded = degraded;
	hub_cluster_state();
	if (degraded)
		log_warnx("cluster: degraded (%s): new users are refused",
		    cl.fenced ? "another run holds this node's id" :
		    "redis unreachable");
	else
		log_info("cluster: ok");
}

/* The heartbeat's reply. */
static void
cluster_beat_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	redisReply	*rep = reply;

	(void)ac;
	(void)arg;
	cl.beat_sent = 0;
	if (rep == NULL)
		return;
	if (rep->type != REDIS_REPLY_INTEGER) {
		log_warnx("cluster: heartbeat: %s", rep->type ==
		    REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
		return;
	}
	/* Redis forgot this node (restarted empty?): it says who is here. */
	if (rep->integer == 1) {
		log_warnx("cluster: node id %s had lapsed, not reaped: taken "
		    "again, its users re-asserted", cl.cfg->node_id);
		cluster_mirror_reassert(0);
	}
	if (rep->integer == 2)
		cluster_fence();
	/*
	 * A hub started again re-asserts its users once: one killed inside
	 * its fence left users whose names Redis freed, and the heartbeat
	 * that told it took the tombstone, so this one finds nothing wrong.
	 * It yields a name another node holds: freed here, taken there.
	 */
	if (rep->integer == 0 && !cl.beaten && cluster_mirror_restarted())
		cluster_mirror_reassert(1);
	cl.beaten = 1;
	cl.fenced = rep->integer == -1;
	cluster_note_state();
	cluster_show();
	if (!cl.fenced && clock_now_ms() >= cl.reap_from)
		cluster_reap();
}

/*
 * This node was cut off long enough to be reaped: every other node
 * has let its users go, and a name of one may be another's by now.
 * Its clients are closed (they reconnect through the load balancer),
 * its mirror thrown away and read again; it goes on as a fresh node
 * (the heartbeat that said so took its id again).
 */
static void
cluster_fence(void)
{
	log_warnx("cluster: fenced: this node was cut off for longer than "
	    "%zu ms and reaped by another; closing its clients and starting "
	    "afresh", cl.cfg->cluster_ttl_ms);
	cluster_mirror_fence();
	cluster_stream_resync();
}

/* Sends the heartbeat, if none is on its way. */
static void
cluster_beat(void)
{
	char	ttl[16];

	cl.beat_at = clock_now_ms() + CLUSTER_BEAT_MS(cl.cfg);
	if (cl.beat_sent)
		return;
	(void)snprintf(ttl, sizeof(ttl), "%zu", cl.cfg->cluster_ttl_ms);
	if (cluster_redis_cmd(&cl.cmd, cluster_beat_reply, NULL,
	    "EVAL %s 4 %s %s %s %s %s %s %s %s %s", cluster_lua_beat,
	    cl.k_node, CLUSTER_PREFIX "nodes", cl.k_reaped, cl.k_stream,
	    cl.cfg->cluster_token, ttl, cl.pid, cl.host,
	    cl.cfg->node_id) == 0) {
		cl.beat_sent = 1;
		cl.beat_sent_at = clock_now_ms();
	}
}

/* The command connection is ready (again): beat at once. */
static void
cluster_cmd_ready(struct cluster_redis *r)
{
	(void)r;
	/*
	 * Back after Redis was away: if it was away for everyone, every
	 * key lapsed, and the others are reconnecting too (with backoff).
	 * Reaping them now would fence every node but the first back.
	 */
	if (cl.was_lost)
		cl.reap_from = clock_now_ms() + CLUSTER_REAP_GRACE_MS;
	cl.was_lost = 0;
	cluster_beat();
	cluster_note_state();
	cluster_release_pending();
}

/* The command connection is lost: what was on its way is failed. */
static void
cluster_cmd_lost(struct cluster_redis *r)
{
	(void)r;
	cl.beat_sent = 0;
	cl.was_lost = 1;
	cluster_note_state();
}

/* The hub: connects to Redis, its fds in epfd. */
void
cluster_start(const struct config *cfg, int epfd)
{
	char	err[256];

	if (cfg->cluster[0] == '\0')
		return;
	if (conf_cluster_parse(cfg->cluster, &cl.addr, err, sizeof(err)) ==
	    -1)
		fatalx("cluster: %s", err);
	cl.on = 1;
	cl.cfg = cfg;
	TAILQ_INIT(&cl.claims);
	TAILQ_INIT(&cl.failed);
	TAILQ_INIT(&cl.failing);
	TAILQ_INIT(&cl.pending);
	if (gethostname(cl.host, sizeof(cl.host)) == -1)
		(void)strlcpy(cl.host, "?", sizeof(cl.host));
	/* The master's pid: a restart on this host checks it is gone. */
	(void)snprintf(cl.pid, sizeof(cl.pid), "%ld", (long)getppid());
	cluster_keys(cfg->node_id, cl.k_node, sizeof(cl.k_node),
	    cl.k_names_node, sizeof(cl.k_names_node), cl.k_stream,
	    sizeof(cl.k_stream));
	(void)snprintf(cl.k_reaped, sizeof(cl.k_reaped), CLUSTER_PREFIX
	    "reaped:%s", cfg->node_id);
	/* Not ready yet: degraded until it is. */
	cl.degraded = 1;
	cluster_redis_init(&cl.cmd, "commands", &cl.addr,
	    cfg->cluster_password, cfg->node_id, epfd, cluster_cmd_ready,
	    cluster_cmd_lost);
	cluster_stream_start(&cl.addr, cfg, epfd);
	log_info("cluster: node %s joining %s", cfg->node_id, cfg->cluster);
}

/* Whether this node runs in a cluster. */
int
cluster_on(void)
{
	return cl.on;
}

/* Whether the node cannot take new users now. */
int
cluster_degraded(void)
{
	return cl.on && (!cl.cmd.ready || cl.fenced);
}

/* Whether an epoll data.ptr is one of the cluster's connections. */
int
cluster_owns(const void *p)
{
	return cl.on && (p == &cl.cmd || cluster_stream_owns(p));
}

/* Handles an event of one of the cluster's connections. */
void
cluster_event(void *p, uint32_t events)
{
	if (p == &cl.cmd)
		cluster_redis_event(&cl.cmd, events);
	else
		cluster_stream_event(events);
}

/* The sooner of t (ms, -1: none) and the cluster's next timer. */
int
cluster_timeout(int t)
{
	int64_t	next, now;

	if (!cl.on)
		return t;
	if (!TAILQ_EMPTY(&cl.failed) || !TAILQ_EMPTY(&cl.failing))
		return 0;
	now = clock_now_ms();
	next = cl.cmd.ready ? cl.beat_at : cluster_redis_next(&cl.cmd);
	if (cluster_stream_next() != 0 && (next == 0 ||
	    cluster_stream_next() < next))
		next = cluster_stream_next();
	if (next == 0)
		return t;
	next = next > now ? next - now + 1 : 0;
	return t == -1 || next < t ? (int)next : t;
}

/* Runs the heartbeat and the connection's timers. */
void
cluster_timers(void)
{
	int64_t	now;

	if (!cl.on)
		return;
	now = clock_now_ms();
	cluster_redis_timers(&cl.cmd, now);
	/* A Redis that hangs answers nothing: drop, and reconnect. */
	if (cl.cmd.ready && cl.beat_sent && now - cl.beat_sent_at >
	    CLUSTER_TTL_MS(cl.cfg))
		cluster_redis_drop(&cl.cmd, "no answer to the heartbeat in "
		    "time");
	else if (cl.cmd.ready && now >= cl.beat_at)
		cluster_beat();
	cluster_stream_timers(now);
	cluster_fail_claims();
}

/* A claim's reply: its requester hears, unless it went away. */
static void
cluster_claim_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct cluster_claim_req	*q = arg;
	redisReply			*rep = reply;
	enum cluster_claim		 res = CLAIM_FAILED;
	uint64_t			 value = 0;

	(void)ac;
	TAILQ_REMOVE(&cl.claims, q, entry);
	if (rep != NULL && rep->type == REDIS_REPLY_INTEGER) {
		res = rep->integer >= 1 ? CLAIM_GRANTED : rep->integer < 0 ?
		    CLAIM_OURS : CLAIM_TAKEN;
		value = rep->integer >= 1 ? (uint64_t)rep->integer :
		    rep->integer < 0 ? (uint64_t)-rep->integer : 0;
	} else if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
		log_warnx("cluster: claim: %s", rep->str);
	if (q->arg != NULL)
		q->fn(q->arg, q->name, q->len, res, value);
	else if (res == CLAIM_GRANTED)
		cluster_claim_undo(q);
	cluster_claim_free(q);
}

/* Sends a name script (claim or release); -1 if it cannot go now. */
static int
cluster_name_script(const char *script, const char *name, size_t len,
    redisCallbackFn *fn, void *arg)
{
	const char	*argv[9];
	size_t		 argvlen[9];
	int		 i;

	argv[0] = "EVAL";
	argv[1] = script;
	argv[2] = "4";
	argv[3] = CLUSTER_PREFIX "names";
	argv[4] = cl.k_names_node;
	argv[5] = cl.k_stream;
	argv[6] = CLUSTER_PREFIX "status";
	argv[7] = name;
	argv[8] = cl.cfg->node_id;
	for (i = 0; i < 9; i++)
		argvlen[i] = strlen(argv[i]);
	argvlen[7] = len;
	if (cl.fenced)
		return -1;
	return cluster_redis_argv(&cl.cmd, fn, arg, 9, argv, argvlen);
}

/*
 * Claims a name for a user of this node.  A claim that cannot be sent
 * (degraded) fails, but from the hub's loop (cluster_timers), like any
 * answer: the caller's callback never runs inside this call.
 */
void
cluster_claim_name(const char *name, size_t len, uint32_t row,
    cluster_claim_fn fn, void *arg)
{
	struct cluster_claim_req	*q;

	(void)row;
	q = cluster_claim_new(name, len, fn, arg);
	/*
	 * One claim of a name at a time from this node: a second would be
	 * answered "ours" and granted, and the first one's undo (its
	 * requester gone) would then free the second's name.
	 */
	if (cluster_claim_in_flight(name, len)) {
		q->res = CLAIM_TAKEN;
		TAILQ_INSERT_TAIL(&cl.failed, q, entry);
		return;
	}
	cluster_claim_sent(q, cluster_name_script(cluster_lua_claim, q->name,
	    len, cluster_claim_reply, q));
}

/* Whether a claim of that name is on its way. */
static int
cluster_claim_in_flight(const char *name, size_t len)
{
	struct cluster_claim_req	*q;

	TAILQ_FOREACH(q, &cl.claims, entry)
		if (q->user == NULL && q->len == len &&
		    memcmp(q->name, name, len) == 0)
			return 1;
	return 0;
}

/* A claim whose answer fn(arg, name, result) gives; not sent yet. */
static struct cluster_claim_req *
cluster_claim_new(const char *name, size_t len, cluster_claim_fn fn,
    void *arg)
{
	struct cluster_claim_req	*q;

	q = xcalloc(1, sizeof(*q));
	q->fn = fn;
	q->arg = arg;
	q->name = xcalloc(1, len + 1);
	memcpy(q->name, name, len);
	q->name[len] = '\0';
	q->len = len;
	q->res = CLAIM_FAILED;
	return q;
}

/*
 * Undoes a claim granted to a requester that went away meanwhile: a
 * name is released, a room (made or joined) is left.
 */
static void
cluster_claim_undo(struct cluster_claim_req *q)
{
	if (q->user == NULL)
		cluster_release_name(q->name, q->len);
	else
		cluster_leave_room(q->name, q->len, q->user, q->ulen);
}

/* Frees a claim. */
static void
cluster_claim_free(struct cluster_claim_req *q)
{
	free(q->name);
	free(q->user);
	free(q);
}

/* A claim went (rc 0) and waits for its reply, or failed (-1). */
static void
cluster_claim_sent(struct cluster_claim_req *q, int rc)
{
	if (rc == -1)
		TAILQ_INSERT_TAIL(&cl.failed, q, entry);
	else
		TAILQ_INSERT_TAIL(&cl.claims, q, entry);
}

/*
 * Runs a check-and-set script (argv) whose integer reply is 1 when it
 * granted: fn(arg, name, result) gives the answer from the hub's loop,
 * as for a name's claim (cluster_room.c's claims).
 */
void
cluster_claim_argv(const char *name, size_t len, const char *user,
    size_t ulen, int argc, const char **argv, const size_t *argvlen,
    cluster_claim_fn fn, void *arg)
{
	struct cluster_claim_req	*q;

	q = cluster_claim_new(name, len, fn, arg);
	q->user = xcalloc(1, ulen + 1);
	memcpy(q->user, user, ulen);
	q->ulen = ulen;
	cluster_claim_sent(q, cl.fenced ? -1 : cluster_redis_argv(&cl.cmd,
	    cluster_claim_reply, q, argc, argv, argvlen));
}

/* Sends a write whose reply nothing waits for; -1 if it cannot go. */
int
cluster_write_argv(int argc, const char **argv, const size_t *argvlen)
{
	if (cl.fenced)
		return -1;
	return cluster_redis_argv(&cl.cmd, cluster_write_reply, NULL, argc,
	    argv, argvlen);
}

/* The commands' connection (cluster_reap.c's scripts). */
struct cluster_redis *
cluster_cmd(void)
{
	return &cl.cmd;
}

/* The set of the names this node holds (tn:names:ID). */
const char *
cluster_names_key(void)
{
	return cl.k_names_node;
}

/* This node's id. */
const char *
cluster_node_id(void)
{
	return cl.cfg->node_id;
}

/* This node's cluster-ttl-ms: its heartbeat's life. */
size_t
cluster_ttl_ms(void)
{
	return cl.cfg->cluster_ttl_ms;
}

/* This node's stream's key. */
const char *
cluster_stream_key(void)
{
	return cl.k_stream;
}

/* Forgets the requester of a claim on its way: it went away. */
void
cluster_claim_cancel(void *arg)
{
	struct cluster_claim_req	*q;

	TAILQ_FOREACH(q, &cl.claims, entry)
		if (q->arg == arg)
			q->arg = NULL;
	TAILQ_FOREACH(q, &cl.failed, entry)
		if (q->arg == arg)
			q->arg = NULL;
	TAILQ_FOREACH(q, &cl.failing, entry)
		if (q->arg == arg)
			q->arg = NULL;
}

/* A write's reply (a release, an event): nothing waits for it. */
static void
cluster_write_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	static int64_t		 since;
	static unsigned long long more;
	redisReply		*rep = reply;
	int64_t			 now = clock_now_ms();

	(void)ac;
	(void)arg;
	if (rep == NULL || rep->type != REDIS_REPLY_ERROR)
		return;
	/* One a message would flood the log (a stream made unwritable). */
	if (since != 0 && now - since < 1000) {
		more++;
		return;
	}
	log_warnx("cluster: redis: %s (%llu more errors not logged since "
	    "the last)", rep->str, more);
	since = now;
	more = 0;
}

/*
 * Gives a name back.  Degraded, the release waits for Redis (at most
 * CLUSTER_PENDING_MAX of them; past that the name stays this node's in
 * Redis until the node restarts, logged).
 */
void
cluster_release_name(const char *name, size_t len)
{
	struct cluster_claim_req	*q;
	char				 esc[256];

	if (cluster_name_script(cluster_lua_release, name, len,
	    cluster_write_reply, NULL) == 0)
		return;
	if (cl.npending >= CLUSTER_PENDING_MAX) {
		log_warnx("cluster: degraded: %s stays claimed in redis",
		    log_escape(name, len, esc, sizeof(esc)));
		return;
	}
	q = cluster_claim_new(name, len, NULL, NULL);
	TAILQ_INSERT_TAIL(&cl.pending, q, entry);
	cl.npending++;
}

/*
 * Redis is back: the releases that waited go now, but for a name a
 * user of this node took again meanwhile (the script would free it).
 */
static void
cluster_release_pending(void)
{
	struct cluster_claims		 todo;
	struct cluster_claim_req	*q;

	/* Taken whole: one that fails again goes back on cl.pending. */
	TAILQ_INIT(&todo);
	TAILQ_CONCAT(&todo, &cl.pending, entry);
	cl.npending = 0;
	while ((q = TAILQ_FIRST(&todo)) != NULL) {
		TAILQ_REMOVE(&todo, q, entry);
		if (!cluster_mirror_local(q->name, q->len))
			cluster_release_name(q->name, q->len);
		cluster_claim_free(q);
	}
}

/*
 * Answers the claims that were not sent: failed, or taken (a claim of
 * the name on its way).  Each waits one round first, so that what the
 * hub queued for its requester in the round of the request (its
 * WELCOME) is written before the answer may drop it: a worker dropped before its WELCOME would take the
 * close for a refusal at the door and come back.
 */
static void
cluster_fail_claims(void)
{
	struct cluster_claim_req	*q;

	while ((q = TAILQ_FIRST(&cl.failing)) != NULL) {
		TAILQ_REMOVE(&cl.failing, q, entry);
		if (q->arg != NULL)
			q->fn(q->arg, q->name, q->len, q->res, 0);
		cluster_claim_free(q);
	}
	TAILQ_CONCAT(&cl.failing, &cl.failed, entry);
}

/*
 * Sends one event on this node's stream, one XADD: e kind, n user, and
 * to and t when given (NULL: none).  A failure is logged, not kept.
 */
static void
cluster_xadd(const char *kind, const char *n, size_t nlen, const char *to,
    size_t tolen, const char *t, size_t tlen)
{
	const char	*argv[14];
	size_t		 argvlen[14];
	int		 argc = 0, i;

	argv[argc++] = "XADD";
	argv[argc++] = cl.k_stream;
	argv[argc++] = "MAXLEN";
	argv[argc++] = "~";
	argv[argc++] = CLUSTER_STREAM_MAX;
	argv[argc++] = "*";
	argv[argc++] = "e";
	argv[argc++] = kind;
	argv[argc++] = "n";
	for (i = 0; i < argc; i++)
		argvlen[i] = strlen(argv[i]);
	argv[argc] = n;
	argvlen[argc++] = nlen;
	if (to != NULL) {
		argv[argc] = "to";
		argvlen[argc++] = 2;
		argv[argc] = to;
		argvlen[argc++] = tolen;
	}
	if (t != NULL) {
		argv[argc] = "t";
		argvlen[argc++] = 1;
		argv[argc] = t;
		argvlen[argc++] = tlen;
	}
	if (cl.fenced || cluster_redis_argv(&cl.cmd, cluster_write_reply,
	    NULL, argc, argv, argvlen) == -1)
		log_debug("cluster: degraded: an event stays on this node");
}

/* A status change of a user of this node. */
void
cluster_status(const char *name, size_t len, int status)
{
	const char	*argv[7];
	size_t		 argvlen[7];
	char		 s[16];
	int		 i;

	(void)snprintf(s, sizeof(s), "%d", status);
	argv[0] = "EVAL";
	argv[1] = cluster_lua_status;
	argv[2] = "2";
	argv[3] = CLUSTER_PREFIX "status";
	argv[4] = cl.k_stream;
	argv[5] = name;
	argv[6] = s;
	for (i = 0; i < 7; i++)
		argvlen[i] = strlen(argv[i]);
	argvlen[5] = len;
	if (cl.fenced || cluster_redis_argv(&cl.cmd, cluster_write_reply,
	    NULL, 7, argv, argvlen) == -1)
		log_debug("cluster: degraded: a status stays on this node");
}

/* A PUBLIC_TEXT of a user of this node: one XADD. */
void
cluster_public_text(const char *from, size_t flen, const char *text,
    size_t tlen)
{
	cluster_xadd("pub", from, flen, NULL, 0, text, tlen);
}

/* A TEXT of a user of this node to a user of another: one XADD. */
void
cluster_private_text(const char *from, size_t flen, const char *to,
    size_t tolen, const char *text, size_t tlen)
{
	cluster_xadd("priv", from, flen, to, tolen, text, tlen);
}
