/*
 * client.h: the TalkNet line client (talknet), shared between its files.
 *
 * main.c holds main, the options and the poll loop; conn.c the
 * connection, plain or TLS; cmd.c turns input lines into requests;
 * render.c turns server lines into readable output; edit_libedit.c (or
 * edit_basic.c without libedit) is the terminal line editor.
 */
#ifndef TALKNET_CLIENT_H
#define TALKNET_CLIENT_H

#include <sys/types.h>

#include <stdio.h>

#include "buf.h"
#include "frame.h"
#include "proto.h"

#define DEFAULT_HOST		"127.0.0.1"
#define DEFAULT_PORT		"8001"
#define DEFAULT_TLS_PORT	"8443"	/* the convention for tls:// */
#define CONNECT_TIMEOUT_MS	5000	/* an unreachable server never hangs */
#define CONNECT_TIMEOUT_MAX_S	600	/* --timeout's upper bound */
#define QUIT_TIMEOUT_MS		2000	/* for the close after DISCONNECT */
#define SERVER_MAX_LINE		(16 * 1024 * 1024)
#define INPUT_MAX_LINE		PROTO_MAX_LINE
#define EDIT_MAX_LINE		4096	/* bytes typed on one terminal line */
#define OUT_HIGH_WATER		(1024 * 1024)
#define READ_SIZE		16384
#define TLS_READS_PER_TURN	64	/* then stdin gets its turn */
#define CONN_AGAIN		(-2)	/* conn_*: nothing more for now */
#define NAME_MAX_BYTES		1024	/* a name as typed, escapes undone */
#define HISTORY_DEFAULT		1000	/* lines kept in the history file */
#define HISTORY_MAX		100000

enum mode {
	MODE_TEXT,	/* commands in, readable lines out */
	MODE_JSON,	/* commands in, server lines out as received */
	MODE_RAW	/* plain line relay, like nc */
};

enum state {
	ST_NAME,	/* waiting for the user to give a name */
	ST_IDENT,	/* IDENTIFY sent, waiting for its reply */
	ST_READY,	/* identified: commands are sent */
	ST_QUIT		/* DISCONNECT sent or input over: waiting for close */
};

struct client {
	enum mode		 mode;
	enum state		 state;
	int			 fd;
	int			 tty_in;	/* stdin is a terminal */
	int			 tty_out;	/* stdout is a terminal */
	int			 editing;	/* the line editor owns stdin */
	int			 in_eof;
	int			 said_bye;	/* DISCONNECT sent */
	int			 refused;	/* the server sent INVALID */
	int			 retry;		/* reconnect and ask a name */
	int			 shut;		/* --raw: write side is shut */
	long long		 deadline;	/* ST_QUIT: ms, monotonic */
	long long		 connect_timeout_ms; /* connect, handshake */
	char			 name[NAME_MAX_BYTES];
	const char		*host;
	const char		*port;
	struct framer		 sock_in;
	struct framer		 std_in;
	struct buf		 sock_out;
	struct buf		 out;		/* the output line being made */
	struct proto_parser	 parser;
	short			 rd_events;	/* poll for a read: POLLIN */
	short			 wr_events;	/* poll for a write: POLLOUT */
	int			 tls_more;	/* libtls may hold unread bytes */
	struct tls_config	*tls_conf;	/* --tls, else NULL */
	struct tls		*tls;		/* this connection's, or NULL */
};

/* main.c */
void	 client_exit(struct client *, int) __attribute__((__noreturn__));
void	 out_flush(void);

/* conn.c */
void	 conn_tls_setup(struct client *, const char *, int);
void	 conn_open(struct client *);
void	 conn_close(struct client *);
ssize_t	 conn_read(struct client *, void *, size_t);
ssize_t	 conn_write(struct client *, const void *, size_t);
void	 conn_shutdown(struct client *);

/* cmd.c */
extern const char help_text[];
void	 send_quit(struct client *);
void	 send_identify(struct client *);
void	 ask_name(struct client *);
int	 name_ok(const char *, size_t);
void	 input_line(struct client *, const char *, size_t);
int	 input_wanted(struct client *);
void	 input_end(struct client *);
void	 input_drain(struct client *);
void	 input_read(struct client *);

/* render.c */
void	 out_add(struct client *, const void *, size_t);
void	 out_puts(struct client *, const char *);
void	 out_esc(struct client *, const char *, size_t);
void	 out_str(struct client *, struct str);
void	 out_emit(struct client *, FILE *);
void	 note(struct client *, const char *, ...)
	    __attribute__((__format__(__printf__, 2, 3)));
void	 echo_sent(struct client *, const struct msg *);
void	 server_line(struct client *, const char *, size_t);
size_t	 text_cols(const char *, size_t);

/* talknet_edit_*.c: the terminal line editor */
int	 edit_start(struct client *);
void	 edit_stop(struct client *);
void	 edit_hide(struct client *);
void	 edit_show(struct client *);
void	 edit_prompt(struct client *);
void	 edit_read(struct client *);
void	 edit_drain(struct client *);
void	 edit_resize(struct client *);
void	 edit_history_add(struct client *, const char *, size_t);
const char *edit_prompt_text(struct client *, char *, size_t);

#endif
