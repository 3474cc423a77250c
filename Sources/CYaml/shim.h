#ifndef HAPPY_CYAML_SHIM_H
#define HAPPY_CYAML_SHIM_H
#include <yaml.h>
#endif
