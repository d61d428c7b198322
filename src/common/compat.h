/*
 * compat.h: what the system headers leave out and our code needs.
 */
#ifndef TALKNET_COMPAT_H
#define TALKNET_COMPAT_H

/*
 * libbsd's <sys/tree.h> marks its static generated functions __unused
 * but glibc does not define it; include this before RB_GENERATE.
 */
#ifndef __unused
#define __unused	__attribute__((__unused__))
#endif

#endif /* TALKNET_COMPAT_H */
