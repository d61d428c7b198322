/*
 * title.h: process titles, so ps(1) shows each process's role.
 */
#ifndef TALKNETD_TITLE_H
#define TALKNETD_TITLE_H

/* Remembers argv for setproctitle; call first thing in main(). */
void	title_init(int argc, char *argv[], char *envp[]);
/* Sets "talknetd: <formatted text>" as the process title. */
void	title_set(const char *, ...) __attribute__((format(printf, 1, 2)));

#endif
