#ifndef HAPPY_CPOSIX_DAEMON_H
#define HAPPY_CPOSIX_DAEMON_H
/* Daemon helpers (HappyKit/Daemon): epoll, accept4, eventfd, detached spawn, signals. */
#include <sys/types.h>
#include <stdint.h>

/* epoll */
int cposix_epoll_create(void);
/* op: 0 add, 1 modify, 2 delete; events: bit 0 read, bit 1 write. */
int cposix_epoll_ctl(int epfd, int op, int fd, int events, uint64_t data);
/* Fills up to max (data, events) pairs; events bits: 1 read, 2 write, 4 error/hangup. */
int cposix_epoll_wait(int epfd, uint64_t *datas, int *events, int max, int timeout_ms);

/* Returns the accepted fd (non-blocking, CLOEXEC, TCP_NODELAY) or -errno. */
int cposix_accept4_nonblock(int listen_fd);
/* The soft RLIMIT_NOFILE (capped at 1048576). */
int cposix_fd_limit(void);
int cposix_eventfd(void);
int cposix_eventfd_signal(int fd);
int cposix_eventfd_drain(int fd);

/* Listening TCP socket on 127.0.0.1:port (port 0 = any). Returns fd or -errno. */
int cposix_listen_loopback(int port, int backlog);
int cposix_local_port(int fd);
/* Blocking connect to 127.0.0.1:port within timeout_ms, then SO_RCVTIMEO/SO_SNDTIMEO.
   Returns fd or -errno. */
int cposix_connect_loopback(int port, int timeout_ms);
int cposix_set_timeouts(int fd, int timeout_ms);

/* Spawns argv[0] (absolute path) in a new session (setsid), signals reset to default,
   stdin /dev/null, stdout+stderr appended to stdio_path (never through a symbolic
   link: O_NOFOLLOW), no other descriptors.
   Returns pid or -errno. */
pid_t cposix_spawn_detached(const char *path, char *const argv[], char *const envp[], const char *stdio_path);

/* Installs a no-op handler (not SIG_IGN: children must not inherit an ignored disposition). */
int cposix_install_noop_handler(int sig);
/* Process alive (kill 0 succeeds or EPERM). */
int cposix_pid_alive(pid_t pid);
/* flock on an open fd: exclusive, blocking. */
int cposix_flock_ex(int fd);
int cposix_flock_un(int fd);
/* Drops this process's clean, read-only, file-backed pages from its resident set
   (MADV_DONTNEED on private mappings with no copied-on-write pages: they are re-read
   from the page cache on the next access). Returns the bytes released (estimate). */
long cposix_trim_clean_file_pages(void);
#endif
