#define _GNU_SOURCE
#include "cposix_tools.h"
#include <fcntl.h>
#include <unistd.h>

int cposix_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
