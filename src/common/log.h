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
/* The size of a buffer that holds log_signame's or log_wait_status's text. */
#define LOG_STATUS_LEN		64
/* A signal's name, "SIGSEGV", or "signal 40", written in buf if need be. */
const char *log_signame(int sig, char *buf, size_t len);
/* What a wait status says: "exited with status 1", "killed by SIGKILL". */
const char *log_wait_status(int status, char *buf, size_t len);
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
