/*
 * body.h - what the body needs before it may go on the wire (DESIGN
 * section 4): no line over 998 octets, and a MIME label for 8-bit text.
 *
 * Decisions (body_plan):
 *   - longest line <= 998 octets: the body is sent as it is (BODY_KEEP).
 *   - longer, and the message is single-part text (no Content-Type or a
 *     text/... one; no Content-Transfer-Encoding, or 7bit/8bit/binary):
 *     the body is re-encoded quoted-printable (BODY_QP, RFC 2045 6.7: soft
 *     breaks keep every line within 76 octets, CRLF line ends are kept as
 *     hard breaks, trailing whitespace encoded).  The header gets
 *     MIME-Version: 1.0 (if missing), Content-Transfer-Encoding:
 *     quoted-printable (replacing any other), and, when Content-Type is
 *     missing, "text/plain; charset=utf-8" (valid UTF-8 with 8-bit octets),
 *     "text/plain; charset=us-ascii" (7-bit) or
 *     "text/plain; charset=unknown-8bit" (RFC 1428: 8-bit, not UTF-8).
 *   - longer, anything else (multipart, base64 declared, message/...):
 *     over-long lines are cut at 998 octets by inserting CRLF (BODY_FOLD).
 *   - An unlabelled 8-bit body (no MIME-Version, no Content-Type, no
 *     Content-Transfer-Encoding: typical cron output) that is kept as it is
 *     gets MIME-Version: 1.0, Content-Type: text/plain with the charset as
 *     above, and Content-Transfer-Encoding: 8bit (body_label).
 *
 * Encoding and folding stream from one file descriptor to another with
 * fixed buffers.  The input must be canonical CRLF text (input.c).
 */
#ifndef POSTIE_BODY_H
#define POSTIE_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "header.h"
#include "result.h"

#define BODY_LINE_MAX 998

enum body_plan {
    BODY_KEEP = 0,
    BODY_QP,
    BODY_FOLD,
};

/* The plan for a body whose longest line has longest octets (without CRLF). */
enum body_plan body_plan(const struct header_block *h, size_t longest);

/*
 * Rewrites in_fd (read from offset 0 to its end) into out_fd: quoted-
 * printable (BODY_QP) or folded (BODY_FOLD).  *out_len gets the octets
 * written.  Read errors are OUTCOME_IOERR, write errors OUTCOME_CANTCREAT.
 */
enum outcome body_rewrite(enum body_plan plan, int in_fd, int out_fd, off_t *out_len,
                          struct result *r);

/*
 * Header edits that go with plan (see above).  eightbit and utf8 describe
 * the body as read (before any encoding).
 */
void body_label(struct header_block *h, enum body_plan plan, bool eightbit, bool utf8);

#endif
