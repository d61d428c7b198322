/*
 * master.h: the master's state, shared by its files.  master.c is the
 * process (start, signals, reload, shutdown, the loop); master_setup.c
 * makes what it holds (listeners, the hub's socket, the table, the
 * pidfile, daemon mode); master_hub.c starts the hub and writes to its
 * pipe; master_child.c counts the workers: per address, released,
 * reaped; master_spare.c keeps workers forked ahead of their clients.  Internal to the master: nothing outside its files includes it.
 */
#ifndef TALKNET_MASTER_H
#define TALKNET_MASTER_H

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "nodepool.h"
#include "session.h"
#include "talknetd.h"

struct config;
struct pidfh;

/* How many live workers serve clients from one address. */
struct ip_count {
	int			family;
	unsigned char		addr[16];
	size_t			n;
	RB_ENTRY(ip_count)	entry;
};
RB_HEAD(ip_tree, ip_count);

/*
 * A live worker process.  Once it says its client is closed it is
 * "released": no longer counted against --max-clients and
 * --max-clients-per-ip, though it runs for a moment more.
 */
struct child {
	pid_t			pid;
	time_t			since;		/* accepted, wall clock */
	struct ip_count		*ip;		/* NULL once released */
	int			released;
	int			reported;	/* its session report came */
	int			killed;		/* lingered too long */
	int64_t			released_at;	/* ms, monotonic */
	char			addr[64];	/* the client's, for logs and
						   talknetctl */
	int			spare;		/* forked ahead, no client */
	int			spare_idle;	/* in live->spares */
	int			retired;	/* a spare told to exit */
	int			tls;		/* a spare's kind */
	int			handoff_fd;	/* a spare's, while idle */
	RB_ENTRY(child)		entry;
	TAILQ_ENTRY(child)	release_entry;	/* released, not killed */
	TAILQ_ENTRY(child)	spare_entry;	/* idle, oldest first */
};
TAILQ_HEAD(child_list, child);
RB_HEAD(child_tree, child);

/* The child tree's functions: generated in master_child.c. */
RB_PROTOTYPE(child_tree, child, entry, child_cmp)

/* The master's own state: defined in master.c. */
struct master_state {
	struct config		*cfg;
	reload_fn		 reload;
	struct pidfh		*pidfh;		/* -p */
	uid_t			 uid;		/* -u: what children run as */
	gid_t			 gid;
	int			 drop;		/* children drop to uid/gid */
	int			 ready_fd;	/* daemon mode: tell the parent */
	struct runtime		 rt;
	pid_t			 pid;		/* the master's own */
	pid_t			 hub_pid;
	time_t			 hub_started;
	int			 hub_ctl;	/* the hub's control pipe */
	int			 sigpipe[2];	/* self-pipe: handler to loop */
	int			 spare_fd;	/* given up to refuse at EMFILE */
	int			 release_fd;	/* release datagrams */
	int			 stopping;
	int			 systemd;	/* listening sockets passed */
	uint64_t		 hub_starts;	/* restarts: one less */
	time_t			 started;
	uint32_t		 cluster_state;	/* enum shm_cluster, as seen */
	int			 cluster_was_ok;
};

/*
 * What changes with every client.  It lives in a mapping that no child
 * inherits (see nodepool.c), so the master's writes here leave no stale
 * copy of a page behind in each worker.
 */
struct master_live {
	struct child_tree	 children;
	struct ip_tree		 ips;
	struct nodepool		 child_pool;
	struct nodepool		 ip_pool;
	size_t			 nchildren;	/* counted: not released */
	size_t			 nreleased;	/* released, not yet reaped */
	struct child_list	 released;	/* in release order */
	int			 status_dirty;	/* client count to report */
	time_t			 status_sent;
	struct session_totals	 totals;	/* every session that ended */
	uint64_t		 cluster_refused;	/* closed: degraded */
	/* The spare pool (master_spare.c); index 1 is tls:// clients'. */
	struct child_list	 spares[2];	/* idle, oldest first */
	size_t			 nspare[2];
	size_t			 spare_want[2];	/* grown by a burst */
	int			 spare_turn;	/* kind forked next */
	int64_t			 spare_missed_at; /* ms: none was idle */
	int64_t			 spare_retry_at;	/* ms: a fork failed */
	uint64_t		 spare_forks;
	uint64_t		 spare_handoffs;
	uint64_t		 spare_misses;	/* accepted, none idle */
	uint64_t		 spare_lost;	/* died idle */
};

extern struct master_state	 master;
extern struct master_live	*live;

/* master.c */
/* What every child does first: drop what is the master's alone. */
void	 master_child_setup(void);
/* Holds every signal (start-up, fork) until master_signals_release. */
void	 master_signals_hold(void);
/* Empties the signal mask: the held signals are delivered now. */
void	 master_signals_release(void);
/*
 * Re-reads the configuration (SIGHUP, talknetctl reload).  Returns 0 or
 * -1 (the file has an error), with what happened in msg.
 */
int	 master_reload(char *msg, size_t len);

/* master_hub.c */
/* Forks the hub, with a new control pipe to it. */
void	 master_start_hub(void);
/* Sends the hub one control frame; 0, or -1 if it did not take it. */
int	 master_hub_send(uint16_t type, const void *payload, size_t len);
/* Sends the hub the limits a reload changed. */
void	 master_send_limits(void);
/* Sets the log level in every process (talknetctl log level). */
void	 master_log_level(int level);

/* master_setup.c */
/* Takes the sockets systemd passed: 1 if there were some, else 0. */
int	 master_listen_systemd(struct config *);
/* Binds every configured address; 0, or -1 after logging. */
int	 master_listen(struct config *);
/* Creates the private run directory and binds the hub's socket in it. */
void	 master_hub_socket(void);
/* Creates the shared table: the writable fd for the hub alone. */
void	 master_shm_create(void);
/* Looks up -u USER. */
void	 master_user(void);
/* Raises the open files limit to what max-clients needs. */
void	 master_fd_limit(void);
/* Opens the pidfile; a second instance with the same one stops here. */
void	 master_pidfile(void);
/* Daemon mode: forks; the parent waits until the daemon is ready. */
void	 master_daemonize(void);
/* Daemon mode, once serving: syslog, no terminal, tell the parent. */
void	 master_detach(void);

/* master_sig.c */
/* Ignores stray signals; fatal ones clean up, then end the master. */
void	 master_signals_extra(void);
/* Gives a child back the default actions the master changed. */
void	 master_signals_child(void);
/* Removes run directories and tables of masters that are gone. */
void	 master_remove_stale(const char *);

/* master_tls.c */
/* Whether the listening socket fd is a tls:// one. */
int	 master_tls_listener(int fd);
/* Reload: the certificate and key again; says how it went after msg. */
int	 master_tls_reload(char *msg, size_t len);

/* master_cluster.c */
/* Notes the cluster state the hub published: logs a change, once. */
void	 master_cluster_poll(void);
/* Whether new connections are closed at accept (degraded). */
int	 master_cluster_refusing(void);
/* "none", "ok" or "degraded". */
const char *master_cluster_name(void);

/* master_child.c */
/* Sets up the per-client records, in memory no child inherits. */
void	 master_live_init(void);
/* Creates the socket on which workers say their client is closed. */
void	 master_release_open(void);
/* Reads the workers' "client closed" datagrams and their reports. */
int	 master_release_read(void);
/* Kills released workers that lingered; ms to the next, or -1. */
int	 master_linger(void);
/* Accepts connections on one listener; -1 to pause accepting. */
int	 master_accept(int);
/* Reaps every child that exited; notes the hub's exit. */
void	 master_reap(void);
/* Forks a worker or spare, signals held across the fork; as fork(2). */
pid_t	 master_fork_child(void);
/* In a new worker or spare: drops what it must not keep of the master's. */
void	 master_worker_child(int tls);

/* master_spare.c */
/* Hands a connection to an idle spare: 0, or -1 when none is idle. */
int	 master_spare_give(int fd, const char *addr, struct ip_count *ip,
	    int tls);
/* Forks a missing spare, retires extra ones; a poll timeout, or -1. */
int	 master_spare_fill(void);
/* Retires every idle spare (a reload). */
void	 master_spare_retire_all(void);
/* Copies the idle spares' hand-off fds, for the hub to close. */
size_t	 master_spare_fds(int *fds, size_t max);
/* A spare exited before it had a client. */
void	 master_spare_reaped(struct child *c, int status);

#endif
