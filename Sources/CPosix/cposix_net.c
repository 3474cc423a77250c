#include "cposix_net.h"
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

const int cposix_POLLIN = POLLIN;
const int cposix_POLLOUT = POLLOUT;
const int cposix_POLLERR = POLLERR;
const int cposix_POLLHUP = POLLHUP;

int cposix_set_nodelay(int fd) {
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int cposix_set_nonblocking(int fd, int on) {
    int flags = fcntl(fd, F_GETFL, 0);
    if (flags < 0) return -1;
    flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, flags);
}

int cposix_set_cloexec(int fd) {
    int flags = fcntl(fd, F_GETFD, 0);
    if (flags < 0) return -1;
    return fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cposix_tcp_connect(const char *host, int port, int timeout_ms, int *err_out, char *errbuf, int errbuf_len) {
    long long deadline = now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
    struct addrinfo hints, *res = NULL, *ai;
    char portstr[16];
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", port);
    *err_out = 0;
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0 && rc == EAI_NONAME) {
        /* AI_ADDRCONFIG hides loopback-only setups; retry without it. */
        hints.ai_flags = AI_NUMERICSERV;
        rc = getaddrinfo(host, portstr, &hints, &res);
    }
    if (rc != 0) {
        if (errbuf && errbuf_len > 0) {
            const char *m = rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc);
            snprintf(errbuf, (size_t)errbuf_len, "%s", m);
        }
        return -1;
    }
    int last_err = ECONNREFUSED;
    int timed_out = 0;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) { last_err = errno; continue; }
        cposix_set_nodelay(fd);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) { freeaddrinfo(res); return fd; }
        if (errno != EINPROGRESS) { last_err = errno; close(fd); continue; }
        for (;;) {
            long long left = deadline - now_ms();
            if (left <= 0) { timed_out = 1; break; }
            struct pollfd p = { .fd = fd, .events = POLLOUT, .revents = 0 };
            int n = poll(&p, 1, (int)(left > 2147483647LL ? 2147483647LL : left));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) { last_err = errno; break; }
            if (n == 0) { timed_out = 1; break; }
            int soerr = 0; socklen_t sl = sizeof(soerr);
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) soerr = errno;
            if (soerr == 0) { freeaddrinfo(res); return fd; }
            last_err = soerr;
            break;
        }
        close(fd);
        if (timed_out) break;
    }
    freeaddrinfo(res);
    if (timed_out) return -3;
    *err_out = last_err;
    return -2;
}

int cposix_poll1(int fd, int events, int timeout_ms) {
    struct pollfd p = { .fd = fd, .events = (short)events, .revents = 0 };
    int n = poll(&p, 1, timeout_ms);
    if (n < 0) return -errno;
    if (n == 0) return 0;
    return p.revents ? p.revents : events;
}

long cposix_send(int fd, const void *buf, long len) {
    ssize_t n = send(fd, buf, (size_t)len, MSG_NOSIGNAL);
    return n < 0 ? -errno : (long)n;
}

long cposix_recv(int fd, void *buf, long len) {
    ssize_t n = recv(fd, buf, (size_t)len, 0);
    return n < 0 ? -errno : (long)n;
}

int cposix_shutdown(int fd) { return shutdown(fd, SHUT_RDWR); }

static void sigpipe_noop(int sig) { (void)sig; }

void cposix_install_sigpipe_noop(void) {
    struct sigaction cur;
    if (sigaction(SIGPIPE, NULL, &cur) != 0) return;
    if (cur.sa_handler != SIG_DFL) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = sigpipe_noop;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
}
