/* size_probe.c -- `make size` reads sizeof(ems_suit_t) as this object's bss. */
#include "ems_suit.h"

ems_suit_t ems_size_probe_suit;
