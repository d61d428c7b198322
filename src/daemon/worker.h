/*
 * worker.h: the worker's state and the functions its files share.
 * worker.c is the process (setup, signals, limits, timers, the loop);
 * worker_in.c reads the client's lines, worker_out.c queues and writes
 * what goes to it; worker_hub.c is its channel to the hub;
 * worker_wait.c is its wait on both; worker_spare.c is a spare's wait
 * for its client.  Internal to the worker: nothing
 * outside these files includes it.
 */
#ifndef TALKNET_WORKER_H
#define TALKNET_WORKER_H

#include <sys/types.h>

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "frame.h"
#include "peer.h"
#include "proto.h"
#include "session.h"
#include "shm.h"

struct config;
struct runtime;
struct tls;

#define WORKER_READ_SIZE	(16 * 1024)	/* one read, client or hub */
#define WORKER_KEEP		(32 * 1024)	/* buffer kept when idle */
#define WORKER_HUB_HIGH		(256 * 1024)	/* stop reading the client */
#define WORKER_LINGER_MS	2000		/* flush time after CLOSE */
#define WORKER_STOP_MS		1000		/* flush time on SIGTERM */
#define WORKER_HUB_RETRY_MS	10000		/* wait for a new hub */
#define WORKER_HUB_TICK_MS	50		/* first wait between tries */
#define WORKER_HUB_TICK_MAX_MS	1000		/* longest wait between tries */
#define WORKER_CLIENT_FD	3
#define WORKER_RELEASE_FD	4	/* "client closed", to the master */
#define WORKER_PIPE_SIZE	(16 * 1024)	/* the send pipe's capacity */
#define WORKER_SEND_ROUNDS	8		/* pipe fills per send */
#define WORKER_SCRATCH_IDLE_MS	1000		/* quiet, then scratch goes */
/* First storage of each buffer; past these a buffer moves to the heap. */
#define WORKER_STORE_IN		256	/* client input */
#define WORKER_STORE_OUT	512	/* client output */
#define WORKER_STORE_HIN	256	/* a frame split between reads */
#define WORKER_STORE_HCTL	128	/* HELLO */
#define WORKER_STORE_HOUT	512	/* requests the hub has not run */
#define WORKER_STORE_TOK	64	/* the parser's tokens (ints) */
#define WORKER_STORE_STR	256	/* the parser's decoded strings */
#define WORKER_STORE_NAME	64	/* the name of a pending IDENTIFY */

enum ident_state {
	IDENT_NONE,		/* not identified */
	IDENT_PENDING,		/* IDENTIFY sent, the hub has not answered */
	IDENT_DONE
};

/*
 * Where a worker's session stands, one bit each in w.flags.  The first
 * six are only ever set: a session closes a step at a time and never
 * opens again.
 */
enum worker_flag {
	WF_CLOSING	= 0x0001,	/* DISCONNECT sent to the hub */
	WF_CLOSED	= 0x0002,	/* the hub answered CLOSE */
	WF_RD_DONE	= 0x0004,	/* no more client input */
	WF_RD_EOF	= 0x0008,	/* the client half-closed */
	WF_WR_DEAD	= 0x0010,	/* the client cannot be written */
	WF_CUT		= 0x0020,	/* over --max-queue: no more */
	WF_HUB_HUP	= 0x0040,	/* the hub hung up: read all */
	WF_RATE_HELD	= 0x0080,	/* a line waits for a token */
	WF_GATHERING	= 0x0100	/* lines gather in the scratch */
};

/*
 * One worker's whole state: defined in worker.c.  Page-aligned, and so
 * a whole number of pages long: its last page holds nothing else, and
 * worker_scratch_release may give it back.
 */
struct worker_state {
	const struct config	*cfg;
	int			 cfd;		/* the client's TCP socket */
	struct peer		 hub;		/* the channel to the hub,
						   fd -1 if none; its out holds
						   the requests not yet run */
	struct tls		*tls;		/* tls:// client, or NULL */
	int			 tls_ready;	/* its handshake is done */
	short			 tls_rwant;	/* what a read waits for */
	short			 tls_wwant;	/* what a write waits for */
	size_t			 tls_wlen;	/* length of a write to retry */
	int			 tls_more;	/* a read may have left some */
	int			 pipe_r;	/* the send pipe, or -1: write() */
	int			 pipe_w;
	size_t			 piped;		/* bytes in the send pipe */
	const struct runtime	*rt;
	pid_t			 pid;
	struct shm_live		 lim;		/* the limits in force */
	uint64_t		 live_gen;	/* the table's, when taken */
	uint64_t		 hub_gen;	/* the hub connected to last */
	int64_t			 hub_retry_at;	/* next connect try */
	int			 hub_backoff_ms; /* wait after a failed try */
	int64_t			 started_at;
	uint64_t		 sent;		/* bytes the socket took */
	uint64_t		 acked_mark;	/* of them acked at the check */
	int64_t			 stall_check_at; /* 0: nothing in flight */
	sigset_t		 wait_mask;	/* SIGTERM let in, in the wait */
	int			 epfd;		/* the wait's epoll set, or -1 */
	int			 ep_fd[2];	/* in it: client, hub (or -1) */
	uint32_t		 ep_events[2];	/* what it waits for on them */
	uint64_t		 ep_conn[2];	/* hub_conn when added */
	uint64_t		 hub_conn;	/* hub channels opened */
	uint32_t		 slot;		/* row in the table */
	uint32_t		 seq;		/* last request's seq */
	uint32_t		 ident_seq;	/* seq of the pending IDENTIFY */
	struct buf		 ident_name;	/* of the pending IDENTIFY */
	int64_t			 hub_lost_at;	/* 0 while welcomed */
	int64_t			 login_deadline; /* 0: none */
	double			 tokens;	/* rate limit's bucket */
	int64_t			 tokens_at;	/* when it was last filled */
	char			 addr[64];
	struct framer		 in;		/* client input */
	struct buf		 out;		/* client output queue */
	struct buf		 hctl;		/* HELLO, sent before hub.out */
	size_t			 hsent;		/* bytes of hub.out written */
	struct proto_parser	 parser;
	struct shm_table	 tab;		/* read-only */
	enum ident_state	 ident;
	uint32_t		 flags;		/* enum worker_flag */
	enum result		 final;		/* reply after CLOSE, if any */
	struct session_report	 rep;		/* counts and why it ended */
	int			 linger_ms;	/* flush time once closed */
	size_t			 gathered;	/* bytes of them, at its head */
	size_t			 scratch_first;	/* its bytes in the state page */
	size_t			 scratch_used;	/* most written since given back */
	int64_t			 scratch_idle_at; /* give back then; 0: none */
	/*
	 * The buffers start here, in the state's page.  A worker whose
	 * traffic fits never calls malloc, so it never writes the heap
	 * pages and malloc's state that it shares with the master: each
	 * page written would be one more copy per client.
	 */
	char			 store_in[WORKER_STORE_IN];
	char			 store_out[WORKER_STORE_OUT];
	char			 store_hin[WORKER_STORE_HIN];
	char			 store_hctl[WORKER_STORE_HCTL];
	char			 store_hout[WORKER_STORE_HOUT];
	int			 store_tok[WORKER_STORE_TOK];
	char			 store_str[WORKER_STORE_STR];
	char			 store_name[WORKER_STORE_NAME];
	/*
	 * Every read lands here first, right after the state above: a
	 * worker's small reads and its state share one page, so they cost
	 * one copy-on-write fault.  Not on the stack: the stack probes of
	 * a large frame would touch all of its pages.
	 */
	char			 scratch[WORKER_READ_SIZE];
} __attribute__((aligned(4096)));

extern struct worker_state	w;
extern volatile sig_atomic_t	worker_stop;	/* SIGTERM came */

/* worker.c */
/* Sets up what needs no client (fds, the table, the send pipe, TLS),
 * then loads the sandbox. */
void	 worker_prepare(const struct config *, const struct runtime *,
	    int fd, int tls);
/* Serves the client at WORKER_CLIENT_FD until it leaves. */
void	 worker_serve(const char *addr) __attribute__((noreturn));
/* Stops serving without the hub: flush the queue a while, then exit. */
void	 worker_wind_down(const char *);
/* Notes that a read wrote n bytes of the scratch. */
void	 worker_scratch_wrote(size_t);

/* worker_in.c */
/* Runs the complete lines buffered from the client. */
void	 worker_input(void);
/* Reads from the client into the framer. */
void	 worker_client_read(void);

/* worker_out.c */
/* Ends gathering: the lines gathered in the scratch go to the client. */
void	 worker_gather_flush(void);
/* Drops the client queue but for its first line. */
void	 worker_queue_keep_head(void);
/* Queues a line for the client; a full queue disconnects the client. */
void	 worker_queue(const char *, size_t);
/* Opens the send pipe to splice from, if it can (else write()). */
void	 worker_pipe_open(void);
/* Starts the stall check when bytes wait for the client. */
void	 worker_stall_arm(void);
/* Bytes for the client not yet in its socket: the queue and the pipe. */
size_t	 worker_unsent(void);
/* Sends as much of the queue as the socket takes; -1 on a dead socket. */
int	 worker_write(void);
/* Appends the final INVALID or NOT_IDENTIFIED reply after CLOSE. */
void	 worker_final_reply(void);

/* worker_hub.c */
/* Sets up the channel to the hub, its buffers in w itself. */
void	 worker_hub_init(void);
/* Asks the hub for the DISCONNECT semantics; the answer is CLOSE. */
void	 worker_leave(enum result);
/* Forwards one valid request to the hub. */
void	 worker_forward(const struct msg *);
/* Drops the requests the hub has run. */
void	 worker_trim(uint64_t);
/* The last request the hub ran, from the worker's row. */
uint64_t worker_last_seq(void);
/* Reads frames from the hub and runs them. */
void	 worker_hub_read(void);
/* Without a hub: connects again once a new one runs, or gives up. */
void	 worker_hub_retry(void);
/* Writes HELLO, then the requests not yet written, to the hub. */
void	 worker_hub_write(void);

/* worker_session.c */
/* Notes why the session ends, and the limit that ended it (or LIMIT_LAST). */
void	 worker_end(enum session_end, enum limit_id);
/* Sets a flag of the worker's state if on, else clears it. */
void	 worker_flag(enum worker_flag, int on);
/* Fills the rate limit's bucket for the time gone by. */
void	 worker_refill(void);
/* Milliseconds until the bucket holds a token again (0: now). */
int	 worker_token_wait_ms(void);
/* Counts a line the rate limit held back (held 1), once per line. */
void	 worker_rate_held(int held);
/* Counts bytes handed to the kernel for the client, and their lines. */
void	 worker_count_out(const char *, size_t);
/* Logs the end-of-session line and sends the master the report. */
void	 worker_session_end(void);

/* worker_tls.c: a tls:// client (without TLS: never one). */
/* Starts serving TLS on the client socket (before the sandbox). */
void	 worker_tls_start(void);
/* The events to wait for on the client, given what the loop wants. */
short	 worker_tls_events(int rd, int wr);
/* Runs the handshake or reads, after the client's fd woke; see .c. */
void	 worker_tls_ready(short revents, int rd);
/* tls_write's worker_send: bytes taken, 0 when full, -1 when dead. */
ssize_t	 worker_tls_send(const char *, size_t);
/* Sends close_notify, once, without waiting. */
void	 worker_tls_close(void);
/* Why the TLS session failed, for the end line ("" if it did not). */
const char *worker_tls_why(void);

/* worker_wait.c */
struct pollfd;
/* Makes the wait's epoll set (before the sandbox); -1 leaves ppoll. */
void	 worker_wait_open(void);
/* Waits on the client and the hub as ppoll would, SIGTERM let in. */
int	 worker_wait(struct pollfd *, int);

#endif
