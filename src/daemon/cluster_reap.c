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
#include <string.h>

#include "cluster.h"
#include "cluster_int.h"
#include "log.h"
#include "talknetd.h"

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
		log_warnx("cluster: node %s is gone (no heartbeat for %d ms): "
		    "reaped, %zu users", one->element[0]->str, CLUSTER_TTL_MS,
		    names->elements);
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
