#ifndef HAPPY_CPOSIX_H
#define HAPPY_CPOSIX_H
/* Umbrella header: one sub-header per owning area, so parallel work never edits the same file. */
#include "cposix_net.h"
#include "cposix_proc.h"
#include "cposix_daemon.h"
#include "cposix_tools.h"
#endif
