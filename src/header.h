/*
 * header.h - the header block of a message: parse into fields, edit, render
 * (DESIGN section 4).  No I/O: everything works on strings in memory.
 *
 * A field keeps its exact text ("raw": name, colon, value, folding, CRLF
 * line ends) so untouched fields go out byte for byte as they came in, and
 * an unfolded value for reading.  Field names are compared
 * case-insensitively; repeated fields are kept in order.
 *
 * Generated fields (header_set, header_add) are folded at whitespace so
 * that lines stay within 78 octets where possible.  header_render() makes
 * sure no line exceeds 998 octets: longer lines are folded at whitespace,
 * and a line that cannot be folded is OUTCOME_DATAERR naming the field.
 */
#ifndef POSTIE_HEADER_H
#define POSTIE_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "result.h"

/* Longest line on the wire, without CRLF (RFC 5322 2.1.1). */
#define HEADER_LINE_MAX 998
/* Preferred line length for generated fields. */
#define HEADER_FOLD_AT 78

struct header_field {
    char *name;  /* as written, without ':' and without trailing whitespace */
    char *raw;   /* "Name: value\r\n\tmore\r\n": the whole field, CRLF lines */
    char *value; /* unfolded: CRLFs removed, leading and trailing WSP trimmed */
};

struct header_block {
    struct header_field *v;
    size_t n;
};

/*
 * Parses a header block: CRLF-terminated lines (input.c produces them), each
 * a field "name:" or a continuation (leading SP/HT); no empty line.  A line
 * that is neither is OUTCOME_DATAERR.  h is empty on failure.
 */
enum outcome header_parse(const char *block, size_t len, struct header_block *h, struct result *r);

/* Index of the first field named name at or after from; h->n when none. */
size_t header_find(const struct header_block *h, const char *name, size_t from);

/* Number of fields named name. */
size_t header_count(const struct header_block *h, const char *name);

/* Removes every field named name; returns how many were removed. */
size_t header_remove(struct header_block *h, const char *name);

/* Appends a generated field "Name: value", folded at whitespace. */
void header_add(struct header_block *h, const char *name, const char *value);

/* The same, inserted before field at (at >= n: appended). */
void header_insert(struct header_block *h, size_t at, const char *name, const char *value);

/*
 * Replaces the first field named name by a generated "Name: value" in place
 * (removing any later ones), or appends it when there is none.
 */
void header_set(struct header_block *h, const char *name, const char *value);

/* Removes every field named name after the first; returns how many. */
size_t header_keep_first(struct header_block *h, const char *name);

/* Replaces field i by a generated "Name: value" (same name spelling). */
void header_replace(struct header_block *h, size_t i, const char *value);

/*
 * Merges every field named name into the first one: "To: a, b" from
 * "To: a" and "To: b" (libESMTP drops a repeated To/Cc).  Empty values are
 * skipped.  Returns true when something was merged.
 */
bool header_merge(struct header_block *h, const char *name);

/*
 * Renders the block: every field's raw text in order, CRLF lines, no empty
 * line at the end.  *out is a new string of *len octets.  Lines over
 * HEADER_LINE_MAX are folded at whitespace; OUTCOME_DATAERR when a line
 * cannot be folded ("header Subject: line of 1500 octets cannot be folded").
 */
enum outcome header_render(const struct header_block *h, char **out, size_t *len, struct result *r);

/* RFC 5322 date of t in local time with a numeric zone:
 * "Sat, 28 Nov 2026 19:49:53 +0000" (English names whatever the locale). */
char *header_date(time_t t);

/* A new Message-ID value "<random@hostname>" (random part from getrandom(),
 * hex; falls back to time and pid only if getrandom fails). */
char *header_message_id(const char *hostname);

/*
 * The From value for fullname (NULL or "" for none) and address:
 * "address", "Cron Daemon <address>", "\"Doe, John\" <address>" or
 * "=?UTF-8?B?...?= <address>".  Control characters in fullname become
 * spaces, so -F can never add a header line.
 */
char *header_mailbox(const char *fullname, const char *address);

/* true when the block has a field whose value contains 8-bit octets. */
bool header_is_8bit(const struct header_block *h);

void header_free(struct header_block *h);

#endif
