#ifndef HAPPY_CPOSIX_NET_H
#define HAPPY_CPOSIX_NET_H
/* Socket helpers (HappyKit/Net). */
int cposix_set_nodelay(int fd);
int cposix_set_nonblocking(int fd, int on);
int cposix_set_cloexec(int fd);

/* Resolves host (getaddrinfo, IPv4/IPv6) and connects to each address in turn with a
   non-blocking connect, within timeout_ms in total. The socket is CLOEXEC,
   non-blocking and has TCP_NODELAY. Returns the fd, or:
   -1 name resolution failed (message in errbuf),
   -2 connect failed (*err_out = errno of the last attempt),
   -3 timed out. */
int cposix_tcp_connect(const char *host, int port, int timeout_ms, int *err_out, char *errbuf, int errbuf_len);

/* poll() on one fd. Returns revents (>0), 0 on timeout, -errno on error. EINTR retried
   by the caller. */
int cposix_poll1(int fd, int events, int timeout_ms);

/* send() with MSG_NOSIGNAL. Returns bytes written or -errno. */
long cposix_send(int fd, const void *buf, long len);
/* recv(). Returns bytes read (0 = EOF) or -errno. */
long cposix_recv(int fd, void *buf, long len);
/* shutdown(fd, SHUT_RDWR): wakes threads blocked in poll on fd. */
int cposix_shutdown(int fd);

/* Installs a no-op SIGPIPE handler if SIGPIPE is at its default (not SIG_IGN, so
   children do not inherit an ignored SIGPIPE). Writes to a closed socket (also
   OpenSSL's) then fail with EPIPE instead of killing the process. */
void cposix_install_sigpipe_noop(void);

/* Poll event constants for Swift. */
extern const int cposix_POLLIN;
extern const int cposix_POLLOUT;
extern const int cposix_POLLERR;
extern const int cposix_POLLHUP;
#endif
