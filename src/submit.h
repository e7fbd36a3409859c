/*
 * submit.h - the send path for one message: prepare it, relay it, queue what
 * must wait, and say what happened.  Used by main.c (stdin) and smtpd.c
 * (-bs, one call per DATA).
 */
#ifndef POSTIE_SUBMIT_H
#define POSTIE_SUBMIT_H

#include <stdbool.h>
#include <stdio.h>

#include "conf.h"
#include "message.h"
#include "opts.h"
#include "result.h"

struct submit_params {
    const struct opts *opts;
    const struct conf *conf;
    const char *user;        /* login name; NULL: envelope_login_name() when needed */
    const char *smtp_sender; /* -bs only */
    char *const *smtp_rcpts; /* -bs only */
    size_t smtp_nrcpts;
};

struct submit_report {
    bool delivered;    /* every recipient accepted by the smarthost */
    bool queued;       /* (part of) the message is safe in the queue */
    bool flush_wanted; /* a delivery worked: due queued mail may follow */
    char id[48];       /* queue id or message id, for -bs replies */
};

/*
 * Reads, prepares and sends (or queues) one message from in_fd.  Returns
 * the caller's outcome per DESIGN section 6 with a one-line message in r;
 * the message has already been logged.
 */
enum outcome submit_run(const struct submit_params *p, int in_fd, struct submit_report *rep,
                        struct result *r);

/*
 * Where a spool file goes when the queue is off or unusable: $TMPDIR when it
 * is an absolute path and the process is not privileged, else /tmp.
 */
const char *submit_tmpdir(void);

/*
 * -bv: connects, negotiates TLS and AUTH, tests each recipient (aliases and
 * qualification applied) with RCPT, sends no message and prints one line
 * per address on out.  OUTCOME_OK only when every address is accepted.
 */
enum outcome submit_verify(const struct submit_params *p, FILE *out, struct result *r);

#endif
