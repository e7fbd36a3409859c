/*
 * smtpd.h - -bs: the server side of SMTP on stdin/stdout (RFC 5321), as
 * Symfony Mailer, SwiftMailer and Laravel use it.  Each message goes through
 * submit_run(); the reply to the final "." is 250 only once the message is
 * relayed or queued.
 */
#ifndef POSTIE_SMTPD_H
#define POSTIE_SMTPD_H

#include "result.h"
#include "submit.h"

/* Runs one SMTP conversation; returns when the client QUITs or vanishes. */
enum outcome smtpd_run(const struct submit_params *base, int in_fd, int out_fd, struct result *r);

#endif
