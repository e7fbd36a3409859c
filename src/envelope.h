/*
 * envelope.h - the envelope sender and the recipient list of one message
 * (DESIGN section 4).
 *
 * Sender: -bs MAIL FROM, else -f/-r ("" and "<>" are the null sender), else
 * the default account's "from", else user@qualify_domain.  A bare name is
 * qualified.  A bad -f/-r is OUTCOME_USAGE.
 *
 * Recipients:
 *   -bs:  the RCPT TO addresses;
 *   no -t: the command-line arguments (each may be an address list, e.g.
 *          cron's "a," or "Name <a@x>");
 *   -t:   To, Cc, Bcc of the header block -- or, when any Resent-To,
 *         Resent-Cc or Resent-Bcc is present, those alone -- plus the
 *         command-line arguments (as Postfix and msmtp do).
 * Nothing else is ever read for recipients (not Subject, X-Original-To,
 * nor anything in the body).  Bare names go through the aliases, then are
 * qualified with the qualify domain; an address whose domain is localhost,
 * the hostname or the qualify domain also goes through the aliases when its
 * local part is an alias.  Every address is validated (addr_validate) and
 * the list is de-duplicated (addr_equal).  A bad command-line address is
 * OUTCOME_USAGE, a bad header address OUTCOME_DATAERR naming the header and
 * the address, no recipient at all OUTCOME_DATAERR "no recipients".
 */
#ifndef POSTIE_ENVELOPE_H
#define POSTIE_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>

#include "aliases.h"
#include "conf.h"
#include "header.h"
#include "opts.h"
#include "result.h"

struct envelope_index;

struct envelope {
    char *sender; /* "" is the null sender */
    char **rcpts;
    size_t nrcpts;
    size_t cap;                   /* allocated slots in rcpts */
    struct envelope_index *index; /* hash set for de-duplication (private) */
};

struct envelope_params {
    const struct opts *opts;
    const struct conf *conf;
    const struct aliases *aliases;      /* NULL: none */
    const char *user;                   /* login name; NULL: envelope_login_name() */
    const struct header_block *headers; /* for -t; may be NULL otherwise */
    bool smtp;                          /* -bs: use smtp_sender / smtp_rcpts */
    const char *smtp_sender;
    char *const *smtp_rcpts;
    size_t smtp_nrcpts;
};

/* The domain that bare names get: qualify_domain, else hostname, else the
 * system host name.  Never NULL (a static or conf-owned string). */
const char *envelope_qualify_domain(const struct conf *c);

/* Fills e (e is zeroed first).  Nothing to free on failure. */
enum outcome envelope_build(const struct envelope_params *p, struct envelope *e, struct result *r);

/*
 * Adds one address list text (an argument, a header value) to e: parsed,
 * aliased, qualified, validated, de-duplicated.  Failures carry outcome
 * bad and name "what" (e.g. "header To" or "recipient argument").
 */
enum outcome envelope_add(const struct envelope_params *p, struct envelope *e, const char *text,
                          const char *what, enum outcome bad, struct result *r);

/*
 * Qualifies bare names in the address headers To, Cc, From, Sender,
 * Reply-To and their Resent- forms, in place (display names and comments
 * kept).  Headers that do not parse are left as they are.
 */
void envelope_qualify_headers(struct header_block *h, const char *domain);

void envelope_free(struct envelope *e);

/* The caller's login name from the password database (never $USER), or
 * "uidN" when the uid has no entry.  Looked up once, only when needed: a
 * message with -f and a From: field never asks for it. */
const char *envelope_login_name(void);

#endif
