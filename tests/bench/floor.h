/*
 * floor.h: what the two files of the floor server share.  floor.c holds
 * the routing (single's whole server, multi's hub) and main; floor_multi.c
 * the rest of multi's processes: the master, its spares, the workers.
 */
#ifndef FLOOR_H
#define FLOOR_H

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define LINE_CAP	(1 << 20)	/* an unended line this long: close */
#define READ_CHUNK	65536
#define SPARES_MIN	8		/* spares forked ahead at first */
#define SPARES_MAX	64		/* the pool grows to this under a burst */

/* A growable byte buffer. */
struct buf {
	char	*p;
	size_t	 len, cap;
};

extern volatile sig_atomic_t	stopping;

void	buf_add(struct buf *, const void *, size_t);
void	buf_drop(struct buf *, size_t);
int	json_str(const char *, size_t, const char *, const char **, size_t *);
int	is(const char *, size_t, const char *);
void	watch(int, int, int, uint32_t);
void	serve(int, int) __attribute__((noreturn));
void	master(int, int, const struct sockaddr_un *, socklen_t);
int	listen_hub(struct sockaddr_un *, socklen_t *);

#endif /* FLOOR_H */
