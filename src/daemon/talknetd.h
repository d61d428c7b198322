/*
 * talknetd.h: the daemon's configuration and the entry point of each
 * process role (master, hub, worker).
 */
#ifndef TALKNETD_H
#define TALKNETD_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#define TALKNETD_DEFAULT_PORT		"8001"
#define TALKNETD_TLS_PORT		"8443"	/* the convention, documented */
#define TALKNETD_MAX_LISTEN		16

/* Defaults of the limits; each has an option. */
#define DEFAULT_MAX_CLIENTS		1000
#define DEFAULT_MAX_ROOMS		1000
#define DEFAULT_MAX_ROOMS_PER_USER	10	/* ngircd's MaxJoins */
#define DEFAULT_MAX_QUEUE		(1024 * 1024)
#define DEFAULT_MAX_CLIENTS_PER_IP	16
#define DEFAULT_LOGIN_TIMEOUT		60	/* seconds */
#define DEFAULT_RATE_LIMIT		20	/* messages per second */
#define DEFAULT_RATE_BURST		50
#define DEFAULT_STALL_TIMEOUT		10	/* seconds without progress */
#define DEFAULT_MAX_GATHER		5	/* ms, see hub_pass_end */
#define DEFAULT_PACE_MIN_RATE		(64 * 1024)	/* bytes/s to pace */
#define DEFAULT_PACE_WINDOW_MS		1000	/* that rate is measured over */
#define DEFAULT_SEND_BUFFER		(64 * 1024)	/* SO_SNDBUF */
#define DEFAULT_MIN_SPARE		4	/* workers forked ahead */
#define DEFAULT_MAX_SPARE		32
#define DEFAULT_SPARE_DECAY_MS		5000	/* no miss this long: fewer */
#define DEFAULT_CONTROL_IDLE_MS		10000	/* talknetctl's, no progress */
#define DEFAULT_CLUSTER_TTL_MS		3000	/* a node's heartbeat lives */

/* Ceilings that keep the shared table's size sane. */
#define CEIL_MAX_CLIENTS		100000
#define CEIL_MAX_ROOMS			100000
#define CEIL_MAX_USERS			1000000	/* the cluster's, mirrored */
#define CEIL_MAX_NAME			256
#define CEIL_MAX_LINE			(16 * 1024 * 1024)
#define CEIL_MAX_GATHER		1000	/* ms */
#define CEIL_MAX_QUEUE			(1024 * 1024 * 1024)
#define CEIL_MAX_SPARE			1024	/* one master fd each */

/* Exit status when the cluster refuses this node (sysexits.h EX_TEMPFAIL). */
#define TALKNETD_EXIT_CLUSTER		75

struct listen_addr {
	char			 text[128];	/* as given, for logs */
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	int			 optional;	/* "*": may lack IPv6 */
	int			 tls;		/* tls://: workers speak TLS */
	int			 fd;
};

/*
 * Everything the daemon can be told, by the command line or by the
 * configuration file (conf.c); the keys are the long option names.
 */
struct config {
	int			 foreground;
	int			 log_level;
	char			 user[64];	/* empty: stay as started */
	char			 pidfile[256];	/* empty: none */
	char			 control[108];	/* empty: the default */
	/* TLS (tls_server.h): read again by every reload. */
	char			 tls_cert[256];	/* PEM chain; "": none */
	char			 tls_key[256];	/* PEM key; "": none */
	char			 tls_ca[256];	/* "": no client certs */
	char			 tls_protocols[64];
	char			 tls_ciphers[256];
	/* The cluster (cluster.h): read at start only. */
	char			 cluster[256];	/* redis:// or unix:; "": none */
	char			 node_id[128];	/* "": hostname:port */
	char			 cluster_password[256];
	char			 cluster_password_file[256];
	char			 cluster_token[40];	/* this start's, not a key */
	struct listen_addr	 listen[TALKNETD_MAX_LISTEN];
	size_t			 nlisten;
	size_t			 max_clients;
	size_t			 max_users;	/* table rows, local and
						   remote; 0: max_clients */
	int			 max_users_auto; /* not given: max-clients */
	size_t			 max_rooms;
	size_t			 max_rooms_per_user;	/* 0: no cap */
	size_t			 max_name;
	size_t			 max_room;
	size_t			 max_line;
	size_t			 max_queue;
	size_t			 max_clients_per_ip;	/* 0: no cap */
	size_t			 login_timeout;		/* seconds, 0: none */
	size_t			 rate_limit;		/* msgs/s, 0: none */
	size_t			 rate_burst;
	size_t			 stall_timeout;		/* seconds, 0: none */
	size_t			 send_buffer;		/* bytes; 0: kernel's */
	size_t			 max_gather;		/* ms; 0: never */
	size_t			 pace_min_rate;	/* bytes/s a pacing reader takes */
	size_t			 pace_window_ms;	/* measured over this */
	size_t			 min_spare;	/* idle workers kept; 0: none */
	size_t			 max_spare;	/* at most, under a burst */
	size_t			 spare_decay_ms;	/* halves the burst's */
	size_t			 control_idle_ms;	/* talknetctl's */
	size_t			 cluster_ttl_ms;	/* same on every node */
	size_t			 reloads;	/* SIGHUPs applied: not a key */
};

/* What the master hands each child: paths and fds it will need. */
struct runtime {
	char	 rundir[256];		/* private 0700 directory */
	char	 hubpath[300];		/* the hub's Unix socket */
	char	 shmname[64];		/* "/talknetd.<master pid>" */
	int	 hub_listen_fd;		/* bound by the master, owned by the hub */
	int	 shm_fd;		/* O_RDWR: only the hub maps it writable */
	int	 hub_ctl_fd;		/* the hub's end of its control pipe */
	size_t	 max_line_seen;		/* longest max-line since the start */
	int	 release_fd;		/* workers' end: "client closed" */
	const void *shm_ro;		/* the master's read-only mapping */
	size_t	 shm_size;
};

/* Re-reads the configuration (SIGHUP); 0, or -1 with the reason. */
typedef int (*reload_fn)(struct config *, char *, size_t);

/* master.c */
void	 master_main(struct config *, reload_fn) __attribute__((noreturn));

/* master_tls.c: whether cfg serves TLS; loads its pair (0, or -1). */
int	 master_tls_any(const struct config *);
int	 master_tls_load(const struct config *, char *err, size_t errlen);

/* master_sig.c: a signal's handler, SIG_IGN or SIG_DFL; -1 on failure. */
int	 master_sig_set(int, void (*)(int), int);

/* hub.c */
void	 hub_main(const struct config *, const struct runtime *)
	    __attribute__((noreturn));

/*
 * What the master sends a spare worker with its client's socket
 * (SCM_RIGHTS, one SOCK_SEQPACKET message): fixed and versioned, and
 * checked whole by the spare before it serves anyone.
 */
#define SPARE_HANDOFF_VERSION	1
struct spare_handoff {
	uint32_t	version;
	uint32_t	tls;		/* 1: a tls:// client */
	char		addr[64];	/* the client, NUL-terminated */
};

/* worker.c */
void	 worker_main(const struct config *, const struct runtime *, int fd,
	    const char *addr, int tls) __attribute__((noreturn));

/* worker_spare.c */
void	 worker_spare_main(const struct config *, const struct runtime *,
	    int handoff, int tls) __attribute__((noreturn));

#endif
