/*
 * bench.h: what talknet-bench.c shares with the workloads that live in
 * files of their own (bench_machine.c, bench_presence.c): the options,
 * the server CPU sampler and the JSON string printer.
 */
#ifndef TALKNET_BENCH_H
#define TALKNET_BENCH_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stdint.h>
#include <stdio.h>

#define NS			1000000000LL
#define MS			1000000LL
#define MAX_COMPARE		16

enum workload {
	WL_NONE = 0,
	WL_FANOUT,
	WL_PRIVATE,
	WL_CONNECT,
	WL_HOLD,
	WL_MACHINE,
	WL_JOIN,
	WL_BROADCAST,
	WL_LAST = WL_BROADCAST
};

enum proto_kind {
	PK_TALKNET,
	PK_IRC
};

struct options {
	enum workload	 wl;
	enum proto_kind	 proto;
	const char	*host;
	const char	*port;
	int		 allow_remote;
	unsigned int	 nclients;
	unsigned int	 nsenders;
	unsigned int	 rate;		/* msgs/s in all; 0: closed loop */
	unsigned int	 bytes;
	unsigned int	 duration;	/* seconds */
	unsigned int	 warmup;
	unsigned int	 setup_timeout;
	unsigned int	 drain;
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
	int		 set_settle;
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

/* talknet-bench.c */
void	 srv_sample(pid_t, int, struct srvstat *);
void	 json_str(FILE *, const char *);
int	 bench_interrupted(void);
const char *irc_word(const char **, const char *, size_t *);
void	 bench_addr(const struct options *, struct sockaddr_storage *,
	    socklen_t *, char *, size_t);

/* bench_machine.c */
int	 bench_machine(const struct options *);

/* bench_presence.c */
int	 bench_presence(const struct options *);

#endif
