/* SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <stdio.h>

#include "textesc.h"

/* Length of the well-formed UTF-8 character at s (RFC 3629: no overlongs,
 * no surrogates, nothing past U+10FFFF), or 0 if it is not one. */
static size_t utf8_char(const unsigned char *s, size_t left)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp, min;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

size_t sup_text_escape(char *dst, size_t cap, const void *src, size_t len)
{
	const unsigned char *s = src;
	size_t o = 0, i = 0;

	while (i < len) {
		size_t n = utf8_char(s + i, len - i);

		if (n == 1 && (s[i] < 0x20 || s[i] == 0x7f))
			n = 0;
		if (n) {
			if (o + n + 1 > cap)
				break;
			for (size_t k = 0; k < n; k++)
				dst[o++] = (char)s[i + k];
			i += n;
			continue;
		}
		if (o + 4 + 1 > cap)
			break;
		snprintf(dst + o, 5, "\\x%02x", s[i]);
		o += 4;
		i++;
	}
	dst[o] = 0;
	return o;
}
