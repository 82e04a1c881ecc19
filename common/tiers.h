/* SPDX-License-Identifier: MIT */
/*
 * The number of tiers, the one constant every module counts them with.
 * Tiers are numbered 1..SUP_NTIERS (as in [tierN] and TIER_TIER); arrays
 * indexed by that number have SUP_NTIERS + 1 slots, arrays indexed from 0
 * (tier - 1) have SUP_NTIERS.
 */
#ifndef SUP_TIERS_H
#define SUP_TIERS_H

#define SUP_NTIERS 4

#endif
