/* SPDX-License-Identifier: MIT */
/* The number of tiers, which tierd and tierctl agree on. */
#ifndef SUP_TIERS_H
#define SUP_TIERS_H

#define SUP_NTIERS 4

#endif
