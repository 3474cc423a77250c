#include "cposix_proc.h"
