/*
 * smtpd.h - -bs: the server side of SMTP on stdin/stdout (RFC 5321), as
 * Symfony Mailer, SwiftMailer and Laravel use it.  Each message goes through
 * submit_run(); the reply to the final "." is 250 only once the message is
 * relayed or queued.
 *
 * The protocol engine (smtpd_serve) is separate from delivery: it calls a
 * hook once per message, so unit tests drive it over pipes with a fake
 * delivery.  smtpd_run() wires the hook to submit_run().
 *
 * What the engine speaks: EHLO/HELO (EHLO advertises 8BITMIME, PIPELINING,
 * SIZE, DSN, ENHANCEDSTATUSCODES; no AUTH: the local user is the identity),
 * MAIL FROM:<...> [BODY= SIZE= RET= ENVID=], RCPT TO:<...> [NOTIFY= ORCPT=],
 * DATA (dot-unstuffing), RSET, NOOP, QUIT, HELP, VRFY (252); EXPN, ETRN,
 * TURN, BDAT, STARTTLS and AUTH are answered 502.  Input is read buffered
 * and replies are written in order, flushed before each wait for input
 * (RFC 2920 pipelining).  Memory is bounded whatever the client sends:
 * command lines are cut at SMTPD_LINE_MAX (over 512 octets, or the larger
 * limits of RFC 1870/3461 for MAIL and RCPT: 500 5.5.2), DATA is streamed
 * to the spool file without holding lines, and a message over the size
 * limit is read to its end and refused with 552.
 *
 * All recipients of one transaction share one DSN NOTIFY set (postie hands
 * the relay one set per message): a RCPT whose NOTIFY differs from the
 * earlier ones gets "452 4.5.3" so that an RFC 5321 client sends it in a
 * later transaction.  ORCPT is checked (type;xtext) but not forwarded.
 */
#ifndef POSTIE_SMTPD_H
#define POSTIE_SMTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "opts.h"
#include "result.h"
#include "submit.h"

/* Default size limit (SIZE in the EHLO reply) for one message, in octets. */
#define SMTPD_MAX_SIZE ((off_t)512 * 1024 * 1024)

/* Default seconds to wait for the client before giving up (RFC 5321 4.5.3.2). */
#define SMTPD_TIMEOUT 300

/* Most recipients in one transaction (RFC 5321 asks for at least 100). */
#define SMTPD_MAX_RCPTS 1000

/* One transaction as the client gave it. */
struct smtpd_envelope {
    const char *sender; /* MAIL FROM address; "" for the null sender <> */
    char *const *rcpts; /* RCPT TO addresses, in order (route dropped) */
    size_t nrcpts;
    unsigned notify;     /* NOTIFY= shared by every recipient (opts_notify bits); 0 none */
    enum opts_body body; /* BODY= */
    enum opts_ret ret;   /* RET= */
    const char *envid;   /* ENVID=, decoded from xtext; NULL when not given */
    off_t size;          /* octets of the unstuffed DATA */
};

struct smtpd_hooks {
    /*
     * Takes one message: fd holds the unstuffed DATA from offset 0 (the
     * engine closes it afterwards).  Returns OUTCOME_OK only when the
     * message was relayed or is safely queued, with rep->id naming it and
     * rep->queued / rep->delivered set; otherwise the outcome and a one-line
     * reason in r, which the engine turns into a 4xx or 5xx reply.
     */
    enum outcome (*deliver)(void *arg, int fd, const struct smtpd_envelope *env,
                            struct submit_report *rep, struct result *r);
    void *arg;
};

struct smtpd_settings {
    const char *hostname;  /* in the greeting and the EHLO reply; NULL: "localhost" */
    const char *spool_dir; /* where DATA is spooled (message_spool_open); NULL: /tmp */
    off_t max_size;        /* 0: SMTPD_MAX_SIZE */
    int timeout;           /* seconds per wait for the client; 0: SMTPD_TIMEOUT */
};

/*
 * Runs one SMTP conversation on in_fd/out_fd with the given delivery hook.
 * Returns OUTCOME_OK after QUIT, or when the client closes the input between
 * transactions.  A client that vanishes (or falls silent past the timeout)
 * in the middle of a transaction gets nothing delivered: the spool file is
 * discarded and the result is OUTCOME_IOERR with an empty text (quiet).
 * Other local failures (the reply cannot be written) are OUTCOME_IOERR too.
 */
enum outcome smtpd_serve(int in_fd, int out_fd, const struct smtpd_settings *set,
                         const struct smtpd_hooks *hooks, struct result *r);

/*
 * The SMTP reply for a delivery outcome other than OUTCOME_OK: writes the
 * three-digit code and the enhanced status code (e.g. 451 and "4.4.1") and
 * returns them.  Temporary conditions (the client may retry) are 4xx,
 * refusals that will not change are 5xx.
 */
int smtpd_reply_for(enum outcome o, const char **enhanced);

/*
 * Decodes RFC 3461 xtext ("+2B" is '+') into a new string; NULL when text
 * is not valid xtext (a '+' not followed by two upper-case hex digits, or a
 * character outside '!'..'~', or '=').
 */
char *smtpd_xtext_decode(const char *text);

/* Runs one SMTP conversation; returns when the client QUITs or vanishes. */
enum outcome smtpd_run(const struct submit_params *base, int in_fd, int out_fd, struct result *r);

#endif
