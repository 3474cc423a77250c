#define _GNU_SOURCE
#include "cposix_daemon.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>

int cposix_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int cposix_epoll_ctl(int epfd, int op, int fd, int events, uint64_t data) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    if (events & 1) ev.events |= EPOLLIN | EPOLLRDHUP;
    if (events & 2) ev.events |= EPOLLOUT;
    ev.data.u64 = data;
    int o = op == 0 ? EPOLL_CTL_ADD : op == 1 ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;
    return epoll_ctl(epfd, o, fd, &ev);
}

int cposix_epoll_wait(int epfd, uint64_t *datas, int *events, int max, int timeout_ms) {
    struct epoll_event evs[256];
    if (max > 256) max = 256;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        datas[i] = evs[i].data.u64;
        int e = 0;
        if (evs[i].events & (EPOLLIN | EPOLLRDHUP)) e |= 1;
        if (evs[i].events & EPOLLOUT) e |= 2;
        if (evs[i].events & (EPOLLERR | EPOLLHUP)) e |= 4;
        events[i] = e;
    }
    return n;
}

int cposix_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1048576) return 1048576;
    return (int)rl.rlim_cur;
}

int cposix_accept4_nonblock(int listen_fd) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

int cposix_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }
int cposix_eventfd_signal(int fd) { uint64_t one = 1; return (int)write(fd, &one, sizeof(one)); }
int cposix_eventfd_drain(int fd) { uint64_t v; return (int)read(fd, &v, sizeof(v)); }

/* A non-blocking TCP socket with one boolean option switched on, and 127.0.0.1:port in *a. */
static int loopback_tcp_socket(int port, int level, int option, struct sockaddr_in *a) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, level, option, &one, sizeof(one));
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return fd;
}

int cposix_listen_loopback(int port, int backlog) {
    struct sockaddr_in a;
    int fd = loopback_tcp_socket(port, SOL_SOCKET, SO_REUSEADDR, &a);
    if (fd < 0) return fd;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, backlog) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int cposix_local_port(int fd) {
    struct sockaddr_in a;
    socklen_t l = sizeof(a);
    if (getsockname(fd, (struct sockaddr *)&a, &l) != 0) return -errno;
    return ntohs(a.sin_port);
}

int cposix_set_timeouts(int fd, int timeout_ms) {
    struct timeval tv;
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) return -errno;
    return 0;
}

int cposix_connect_loopback(int port, int timeout_ms) {
    struct sockaddr_in a;
    int fd = loopback_tcp_socket(port, IPPROTO_TCP, TCP_NODELAY, &a);
    if (fd < 0) return fd;
    int r = connect(fd, (struct sockaddr *)&a, sizeof(a));
    if (r != 0 && errno != EINPROGRESS) { int e = errno; close(fd); return -e; }
    if (r != 0) {
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int n;
        do { n = poll(&p, 1, timeout_ms); } while (n < 0 && errno == EINTR);
        if (n == 0) { close(fd); return -ETIMEDOUT; }
        if (n < 0) { int e = errno; close(fd); return -e; }
        int err = 0; socklen_t l = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err != 0) { close(fd); return -err; }
    }
    int flags = fcntl(fd, F_GETFL, 0);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    int tr = cposix_set_timeouts(fd, timeout_ms);
    if (tr != 0) { close(fd); return tr; }
    return fd;
}

pid_t cposix_spawn_detached(const char *path, char *const argv[], char *const envp[], const char *stdio_path) {
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&fa);
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, stdio_path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    pid_t pid = -1;
    int r = posix_spawn(&pid, path, &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (r != 0) return -r;
    return pid;
}

static void noop_handler(int sig) { (void)sig; }

int cposix_install_noop_handler(int sig) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = noop_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    return sigaction(sig, &sa, NULL);
}

int cposix_pid_alive(pid_t pid) {
    if (pid <= 0) return 0;
    if (kill(pid, 0) == 0) return 1;
    return errno == EPERM ? 1 : 0;
}

int cposix_flock_ex(int fd) {
    int r;
    do { r = flock(fd, LOCK_EX); } while (r != 0 && errno == EINTR);
    return r;
}
int cposix_flock_un(int fd) { return flock(fd, LOCK_UN); }

long cposix_trim_clean_file_pages(void) {
    FILE *f = fopen("/proc/self/smaps", "re");
    if (!f) return -1;
    char line[1024];
    unsigned long start = 0, end = 0;
    int candidate = 0;
    long rss = 0, anon = 0, released = 0;
    /* Regions are collected first, then trimmed (madvise changes smaps as we read it). */
    unsigned long *regions = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        char *got = fgets(line, sizeof(line), f);
        int header = 0;
        if (got) {
            char perms[8] = {0};
            unsigned long a, b, off, ino;
            char dev[16];
            char path[512] = {0};
            int k = sscanf(line, "%lx-%lx %7s %lx %15s %lu %511s", &a, &b, perms, &off, dev, &ino, path);
            if (k >= 6 && strchr(line, '-') && (line[0] != ' ')) {
                size_t len = strlen(line);
                (void)len;
                header = 1;
                /* close the previous one */
                if (candidate && anon == 0 && rss > 0) {
                    if (n + 2 > cap) { cap = cap ? cap * 2 : 64; regions = realloc(regions, cap * sizeof(unsigned long)); }
                    regions[n++] = start; regions[n++] = end; released += rss;
                }
                start = a; end = b; rss = 0; anon = 0;
                candidate = perms[1] != 'w' && perms[3] == 'p' && ino != 0 && path[0] == '/';
                continue;
            }
            if (!header) {
                long v;
                if (sscanf(line, "Rss: %ld kB", &v) == 1) rss = v;
                else if (sscanf(line, "Anonymous: %ld kB", &v) == 1) anon = v;
            }
        } else {
            if (candidate && anon == 0 && rss > 0) {
                if (n + 2 > cap) { cap = cap ? cap * 2 : 64; regions = realloc(regions, cap * sizeof(unsigned long)); }
                regions[n++] = start; regions[n++] = end; released += rss;
            }
            break;
        }
    }
    fclose(f);
    for (size_t i = 0; i + 1 < n; i += 2) madvise((void *)regions[i], regions[i + 1] - regions[i], MADV_DONTNEED);
    free(regions);
    return released * 1024;
}
