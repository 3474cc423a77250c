#ifndef HAPPY_CPOSIX_PROC_H
#define HAPPY_CPOSIX_PROC_H
/* Process, signal and file-watching helpers (HappyKit/Daemon, HappyKit/Sessions). */
#include <sys/types.h>

/* Spawns `path` (no PATH search) with argv/envp (NULL-terminated) in `cwd`, in a new
   session (setsid: own process group, pgid == pid), with fd 0/1/2 = in_fd/out_fd/err_fd
   and no other descriptor (closefrom 3), every signal disposition reset to default and
   an empty signal mask. Returns 0 and sets *pid_out, or an errno value (exec errors such
   as ENOENT/EACCES are reported here: glibc's posix_spawn waits for the exec). */
int cposix_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
                 int in_fd, int out_fd, int err_fd, pid_t *pid_out);

/* pidfd_open(2); -1 with errno on failure. The descriptor is close-on-exec and becomes
   readable when the process exits (works for processes that are not our children). */
int cposix_pidfd_open(pid_t pid);

/* inotify: a non-blocking, close-on-exec instance; watches for IN_MODIFY. */
int cposix_inotify_init(void);
int cposix_inotify_add_modify(int fd, const char *path);
int cposix_inotify_rm(int fd, int wd);

/* Reads pending inotify events from a non-blocking descriptor and stores up to `max`
   watch descriptors in `wds`; returns how many were stored, 0 when nothing is pending,
   -1 on error. */
int cposix_inotify_read_wds(int fd, int *wds, int max);

/* waitpid(pid, WNOHANG) that decodes the status: returns pid when reaped (code is the
   exit code, or 128+signal), 0 when still running, -1 with errno (ECHILD: not our child). */
pid_t cposix_reap(pid_t pid, int *code);

/* waitpid(pid, 0) blocking (EINTR retried); same return convention as cposix_reap. */
pid_t cposix_reap_blocking(pid_t pid, int *code);

/* Creates a FIFO with `mode` (0 or -1 with errno). */
int cposix_mkfifo(const char *path, mode_t mode);
/* Names the calling thread (prctl PR_SET_NAME; at most 15 bytes are kept). */
int cposix_set_thread_name(const char *name);

#endif
