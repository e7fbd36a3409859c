/*
 * addr.h - RFC 5322 address lists, validation of wire addresses, and
 * qualification of bare names (DESIGN section 4).
 *
 * The parser takes an unfolded header value (or a command-line argument) and
 * understands: groups ("undisclosed-recipients:;", "Team: a@x, b@x;"),
 * comments (nested, holding commas, parentheses and quoted pairs), quoted
 * strings (holding '<', '>' and commas), quoted local parts, encoded words
 * and raw UTF-8 in display names, empty list members, "Name<a@x>" without a
 * space, domain literals, and the obsolete forms: route addresses
 * "<@a,@b:u@x>" (the route is dropped), CFWS around dots, phrases with dots.
 * A mailbox without "@domain" ("root") is a bare name: it is returned with
 * bare = true and is later aliased and qualified by the caller.
 *
 * Wire addresses (addr_validate) are what goes into MAIL FROM / RCPT TO:
 * printable ASCII only (libESMTP has no SMTPUTF8), no CR, LF, NUL, '<', '>',
 * no whitespace outside a quoted local part, local part at most 64 octets,
 * the whole address at most 254 octets (RFC 5321 path limit 256 minus the
 * angle brackets), and nothing after a closing quote but '@'.
 *
 * No I/O.  Every string returned is owned by the caller's structure.
 */
#ifndef POSTIE_ADDR_H
#define POSTIE_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "result.h"

#define ADDR_LOCAL_MAX 64
#define ADDR_MAX       254

struct addr {
    char *addr;    /* "local@domain" (or "local" when bare) in wire form: the
                    * local part is a dot-atom or a quoted string, comments
                    * and folding removed, the route dropped */
    char *display; /* display name as written (words joined by one space,
                    * quotes removed, encoded words kept); NULL when none */
    char *group;   /* name of the group this mailbox is in; NULL when none */
    bool bare;     /* no "@domain" */
    size_t end;    /* offset in the parsed text just after the local part of
                    * a bare name (where "@domain" is inserted); 0 otherwise */
};

struct addr_list {
    struct addr *v;
    size_t n;
};

/*
 * Parses an address list (header value, unfolded or folded).  Empty members
 * and empty groups yield nothing; an empty or blank text is an empty list.
 * On a syntax error returns OUTCOME_DATAERR with a message quoting the text
 * (shortened) and what was wrong; *out is then empty.  Addresses are not
 * validated here: call addr_validate() on the ones that go on the wire.
 */
enum outcome addr_parse_list(const char *text, struct addr_list *out, struct result *r);

/*
 * Checks a wire address as described above.  Returns OUTCOME_DATAERR with
 * "invalid address <...>: reason" (control characters shown as '?').
 */
enum outcome addr_validate(const char *addr, struct result *r);

/* true when addr has no '@' outside a quoted local part. */
bool addr_is_bare(const char *addr);

/* A new string: addr, plus "@domain" when it is bare and domain is non-empty. */
char *addr_qualify(const char *addr, const char *domain);

/*
 * true when a and b are the same address for de-duplication: the local part
 * compared exactly, the domain case-insensitively.
 */
bool addr_equal(const char *a, const char *b);

/*
 * Rewrites an address-list header value so that every bare name gets
 * "@domain" appended where it stands (comments and display names kept).
 * Returns a new string, or NULL when nothing needed qualifying or the value
 * does not parse.
 */
char *addr_qualify_list(const char *value, const char *domain);

void addr_list_free(struct addr_list *l);

#endif
