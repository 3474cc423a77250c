#ifndef HAPPY_CPOSIX_NET_H
#define HAPPY_CPOSIX_NET_H
/* Socket helpers (HappyKit/Net). */
int cposix_set_nodelay(int fd);
int cposix_set_nonblocking(int fd, int on);
int cposix_set_cloexec(int fd);
#endif
