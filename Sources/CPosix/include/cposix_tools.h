#ifndef HAPPY_CPOSIX_TOOLS_H
#define HAPPY_CPOSIX_TOOLS_H
/* Helpers of the phone's shell tools (HappyCore/ProcessRunner). */

/* pipe2(fds, O_CLOEXEC): both ends close-on-exec from the start (no window in which a
   concurrent spawn could inherit them). 0, or -1 with errno. */
int cposix_pipe_cloexec(int fds[2]);
#endif
