/*
 * log.h: one line per event, to stderr in the foreground or to syslog.
 */
#ifndef TALKNETD_LOG_H
#define TALKNETD_LOG_H

#include <stdarg.h>
#include <stddef.h>

#define LOG_LEVEL_ERROR		0
#define LOG_LEVEL_WARNING	1
#define LOG_LEVEL_INFO		2
#define LOG_LEVEL_DEBUG		3

/* Sets the destination (stderr when foreground) and the highest level. */
void	log_init(int foreground, int level);
/* A level's name ("info"), and a name's level or -1. */
const char *log_level_name(int level);
int	log_level_parse(const char *name);
/* Changes the highest level logged (SIGHUP). */
void	log_set_level(int level);
/*
 * Peer data made safe for one log line: bytes outside ' '..'~' escaped
 * as \n, \t, \ooo; cut with "..." to fit dst.  Returns dst.
 */
const char *log_escape(const void *, size_t, char *dst, size_t dstlen);
/* The size of dst that holds an escaped copy of n bytes, uncut. */
#define LOG_ESCAPED(n)		(4 * (n) + 1)
/* Logs a warning with strerror(errno) appended. */
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
/* Logs a warning. */
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
/* Logs an ordinary event. */
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
/* Logs a detail useful when debugging. */
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
/* Logs an impossible condition with strerror(errno) and exits 1. */
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
/* Logs an impossible condition and exits 1. */
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
