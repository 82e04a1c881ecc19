/* SPDX-License-Identifier: MIT */
/* Text from agents made fit for the log and the JSON event journal. */
#ifndef SUP_TEXTESC_H
#define SUP_TEXTESC_H

#include <stddef.h>

/* Copy len bytes of src into dst (cap bytes, cap >= 1) as valid UTF-8:
 * well-formed characters are kept, every other byte and every control
 * character (C0, DEL) becomes the four characters "\xNN". Stops before a
 * piece that would not fit, so the result is never cut inside a character
 * or an escape. Always NUL-terminates; returns the length written. A NUL
 * in src is escaped too, so the result is one C string. */
size_t sup_text_escape(char *dst, size_t cap, const void *src, size_t len);

#endif
