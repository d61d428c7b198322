/*
 * control.h: the control socket, the master's side.  Its frames are in
 * control_wire.h, shared with talknetctl.
 */
#ifndef TALKNETD_CONTROL_H
#define TALKNETD_CONTROL_H

#include <stddef.h>

#include "control_wire.h"

/* control.c: the master's side. */
struct pollfd;
/* Binds the control socket; -1 if an explicitly set path fails. */
int	 control_open(const char *path, int explicit_path);
/* Fills pfd with what the control side waits for; returns how many. */
size_t	 control_pollfds(struct pollfd *pfd, size_t max);
/* Handles what poll said about those entries. */
void	 control_events(const struct pollfd *pfd, size_t n);
/* ms until a control connection idles out, or -1. */
int	 control_timeout(void);
/* Closes every control fd and removes the socket (the master's exit). */
void	 control_close(void);
/* The socket's path while it is bound, or "": for a crash's clean-up. */
const char *control_path(void);
/* Closes the control fds in a forked child. */
void	 control_child(void);
/* Logs the "show stats" figures as one line (SIGUSR1). */
void	 control_log_stats(void);

#define CONTROL_NPOLL		9	/* the listener and 8 connections */

#endif
