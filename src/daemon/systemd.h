/*
 * systemd.h: the two small systemd protocols talknetd speaks itself:
 * socket activation (LISTEN_FDS) and readiness (NOTIFY_SOCKET).
 */
#ifndef TALKNETD_SYSTEMD_H
#define TALKNETD_SYSTEMD_H

/* First fd systemd passes. */
#define SYSTEMD_LISTEN_FDS_START	3

/*
 * Returns how many listening sockets systemd passed to this process
 * (fds 3, 4, ...), 0 when none were, or -1 when LISTEN_FDS is malformed.
 * Unsets the variables so children do not see them.
 */
int	systemd_listen_fds(void);
/*
 * The name of the i-th socket systemd_listen_fds took (the socket
 * unit's FileDescriptorName=, LISTEN_FDNAMES), or "" for none.
 */
const char *systemd_listen_name(int i);
/* Whether systemd passed this process listening sockets; 0 or 1. */
int	systemd_listen_ours(void);
/*
 * Sends one state line ("READY=1", "STATUS=...") to NOTIFY_SOCKET if it
 * is set; does nothing otherwise.  Returns 0, or -1 on a failed send.
 */
int	systemd_notify(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));

#endif
