/*
 * bench.h: talknet-bench's shared types, one header for every piece.
 *
 * main.c parses the options and calls down into the pieces:
 *   conn.c      the connections: connect, register, read, write, lose;
 *               sock_connect(), sock_event(), rd_read() serve presence too
 *   loop.c      the event loop and the phases of a classic run
 *   load.c      fanout, private, connect, hold: clients, stamps, sends
 *   talknet.c   the TalkNet side of those workloads (lib/ codec)
 *   irc.c       the IRC side of those workloads
 *   hist.c      the latency histogram
 *   procstat.c  /proc: the server tree's CPU and memory, MemAvailable
 *   report.c    the text and JSON reports, join and broadcast's too
 *   svg.c       the latency CDF chart
 *   workload.c  the workloads' names, the options each takes, defaults
 *   machine.c   the machine workload
 *   presence.c  the join and broadcast workloads
 *   tlsio.c     --tls: the sockets' reads, writes and handshakes
 * conn.c also resolves the targets (--host and --port, or --nodes), and
 * talknet.c waits, over several nodes, until each knows every client.
 * No piece includes another's internals; each includes this header.
 */
#ifndef TALKNET_BENCH_H
#define TALKNET_BENCH_H

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "proto.h"

#define NS			1000000000LL
#define READ_WANT		8192	/* bytes asked of one read */
#define P_READ			65536	/* join, broadcast: one read */
#define MS			1000000LL
#define MAX_COMPARE		16
#define NAME_ATTEMPTS		26	/* letters tried when a name is taken */
#define CDF_STEP		0.02	/* in "nines" (-log10(1 - p)) */
#define CDF_MAX_NINES		6.0
#define MAX_NODES		32	/* --nodes: addresses at most */
#define TARGET_TEXT		(MAX_NODES * (INET6_ADDRSTRLEN + 10))

enum workload {
	WL_NONE = 0,
	WL_FANOUT,
	WL_PRIVATE,
	WL_CONNECT,
	WL_HOLD,
	WL_MACHINE,
	WL_JOIN,
	WL_BROADCAST,
	WL_SETTLE,
	WL_LAST = WL_SETTLE
};

enum proto_kind {
	PK_TALKNET,
	PK_IRC
};

/* The load options, whose meaning and defaults workload.c keeps. */
enum load_option {
	LO_CLIENTS,
	LO_CONNECTIONS,
	LO_SENDERS,
	LO_RATE,
	LO_BYTES,
	LO_DURATION,
	LO_WARMUP,
	LO_DRAIN,
	LO_STEP_TIMEOUT,
	LO_REPEAT,
	LO_ROOM,
	LO_SETTLE,
	LO_SETUP_TIMEOUT,
	LO_CONCURRENCY,
	LO_COUNT
};

struct options {
	enum workload	 wl;
	enum proto_kind	 proto;
	const char	*host;
	int		 host_given;	/* -H */
	const char	*port;
	const char	*nodes;		/* --nodes: HOST:PORT,... or NULL */
	int		 allow_remote;
	int		 tls;		/* --tls */
	const char	*ca;		/* --ca: verify against it */
	int		 insecure;	/* --insecure: verify nothing */
	unsigned int	 nclients;	/* clients connected at once */
	unsigned int	 connections;	/* connect: connections in all */
	unsigned int	 nsenders;
	unsigned int	 rate;		/* msgs/s in all; 0: closed loop */
	unsigned int	 bytes;
	unsigned int	 duration;	/* the measured phase, seconds */
	unsigned int	 warmup;
	unsigned int	 setup_timeout;
	unsigned int	 drain;		/* the wait for what is in flight */
	unsigned int	 step_timeout;	/* join, broadcast: one step at most */
	unsigned int	 concurrency;	/* connects in flight at once */
	unsigned int	 repeat;	/* join, broadcast: steps */
	int		 room;
	pid_t		 server_pid;
	int		 json;
	int		 quiet;
	const char	*svg;
	const char	*label;
	const char	*title;
	const char	*compare[MAX_COMPARE];
	size_t		 ncompare;
	unsigned int	 settle;	/* seconds to wait for memory to hold */
	unsigned int	 given;		/* 1 << enum load_option, given */
};

/*
 * Where the clients connect: one address (--host, --port), or several
 * nodes of one cluster (--nodes), client i to node i % n; text is
 * "host:port[,host:port...]" for the reports.
 */
struct targets {
	struct sockaddr_storage sa[MAX_NODES];
	socklen_t	 salen[MAX_NODES];
	unsigned int	 n;
	char		 text[TARGET_TEXT];
};

/* How a run went: failed or not, why, and its first problem. */
struct run_status {
	int		 failed;	/* set-up failed, ran late, stopped */
	char		 error[256];	/* why it failed */
	char		 note[256];	/* the first problem, failing or not */
};

/* A server process tree at one moment. */
struct srvstat {
	int		 ok;
	unsigned int	 nproc;
	uint64_t	 pss_kib;
	uint64_t	 rss_kib;
	double		 cpu_s;
	int		 fine_ok;	/* cpu_fine_s could be read */
	double		 cpu_fine_s;	/* schedstat; reaped: ticks */
};


enum cstate {
	C_NEW = 0,	/* not started yet */
	C_WAIT,		/* waiting to retry its connect */
	C_CONNECTING,	/* non-blocking connect in progress */
	C_HANDSHAKE,	/* --tls: the TLS handshake in progress */
	C_REGISTER,	/* IDENTIFY or NICK/USER sent */
	C_IDENT,	/* identified, waiting for the room */
	C_JOINING,	/* JOIN_ROOM or JOIN sent */
	C_READY,	/* in the workload */
	C_QUITTING,	/* DISCONNECT or QUIT sent, waiting for the close */
	C_CLOSED	/* done or failed, fd closed */
};

enum phase {
	PH_SETUP,	/* connect, identify, join */
	PH_WARMUP,	/* sending, not counted */
	PH_MEASURE,	/* sending, counted */
	PH_DRAIN,	/* waiting for the last copies */
	PH_HOLD,	/* idle clients, before the memory sample */
	PH_TEARDOWN,	/* disconnecting */
	PH_DONE
};

/* A log-linear histogram of nanoseconds: 128 buckets per octave. */
#define H_SUB_BITS	7
#define H_SUB		(1u << H_SUB_BITS)
#define H_LINEAR	(2u * H_SUB)		/* values below are exact */
#define H_OCTAVES	44
#define H_BUCKETS	(H_LINEAR + H_OCTAVES * H_SUB)

struct hist {
	uint64_t	 cnt[H_BUCKETS];
	uint64_t	 n;
	uint64_t	 min;
	uint64_t	 max;
	long double	 sum;
};

struct conn {
	int		 fd;
	unsigned int	 idx;
	enum cstate	 st;
	uint32_t	 ev;		/* events registered with epoll */
	unsigned int	 retries;
	unsigned int	 attempt;	/* name letter offset */
	char		 name[16];
	struct buf	 in;
	struct buf	 out;
	int		 sender;	/* sends on a schedule */
	int		 pinger;	/* private: measures round trips */
	unsigned int	 peer;		/* private: the other side */
	int64_t		 next_ns;	/* next scheduled send, or retry */
	uint64_t	 seq;		/* last sequence number sent */
	int64_t		 t_start;	/* connect started */
	TAILQ_ENTRY(conn) retry_entry;
};
TAILQ_HEAD(conn_queue, conn);

/* The system's memory counters at one moment, from /proc/meminfo, KiB. */
struct meminfo {
	int		 ok;
	long long	 avail;		/* MemAvailable */
	long long	 anon;		/* AnonPages */
	long long	 page_tables;	/* PageTables */
	long long	 kernel_stack;	/* KernelStack */
	long long	 slab;		/* Slab */
	long long	 shmem;		/* Shmem */
};

struct bench {
	struct options	*o;
	const struct wire *wire;	/* TalkNet or IRC */
	int		 ep;
	struct targets	 tg;
	struct conn	*c;
	unsigned int	 n;
	unsigned int	 next_new;	/* next C_NEW connection to start */
	unsigned int	 inflight;
	unsigned int	 nident;
	unsigned int	 nready;
	unsigned int	 nopen;
	unsigned int	 unsynced;	/* --nodes: nodes not knowing all yet */
	int64_t		 probe_at[MAX_NODES];	/* next USERS; 0: asked */
	struct conn_queue retryq;
	enum phase	 ph;
	char		 tag;		/* first letter of this run's names */
	char		 room[32];
	int64_t		 t0;
	int64_t		 t_ident;	/* all identified */
	int64_t		 t_ready;	/* all ready (joined) */
	int64_t		 t_measure;
	int64_t		 t_end;		/* end of the measured window */
	int64_t		 t_finish;	/* end of drain or hold */
	int64_t		 t_phase_end;	/* deadline of the current phase */
	int64_t		 deadline;	/* the whole run */
	int64_t		 t_progress;
	int64_t		 interval_ns;	/* between one sender's sends */
	/* counters */
	uint64_t	 sent;
	uint64_t	 sent_all;
	uint64_t	 expected;
	uint64_t	 delivered;
	uint64_t	 delivered_all;
	uint64_t	 misordered;
	uint64_t	 foreign;	/* text lines without our stamp */
	uint64_t	 server_errors;
	uint64_t	 disconnects;
	uint64_t	 connects_ok;
	uint64_t	 connects_failed;
	uint64_t	 connect_retries;
	int64_t		 max_lag_ns;
	struct run_status rs;		/* failed or not, and why */
	int		 busy;		/* buffers stay allocated: fanout, private */
	uint32_t	*lastseq;	/* n x slots, or NULL */
	unsigned int	 seq_slots;
	struct hist	 h;
	struct proto_parser pp;
	struct buf	 line;		/* scratch for IRC lines */
	char		 scratch[READ_WANT];	/* reads of idle clients */
	char		*text;		/* scratch for a message text */
	/* server and machine samples */
	struct srvstat	 srv_start, srv_m0, srv_end;
	struct meminfo	 mem_start, mem_end;
	double		 settle_s;	/* waited for memory to settle */
	int		 settled;	/* it held still before the baseline */
	long long	 selfrss_start, selfrss_end;	/* KiB */
	struct rusage	 ru_start;
	double		 bench_cpu_s;
};

/* The states of a join or broadcast client. */
enum pstate {
	P_IDLE = 0,	/* not started */
	P_WAIT,		/* waiting to retry its connect */
	P_CONNECTING,	/* non-blocking connect in progress */
	P_HANDSHAKE,	/* --tls: the TLS handshake in progress */
	P_REGISTER,	/* IDENTIFY or NICK/USER sent */
	P_JOINING,	/* IRC: JOIN sent */
	P_READY,	/* held and reading */
	P_QUITTING,	/* DISCONNECT or QUIT sent, waiting for the close */
	P_DONE,		/* the server closed it after the quit */
	P_FAILED
};

/* One client of a join or broadcast run. */
struct pconn {
	int		 fd;
	unsigned int	 idx;
	enum pstate	 st;
	unsigned int	 retries;
	unsigned int	 attempt;	/* name letter */
	char		 name[24];
	struct buf	 in;
	uint64_t	 got;		/* last broadcast round received */
	int64_t		 t_retry;
	int64_t		 t_resp;	/* RESPONSE SUCCESS or 001 */
	int64_t		 t_close;	/* closed after the quit */
};

/* A join or broadcast run (presence.c). */
struct presence {
	const struct options *o;
	struct targets	 tg;
	int		 ep;
	int		 irc;
	int		 setup;		/* connecting the held */
	char		 tag;		/* this run's first letter */
	struct pconn	*c;		/* n held, then the joiner */
	unsigned int	 n;
	unsigned int	 next;		/* next held to start */
	unsigned int	 inflight;
	unsigned int	 nwait;
	unsigned int	 nready;
	uint64_t	 retries;
	uint64_t	 round;		/* broadcast timed, from 1 */
	char		 expect[48];	/* its text */
	uint64_t	 copies;	/* its copies so far */
	uint64_t	 copies_all;
	uint64_t	 duplicates;
	int64_t		 t_last;	/* its last copy */
	uint64_t	 lost;		/* held, lost after set-up */
	uint64_t	 server_errors;
	double		 setup_s;
	double		 cpu_s;		/* server CPU over the steps */
	int		 cpu_fine;	/* from schedstat, not ticks */
	unsigned int	 nproc;
	int64_t		*whole_ns;	/* connect..close; last copy */
	int64_t		*resp_ns;	/* join: connect..RESPONSE */
	unsigned int	 nsteps;
	struct run_status rs;
	struct proto_parser pp;
	char		 scratch[P_READ];
};

/*
 * What differs between TalkNet and IRC in the classic workloads; the
 * connection layer and the workloads call through it.
 */
struct wire {
	/* Sends IDENTIFY, or NICK and USER. */
	void	(*hello)(struct bench *, struct conn *);
	/* Sends DISCONNECT or QUIT. */
	void	(*bye)(struct bench *, struct conn *);
	/* After identifying: heads for the room if the run needs one (1). */
	int	(*enter)(struct bench *, struct conn *);
	/*
	 * Over several nodes, before anyone enters: asks each node until it
	 * knows every client (b->unsynced falls to 0), then enters them
	 * all; NULL where the wire has no way to ask (IRC).
	 */
	void	(*sync)(struct bench *, int64_t);
	/* Sends a text to one client, or (to NULL) to the room or all. */
	void	(*text)(struct bench *, struct conn *, const struct conn *,
		    const char *, size_t);
	/* Handles one line from the server, without its terminator. */
	void	(*line)(struct bench *, struct conn *, const char *, size_t,
		    int64_t);
};

/* What rd_read() saw. */
enum rd_status {
	RD_OPEN,	/* all read that was there; still open */
	RD_GONE,	/* a line's handler dropped the connection */
	RD_EOF,		/* the server closed it */
	RD_ERROR,	/* read failed: errno */
	RD_LONG		/* a line longer than any server sends */
};

/* What an epoll event on a socket asks for (sock_event()). */
enum sock_event {
	SE_NONE,
	SE_CONNECTED,
	SE_FAILED,
	SE_READ
};

/* One connection's reading side, for rd_read(). */
struct reader {
	int		 fd;
	struct buf	*in;		/* its partial line */
	char		*scratch;	/* shared: where reads land otherwise */
	size_t		 scratch_len;
	int		 keep;		/* keep in's memory between reads */
	/* Handles one line of conn; -1 once conn is gone. */
	int		(*line)(void *, void *, const char *, size_t, int64_t);
	void		*run;
	void		*conn;
};

/* main.c: nothing; it calls down. */

/* conn.c */
int	 node_next(const char **, char *, size_t, char *, size_t);
void	 targets_resolve(const struct options *, struct targets *);
void	 rs_note(struct run_status *, const char *, ...)
	    __attribute__((__format__(__printf__, 2, 3)));
void	 rs_fail(struct run_status *, const char *, ...)
	    __attribute__((__format__(__printf__, 2, 3)));
void	 conn_set_state(struct bench *, struct conn *, enum cstate);
const char *conn_label(const struct conn *);
void	 conn_close(struct bench *, struct conn *);
int	 conn_flush(struct bench *, struct conn *);
void	 conn_name(struct bench *, struct conn *);
void	 conn_register(struct bench *, struct conn *);
void	 conn_quit(struct bench *, struct conn *);
void	 conn_start(struct bench *, struct conn *, int64_t);
void	 conn_ready(struct bench *, struct conn *, int64_t);
void	 conn_identified(struct bench *, struct conn *, int64_t);
void	 conn_enter(struct bench *, struct conn *, int64_t);
int	 conn_synced(const struct bench *);
void	 conn_lost(struct bench *, struct conn *, const char *);
void	 conn_event(struct bench *, struct conn *, uint32_t);
void	 sock_watch(int, int, unsigned int, uint32_t);
enum sock_event sock_event(int, int, unsigned int, int, uint32_t, int *);
int	 sock_connect(int, const struct sockaddr_storage *, socklen_t,
	    unsigned int, int *);
int	 rd_read(const struct reader *);
const char *rd_why(int);
const char *line_next(const char **, const char *, size_t *);

/* loop.c */
void	 bench_signals_setup(void);
int	 bench_interrupted(void);
void	 bench_sample(struct bench *, struct srvstat *, int);
int	 bench_classic(struct options *);

/* load.c */
void	 bench_init_clients(struct bench *);
void	 bench_on_text(struct bench *, struct conn *, const char *, size_t,
	    int64_t);
void	 bench_begin(struct bench *, int64_t);
void	 bench_send_due(struct bench *, int64_t);

/* talknet.c */
extern const struct wire wire_talknet;
int	 talknet_reply(struct proto_parser *, const char *, size_t,
	    struct msg *, struct run_status *, unsigned int);

/* irc.c */
extern const struct wire wire_irc;
const char *irc_word(const char **, const char *, size_t *);

/* How a wait for the machine to settle ended. */
struct settle {
	double		 secs;		/* waited */
	int		 settled;	/* 0: the bound ended it */
	long long	 mem_range_kib;	/* MemAvailable's spread, last window */
	double		 cpu_pct;	/* CPUs busy over it; -1 not read */
};

/* hist.c */
void	 hist_add(struct hist *, uint64_t);
uint64_t hist_quantile(const struct hist *, double);
double	 ns_ms(uint64_t);

/* procstat.c */
void	 srv_sample(pid_t, int, struct srvstat *);
void	 meminfo_read(struct meminfo *);
long long self_rss_kib(void);
double	 procstat_settle(unsigned int, int *);
void	 settle_wait(unsigned int, int, struct settle *);
int	 bench_settle(const struct options *);

/* workload.c */
const char *workload_name(enum workload);
enum workload workload_lookup(const char *);
unsigned int opt_num(const char *, const char *, long long, long long);
void	 load_option(struct options *, enum load_option, const char *);
void	 workload_options(struct options *);

/* report.c */
void	 json_str(FILE *, const char *);
void	 bench_label(const struct bench *, char *, size_t);
void	 report_human(const struct bench *, FILE *);
void	 report_json(const struct bench *, FILE *);
void	 report_presence_json(const struct presence *, FILE *);
void	 report_presence_human(const struct presence *, FILE *);

/* svg.c */
int	 bench_chart(const struct bench *, const struct options *);

/* machine.c */
int	 bench_machine(const struct options *);

/* presence.c */
int	 bench_presence(const struct options *);

/* tlsio.c */
int	 tlsio_available(void);
void	 tlsio_setup(const struct options *);
int	 tlsio_start(int);
int	 tlsio_on(int);
int	 tlsio_pending(int);
int	 tlsio_step(int, int, unsigned int, uint32_t *);
ssize_t	 tlsio_read(int, void *, size_t);
ssize_t	 tlsio_send(int, const void *, size_t);
void	 tlsio_close(int);
const char *tlsio_why(void);

/*
 * A connection's TLS start, written once for conn.c's connections and
 * presence.c's, and made for each kind as RB_GENERATE makes a tree's
 * functions.  PFX_handshake(run, c) goes on with the handshake and
 * registers once it is done; PFX_connected(run, c), once the TCP
 * connect went through, starts the handshake (--tls) or registers at
 * once; PFX_tls_event(run, c) takes an event of a connection in its
 * handshake (1), or leaves it to the caller (0).  RUN has ep, CONN has
 * fd, idx and st; EV, an expression of c, points to where the events
 * watched go; LOST, SET (with the state HANDSHAKE), REGISTER and READ
 * are the kind's own.
 */
#define TLSIO_START_GENERATE(PFX, RUN, CONN, EV, LOST, SET, HANDSHAKE,	\
    REGISTER, READ)							\
static void								\
PFX##_handshake(RUN *r, CONN *c)					\
{									\
	int	s = tlsio_step(r->ep, c->fd, c->idx, EV);		\
									\
	if (s == -1)							\
		LOST(r, c, tlsio_why());				\
	if (s != 1)							\
		return;							\
	REGISTER(r, c);							\
	/* The handshake's last read may have taken the first lines. */	\
	if (c->fd >= 0 && tlsio_pending(c->fd))				\
		READ(r, c);						\
}									\
									\
static void								\
PFX##_connected(RUN *r, CONN *c)					\
{									\
	switch (tlsio_start(c->fd)) {					\
	case -1:							\
		LOST(r, c, tlsio_why());				\
		break;							\
	case 0:								\
		REGISTER(r, c);						\
		break;							\
	default:							\
		SET(r, c, HANDSHAKE);					\
		PFX##_handshake(r, c);					\
	}								\
}									\
									\
static int								\
PFX##_tls_event(RUN *r, CONN *c)					\
{									\
	if (c->st != HANDSHAKE)						\
		return 0;						\
	PFX##_handshake(r, c);						\
	return 1;							\
}

#endif
