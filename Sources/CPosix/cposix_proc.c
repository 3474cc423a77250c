#define _GNU_SOURCE
#include <sys/prctl.h>
#include "cposix_proc.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef POSIX_SPAWN_SETSID
#define POSIX_SPAWN_SETSID 0x80
#endif

/* Moves a descriptor below 3 out of the way so the dup2 sequence cannot clobber it. */
static int lift(int fd, int *tmp) {
    if (fd >= 3) return fd;
    int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    *tmp = n;
    return n;
}

int cposix_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
                 int in_fd, int out_fd, int err_fd, pid_t *pid_out) {
    int t0 = -1, t1 = -1, t2 = -1;
    int a = lift(in_fd, &t0), b = lift(out_fd, &t1), c = lift(err_fd, &t2);
    int rc = 0;
    if (a < 0 || b < 0 || c < 0) { rc = errno; goto out; }

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    if ((rc = posix_spawn_file_actions_init(&fa)) != 0) goto out;
    if ((rc = posix_spawnattr_init(&at)) != 0) { posix_spawn_file_actions_destroy(&fa); goto out; }

    if ((rc = posix_spawn_file_actions_adddup2(&fa, a, 0)) != 0) goto done;
    if ((rc = posix_spawn_file_actions_adddup2(&fa, b, 1)) != 0) goto done;
    if ((rc = posix_spawn_file_actions_adddup2(&fa, c, 2)) != 0) goto done;
    if ((rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) != 0) goto done;
    if (cwd && (rc = posix_spawn_file_actions_addchdir_np(&fa, cwd)) != 0) goto done;

    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    if ((rc = posix_spawnattr_setsigdefault(&at, &all)) != 0) goto done;
    if ((rc = posix_spawnattr_setsigmask(&at, &none)) != 0) goto done;
    if ((rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)) != 0) goto done;

    rc = posix_spawn(pid_out, path, &fa, &at, argv, envp);
done:
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
out:
    if (t0 >= 0) close(t0);
    if (t1 >= 0) close(t1);
    if (t2 >= 0) close(t2);
    return rc;
}

int cposix_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int cposix_inotify_init(void) { return inotify_init1(IN_NONBLOCK | IN_CLOEXEC); }

int cposix_inotify_add_modify(int fd, const char *path) { return inotify_add_watch(fd, path, IN_MODIFY); }

int cposix_inotify_rm(int fd, int wd) { return inotify_rm_watch(fd, wd); }

int cposix_inotify_read_wds(int fd, int *wds, int max) {
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    int count = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return count;
            return count > 0 ? count : -1;
        }
        if (n == 0) return count;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            if (count < max) {
                int seen = 0;
                for (int i = 0; i < count; i++) if (wds[i] == ev->wd) { seen = 1; break; }
                if (!seen) wds[count++] = ev->wd;
            }
            p += sizeof(struct inotify_event) + ev->len;
        }
    }
}

static pid_t decode(pid_t r, int st, int *code) {
    if (r > 0 && code) {
        if (WIFEXITED(st)) *code = WEXITSTATUS(st);
        else if (WIFSIGNALED(st)) *code = 128 + WTERMSIG(st);
        else *code = -1;
    }
    return r;
}

pid_t cposix_reap(pid_t pid, int *code) {
    int st = 0;
    pid_t r;
    do { r = waitpid(pid, &st, WNOHANG); } while (r < 0 && errno == EINTR);
    return decode(r, st, code);
}

pid_t cposix_reap_blocking(pid_t pid, int *code) {
    int st = 0;
    pid_t r;
    do { r = waitpid(pid, &st, 0); } while (r < 0 && errno == EINTR);
    return decode(r, st, code);
}

int cposix_mkfifo(const char *path, mode_t mode) { return mkfifo(path, mode); }

int cposix_set_thread_name(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}
