/*
 * sandbox.h: the workers' system-call filter (seccomp), built once by the
 * master and loaded by each worker once it is set up.
 */
#ifndef TALKNETD_SANDBOX_H
#define TALKNETD_SANDBOX_H

/* In the master, before any fork: builds the filter, or dies. */
void	sandbox_init(void);
/* In a worker, before it serves its client: loads the filter, or dies. */
void	sandbox_worker(void);
/* 1 when sandbox_worker installs a filter in this build and run. */
int	sandbox_enabled(void);

#endif
