/*
 * master_cluster.c: the master's view of the cluster (--cluster).  Only
 * the hub talks to Redis; it publishes the cluster's state in the
 * table's header, and the master reads it there: while the hub says
 * "degraded" (Redis unreachable, or the node's id held by another run)
 * new connections are closed at accept, so a load balancer sends them
 * to another node, and sd_notify STATUS and "talknetctl show stats"
 * say so.  The hub is trusted less than the master: what it wrote is
 * checked before it is believed.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include <stdint.h>
#include <time.h>

#include "log.h"
#include "master.h"
#include "shm.h"
#include "talknetd.h"

/*
 * The state the hub published, as the master takes it: none without
 * --cluster whatever the header says; with it, anything but "ok" (a
 * hub that has not said yet, or a value out of range) is degraded, so
 * a confused hub fails closed.
 */
static uint32_t
master_cluster_read(void)
{
	const struct shm_hdr	*h = master.rt.shm_ro;
	uint32_t		 st;

	if (master.cfg->cluster[0] == '\0' || h == NULL)
		return SHM_CLUSTER_NONE;
	st = __atomic_load_n(&h->cluster_state, __ATOMIC_ACQUIRE);
	return st == SHM_CLUSTER_OK ? SHM_CLUSTER_OK : SHM_CLUSTER_DEGRADED;
}

/*
 * Notes the hub's state once a loop: a change is logged once (not
 * once per connection refused) and goes to systemd's STATUS.
 */
void
master_cluster_poll(void)
{
	uint32_t	st = master_cluster_read();

	if (st == master.cluster_state)
		return;
	if (st == SHM_CLUSTER_DEGRADED && master.cluster_state ==
	    SHM_CLUSTER_NONE)
		log_info("connections refused until the hub reaches Redis");
	else if (st == SHM_CLUSTER_DEGRADED)
		log_warnx("connections refused: cluster degraded (the hub "
		    "cannot reach Redis)");
	else if (st == SHM_CLUSTER_OK)
		log_info("connections accepted%s: cluster ok",
		    master.cluster_was_ok ? " again" : "");
	if (st == SHM_CLUSTER_OK)
		master.cluster_was_ok = 1;
	master.cluster_state = st;
	live->status_dirty = 1;
}

/* Whether a new connection is to be closed at once: degraded. */
int
master_cluster_refusing(void)
{
	return master.cluster_state == SHM_CLUSTER_DEGRADED;
}

/* The state as a word: "none", "ok" or "degraded". */
const char *
master_cluster_name(void)
{
	switch (master.cluster_state) {
	case SHM_CLUSTER_OK:
		return "ok";
	case SHM_CLUSTER_DEGRADED:
		return "degraded";
	default:
		return "none";
	}
}
