#ifndef HAPPY_CPOSIX_PROC_H
#define HAPPY_CPOSIX_PROC_H
/* Process, signal and file-watching helpers (HappyKit/Daemon, HappyKit/Sessions). */
#include <sys/types.h>
#endif
