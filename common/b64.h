/* SPDX-License-Identifier: MIT */
/* Base64 (RFC 4648, standard alphabet, padded) for binary payloads in JSON. */
#ifndef SUP_B64_H
#define SUP_B64_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes needed to encode n bytes, NUL included. */
size_t sup_b64_encoded_len(size_t n);
/* Encode into out (sup_b64_encoded_len(n) bytes); returns the length. */
size_t sup_b64_encode(const void *in, size_t n, char *out);
/* Decode; returns bytes written or -EINVAL on a bad character or length.
 * out needs 3 * (n / 4) bytes. */
long sup_b64_decode(const char *in, size_t n, void *out);

/* Is buf valid UTF-8 without NUL bytes (safe as a JSON string)? */
bool sup_utf8_valid(const void *buf, size_t n);

#endif
