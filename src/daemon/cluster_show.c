/*
 * cluster_show.c: what "talknetctl show cluster" shows.  The master
 * serves talknetctl but never talks to Redis; the hub does.  So after
 * each heartbeat the hub reads every node's id, heartbeat, names and
 * stream end in one script, adds how far it has read each stream, and
 * writes the result into the table's node array (shm.h, struct
 * shm_nodes) under that array's seqlock.  The master checks it there
 * before it shows it (control_cmd.c).
 */
#include "config.h"

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "cluster.h"
#include "cluster_int.h"
#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "proto.h"
#include "shm.h"
#include "talknetd.h"
#include "hub.h"

/*
 * The nodes, in the order of their ids, at most ARGV[1] of them, after
 * how many there are: each {id, ms since its heartbeat (-1: its key
 * lapsed), the names it holds, its stream's last id}.  Read only.
 * KEYS: tn:nodes.
 */
static const char show_lua[] =
	"local ids = redis.call('SMEMBERS', KEYS[1])\n"
	"table.sort(ids)\n"
	"local t = redis.call('TIME')\n"
	"local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
	"local out = {#ids}\n"
	"for i = 1, math.min(#ids, tonumber(ARGV[1])) do\n"
	"  local id = ids[i]\n"
	"  local beat = redis.call('HGET', '" CLUSTER_PREFIX "node:' .. id,"
	"    'beat')\n"
	"  local e = redis.call('XREVRANGE', '" CLUSTER_PREFIX "stream:' .. id,"
	"    '+', '-', 'COUNT', 1)\n"
	"  out[#out + 1] = {id, beat and (now - tonumber(beat)) or -1,\n"
	"    redis.call('SCARD', '" CLUSTER_PREFIX "names:' .. id),\n"
	"    (e[1] and e[1][1]) or '0-0'}\n"
	"end\n"
	"return out\n";

static int	show_sent;	/* a read is on its way */

/* The milliseconds part of a stream id "ms-seq"; 0 if not one. */
static int64_t
show_id_ms(const char *id)
{
	char			*end;
	unsigned long long	 v;

	v = strtoull(id, &end, 10);
	if (end == id || (*end != '-' && *end != '\0') || v > INT64_MAX)
		return 0;
	return (int64_t)v;
}

/*
 * How far this node's read of node's stream is behind the stream's last
 * entry, in the entries' own time (ms); -1 when this node does not read
 * it (itself, or a node it has not seen yet).
 */
static int64_t
show_lag(const char *node, const char *last)
{
	const char	*tail;
	int64_t		 d;

	if (strcmp(node, cluster_node_id()) == 0 ||
	    (tail = cluster_stream_tail(node)) == NULL)
		return -1;
	if (strcmp(tail, last) == 0 || strcmp(last, "0-0") == 0)
		return 0;
	d = show_id_ms(last) - show_id_ms(tail);
	return d > 0 ? d : 0;
}

/* Fills one row from one node's {id, beat, names, last id}; -1 if bad. */
static int
show_row(struct shm_node *row, const redisReply *e)
{
	const redisReply	*id, *beat, *names, *last;

	if (e->type != REDIS_REPLY_ARRAY || e->elements != 4)
		return -1;
	id = e->element[0];
	beat = e->element[1];
	names = e->element[2];
	last = e->element[3];
	if (id->type != REDIS_REPLY_STRING || id->len == 0 ||
	    id->len >= sizeof(row->id) || beat->type != REDIS_REPLY_INTEGER ||
	    names->type != REDIS_REPLY_INTEGER ||
	    last->type != REDIS_REPLY_STRING)
		return -1;
	memset(row, 0, sizeof(*row));
	memcpy(row->id, id->str, id->len);
	if (strcmp(row->id, cluster_node_id()) == 0)
		row->flags |= SHM_NODE_SELF;
	if (beat->integer >= 0)
		row->flags |= SHM_NODE_LIVE;
	row->beat_ms = beat->integer >= 0 ? beat->integer : -1;
	row->clients = names->integer < 0 ? 0 : names->integer > UINT32_MAX ?
	    UINT32_MAX : (uint32_t)names->integer;
	row->lag_ms = show_lag(row->id, last->str);
	return 0;
}

/* The script's reply: into the table. */
static void
show_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	static struct shm_nodes	 nodes;
	const redisReply	*rep = reply;
	size_t			 i;

	(void)ac;
	(void)arg;
	show_sent = 0;
	if (rep == NULL)
		return;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
	    rep->element[0]->type != REDIS_REPLY_INTEGER ||
	    rep->elements - 1 > SHM_NODES_MAX) {
		log_warnx("cluster: show: unexpected reply");
		return;
	}
	memset(&nodes, 0, sizeof(nodes));
	for (i = 1; i < rep->elements; i++)
		if (show_row(&nodes.node[nodes.n], rep->element[i]) == 0)
			nodes.n++;
	nodes.total = rep->element[0]->integer < nodes.n ? nodes.n :
	    rep->element[0]->integer > UINT32_MAX ? UINT32_MAX :
	    (uint32_t)rep->element[0]->integer;
	nodes.at = (int64_t)time(NULL);
	shm_nodes_set(&hub.tab, &nodes);
}

/* Reads the nodes for "show cluster", if no read is on its way. */
void
cluster_show(void)
{
	char	max[16];

	if (show_sent)
		return;
	(void)snprintf(max, sizeof(max), "%d", SHM_NODES_MAX);
	if (cluster_redis_cmd(cluster_cmd(), show_reply, NULL,
	    "EVAL %s 1 %s %s", show_lua, CLUSTER_PREFIX "nodes", max) == 0)
		show_sent = 1;
}
