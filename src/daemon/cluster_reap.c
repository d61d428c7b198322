/*
 * cluster_reap.c: a dead node's users leave the cluster, exactly once.
 * Every live node runs the reap script after each heartbeat; one
 * script is atomic, so for each node whose heartbeat key lapsed exactly
 * one run finds it still in tn:nodes and reaps it: its users leave
 * their rooms, their names are freed, a "gone" event for each goes on
 * the reaper's stream (with "of", the dead node, so that the mirrors
 * drop the right users), and a tombstone tells the dead node, should
 * it come back, that it must fence.
 */
#include "config.h"

#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "cluster_int.h"
#include "log.h"
#include "talknetd.h"
#include "xmalloc.h"

#define REAP_TOMBSTONE_S	"3600"	/* a reaped node has an hour */
#define REAP_STREAM_MS		"60000"	/* its stream outlives it a minute */

/*
 * KEYS: tn:nodes, the reaper's stream; ARGV: the reaper's id.  Returns
 * {node, {names}} for each node reaped.
 */
static const char reap_lua[] =
	CLUSTER_LUA_ROOMS
	"local out = {}\n"
	"for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
	"  if n ~= ARGV[1] and redis.call('EXISTS', 'tn:node:' .. n) == 0 then\n"
	"    local names = {}\n"
	"    for _, u in ipairs(redis.call('SMEMBERS', 'tn:names:' .. n)) do\n"
	"      if redis.call('HGET', 'tn:names', u) == n then\n"
	"        forget_user(u)\n"
	"        redis.call('HDEL', 'tn:names', u)\n"
	"        redis.call('HDEL', 'tn:status', u)\n"
	"        redis.call('HDEL', 'tn:since', u)\n"
	"        redis.call('XADD', KEYS[2], 'MAXLEN', '~', '"
	    CLUSTER_STREAM_MAX "',\n"
	"          '*', 'e', 'gone', 'n', u, 'of', n)\n"
	"        names[#names + 1] = u\n"
	"      end\n"
	"    end\n"
	"    redis.call('DEL', 'tn:names:' .. n)\n"
	"    redis.call('SREM', KEYS[1], n)\n"
	"    redis.call('SET', 'tn:reaped:' .. n, ARGV[1], 'EX', '"
	    REAP_TOMBSTONE_S "')\n"
	"    redis.call('PEXPIRE', 'tn:stream:' .. n, '" REAP_STREAM_MS "')\n"
	"    out[#out + 1] = {n, names}\n"
	"  end\n"
	"end\n"
	"return out\n";

/* The reap's reply: this node drops the reaped users from its mirror. */
static void
reap_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	redisReply	*rep = reply, *one, *names;
	size_t		 i, j;
	char		 esc[LOG_ESCAPED(64)];

	(void)ac;
	(void)arg;
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
		if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
			log_warnx("cluster: reap: %s", rep->str);
		return;
	}
	for (i = 0; i < rep->elements; i++) {
		one = rep->element[i];
		if (one->type != REDIS_REPLY_ARRAY || one->elements != 2 ||
		    one->element[0]->type != REDIS_REPLY_STRING ||
		    one->element[1]->type != REDIS_REPLY_ARRAY)
			continue;
		names = one->element[1];
		/* Anything that writes to Redis may add ids to tn:nodes. */
		if (cluster_warn_ok())
			log_warnx("cluster: node %s is gone (no heartbeat for "
			    "%zu ms): reaped, %zu users", log_escape(
			    one->element[0]->str, one->element[0]->len < 64 ?
			    one->element[0]->len : 64, esc, sizeof(esc)),
			    cluster_ttl_ms(), names->elements);
		for (j = 0; j < names->elements; j++)
			if (names->element[j]->type == REDIS_REPLY_STRING)
				cluster_mirror_gone(one->element[0]->str,
				    names->element[j]->str,
				    names->element[j]->len);
	}
}

/* Runs the reap script (after a heartbeat: this node is alive). */
void
cluster_reap(void)
{
	if (cluster_redis_cmd(cluster_cmd(), reap_reply, NULL,
	    "EVAL %s 2 %s %s %s", reap_lua, CLUSTER_PREFIX "nodes",
	    cluster_stream_key(), cluster_node_id()) == -1)
		log_debug("cluster: degraded: no reaping");
}

/* A name a stream said something of, while Redis is asked who has it. */
struct reap_evict {
	size_t	len;
	char	name[];
};

/* Asks HGET tn:names name, fn getting the name; -1 if not sent. */
static int
reap_ask_holder(const char *name, size_t len, redisCallbackFn *fn)
{
	struct reap_evict	*ev;

	ev = xcalloc(1, sizeof(*ev) + len + 1);
	ev->len = len;
	memcpy(ev->name, name, len);
	if (cluster_redis_cmd(cluster_cmd(), fn, ev, "HGET %s %b",
	    CLUSTER_PREFIX "names", name, len) == -1) {
		free(ev);
		return -1;
	}
	return 0;
}

/*
 * Who holds the name: a client here is closed unless it is this node
 * (then the "gone" was not Redis's: anything may write a stream).  No
 * answer closes it, as the "gone" alone did.
 */
static void
reap_evict_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	redisReply		*rep = reply;
	struct reap_evict	*ev = arg;
	char			 esc[LOG_ESCAPED(64)];

	(void)ac;
	if (rep != NULL && rep->type == REDIS_REPLY_STRING &&
	    strcmp(rep->str, cluster_node_id()) == 0)
		log_warnx("cluster: a \"gone\" of %s, which Redis says this "
		    "node holds: ignored", log_escape(ev->name,
		    ev->len < 64 ? ev->len : 64, esc, sizeof(esc)));
	else
		cluster_mirror_evict(ev->name, ev->len);
	free(ev);
}

/* Closes a client here that lost its name, once Redis confirms it. */
void
cluster_evict_checked(const char *name, size_t len)
{
	if (reap_ask_holder(name, len, reap_evict_reply) == -1)
		cluster_mirror_evict(name, len);
}

/* Who holds a name, and the status: KEYS tn:names, tn:status. */
static const char reap_lua_holder[] =
	"return {redis.call('HGET', KEYS[1], ARGV[1]),\n"
	"  redis.call('HGET', KEYS[2], ARGV[1])}\n";

/*
 * The holder of a name a client here was closed for: mirrored, with its
 * status.  Its "user" may have been read while the client here still
 * held the row (the client goes at the end of that round), and was not
 * mirrored then; this answer comes in a later round.
 */
static void
reap_holder_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	redisReply		*rep = reply;
	struct reap_evict	*ev = arg;
	const redisReply	*st;
	int			 status = 0;

	(void)ac;
	if (rep != NULL && rep->type == REDIS_REPLY_ARRAY &&
	    rep->elements == 2 &&
	    rep->element[0]->type == REDIS_REPLY_STRING &&
	    cluster_node_valid(rep->element[0]->str, rep->element[0]->len) &&
	    strcmp(rep->element[0]->str, cluster_node_id()) != 0) {
		st = rep->element[1];
		if (st->type == REDIS_REPLY_STRING && st->len == 1 &&
		    st->str[0] >= '0' && st->str[0] <= '9')
			status = st->str[0] - '0';
		cluster_mirror_user(rep->element[0]->str, ev->name, ev->len,
		    status);
	}
	free(ev);
}

/* Asks who holds a name a client here was closed for, to mirror it. */
void
cluster_holder_mirrored(const char *name, size_t len)
{
	struct reap_evict	*ev;

	ev = xcalloc(1, sizeof(*ev) + len + 1);
	ev->len = len;
	memcpy(ev->name, name, len);
	if (cluster_redis_cmd(cluster_cmd(), reap_holder_reply, ev,
	    "EVAL %s 2 %s %s %b", reap_lua_holder, CLUSTER_PREFIX "names",
	    CLUSTER_PREFIX "status", name, len) == -1)
		free(ev);
}

/*
 * Who holds a name a stream moved to its node: if Redis names another
 * node (the stream lied: anything may write one), the mirrored user
 * goes back to it.  The move itself is not held back: in the usual
 * case (a name freed on one node and taken on another, the second
 * stream read first) it is true, and the new holder's texts follow.
 */
static void
reap_owner_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	redisReply		*rep = reply;
	struct reap_evict	*ev = arg;

	(void)ac;
	if (rep != NULL && rep->type == REDIS_REPLY_STRING &&
	    cluster_node_valid(rep->str, rep->len) &&
	    strcmp(rep->str, cluster_node_id()) != 0)
		cluster_mirror_owner(ev->name, ev->len, rep->str);
	free(ev);
}

/* Asks Redis who holds a name that moved between nodes. */
void
cluster_owner_checked(const char *name, size_t len)
{
	(void)reap_ask_holder(name, len, reap_owner_reply);
}

/*
 * Re-asserts this node's users after Redis lost them (it restarted
 * empty, or a replica that lagged took over): each node is the
 * authority on its own clients.  KEYS: tn:names:ID, the stream; ARGV:
 * node id, n, then n triples (name, since, status), then pairs (room,
 * member).  A name free in Redis is taken again; one another node
 * holds goes to the older claim (since, on Redis's clock), ties to the
 * lower node id, and the loser's node closes that client (the winner's
 * "gone" with "of" tells it).  The rooms that hold the winners are made
 * again, with their members here.  Returns the names this node lost.
 * n negative (a restarted hub): a name another node holds is lost,
 * whatever its claim's age (it was freed here, then taken there).
 */
static const char reassert_lua[] =
	CLUSTER_LUA_ROOMS
	"local node, n = ARGV[1], tonumber(ARGV[2])\n"
	"local yield = n < 0\n"
	"n = math.abs(n)\n"
	"local lost, out = {}, {}\n"
	"local function ev(...)\n"
	"  redis.call('XADD', KEYS[2], 'MAXLEN', '~', '" CLUSTER_STREAM_MAX
	    "', '*', ...)\n"
	"end\n"
	"for i = 0, n - 1 do\n"
	"  local u, since = ARGV[3 + 3 * i], tonumber(ARGV[4 + 3 * i])\n"
	"  local h = redis.call('HGET', 'tn:names', u)\n"
	"  local win = h == node or not h\n"
	"  if not win and not yield then\n"
	"    local other = tonumber(redis.call('HGET', 'tn:since', u))\n"
	"    other = other or math.huge\n"
	"    win = since < other or (since == other and node < h)\n"
	"    if win then\n"
	"      forget_user(u)\n"
	"      redis.call('SREM', 'tn:names:' .. h, u)\n"
	"      ev('e', 'gone', 'n', u, 'of', h)\n"
	"    end\n"
	"  end\n"
	"  if win then\n"
	"    if h ~= node then ev('e', 'user', 'n', u) end\n"
	"    redis.call('HSET', 'tn:names', u, node)\n"
	"    redis.call('SADD', KEYS[1], u)\n"
	"    redis.call('HSET', 'tn:since', u, since)\n"
	"    redis.call('HSET', 'tn:status', u, ARGV[5 + 3 * i])\n"
	"  else\n"
	"    lost[u] = true\n"
	"    out[#out + 1] = u\n"
	"  end\n"
	"end\n"
	"for i = 3 + 3 * n, #ARGV - 1, 2 do\n"
	"  local r, u = ARGV[i], ARGV[i + 1]\n"
	"  if not lost[u] then\n"
	"    if redis.call('SADD', 'tn:rooms', r) == 1 then\n"
	"      redis.call('HSET', 'tn:room:' .. r, 'creator', u)\n"
	"      redis.call('SADD', 'tn:rm:' .. r, u)\n"
	"      redis.call('SADD', 'tn:ur:' .. u, r)\n"
	"      ev('e', 'room', 'n', u, 'r', r)\n"
	"    elseif redis.call('SADD', 'tn:rm:' .. r, u) == 1 then\n"
	"      redis.call('SADD', 'tn:ur:' .. u, r)\n"
	"      ev('e', 'join', 'n', u, 'r', r)\n"
	"    end\n"
	"  end\n"
	"end\n"
	"return out\n";

/* The re-assertion's reply: the names lost close their clients here. */
static void
reassert_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	redisReply	*rep = reply;
	size_t		 i;

	(void)ac;
	(void)arg;
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
		if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
			log_warnx("cluster: re-assert: %s", rep->str);
		return;
	}
	for (i = 0; i < rep->elements; i++)
		if (rep->element[i]->type == REDIS_REPLY_STRING)
			cluster_mirror_evict(rep->element[i]->str,
			    rep->element[i]->len);
}

/*
 * Sends the re-assertion; args (nargs of them) are its ARGV from the
 * second on (cluster_mirror_reassert builds them from the table).
 */
void
cluster_reassert(const char **args, const size_t *lens, size_t nargs)
{
	const char	**argv;
	size_t		 *argvlen, i;

	argv = xcalloc(nargs + 6, sizeof(*argv));
	argvlen = xcalloc(nargs + 6, sizeof(*argvlen));
	argv[0] = "EVAL";
	argv[1] = reassert_lua;
	argv[2] = "2";
	argv[3] = cluster_names_key();
	argv[4] = cluster_stream_key();
	argv[5] = cluster_node_id();
	for (i = 0; i < 6; i++)
		argvlen[i] = strlen(argv[i]);
	for (i = 0; i < nargs; i++) {
		argv[6 + i] = args[i];
		argvlen[6 + i] = lens[i];
	}
	if (cluster_redis_argv(cluster_cmd(), reassert_reply, NULL,
	    (int)(nargs + 6), argv, argvlen) == -1)
		log_warnx("cluster: degraded: re-assertion not sent");
	free(argv);
	free(argvlen);
}
