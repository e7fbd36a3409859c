/*
 * result.h - outcomes of the pipeline stages and the one table that turns
 * them into sysexits codes (DESIGN section 6).
 *
 * Every stage returns an enum outcome (OUTCOME_OK = 0) and, on failure, fills
 * a struct result with a one-line human message that names what failed and
 * where.  Only main.c turns the outcome into an exit status, through
 * result_exit_code().
 */
#ifndef POSTIE_RESULT_H
#define POSTIE_RESULT_H

#include <stdarg.h>
#include <stdbool.h>

enum outcome {
    OUTCOME_OK = 0,
    OUTCOME_USAGE,       /* 64 bad command line, unsupported mode, bad address argument */
    OUTCOME_DATAERR,     /* 65 unusable message (no recipients, bad header address...) */
    OUTCOME_NOINPUT,     /* 66 an input file (aliases) does not exist */
    OUTCOME_NOUSER,      /* 67 some recipients rejected permanently, the rest delivered */
    OUTCOME_UNAVAILABLE, /* 69 the smarthost refused the message permanently */
    OUTCOME_SOFTWARE,    /* 70 internal error */
    OUTCOME_OSERR,       /* 71 system error (fork, out of memory...) */
    OUTCOME_CANTCREAT,   /* 73 the queue could not be written */
    OUTCOME_IOERR,       /* 74 reading the input failed */
    OUTCOME_TEMPFAIL,    /* 75 temporary failure, message not queued */
    OUTCOME_PROTOCOL,    /* 76 the server broke the protocol */
    OUTCOME_NOPERM,      /* 77 credentials rejected */
    OUTCOME_CONFIG,      /* 78 configuration error or unsafe permissions */
};

/* Longest message a result carries, including the terminating NUL. */
#define RESULT_TEXT_MAX 512

struct result {
    enum outcome outcome;
    char text[RESULT_TEXT_MAX];
};

/*
 * Records outcome o and a printf-style message in r (truncated to fit; CR, LF
 * and other control characters are replaced by '?', so server text and user
 * input can never forge a second line).  Returns o so callers can write
 * `return result_set(r, OUTCOME_CONFIG, "...")`.  r may be NULL.
 */
enum outcome result_set(struct result *r, enum outcome o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
enum outcome result_vset(struct result *r, enum outcome o, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Clears r to OUTCOME_OK with an empty text. */
void result_clear(struct result *r);

/* The sysexits code of o (0 for OUTCOME_OK). */
int result_exit_code(enum outcome o);

/* The sysexits name of o, e.g. "EX_TEMPFAIL" (for logs and tests). */
const char *result_name(enum outcome o);

/*
 * How a delivery attempt ended for a message, as the relay and queue see it.
 * result_delivery() maps it to the caller's outcome per DESIGN section 6:
 *   - all delivered                              -> OK
 *   - queued (temporary failure, queue on)       -> OK (stderr still says why)
 *   - temporary failure, queue off or unusable   -> TEMPFAIL (or CANTCREAT when
 *                                                   the queue write itself failed)
 *   - some recipients permanently rejected       -> NOUSER, or OK with -oem/-oew
 *                                                   once the DSN is queued
 *   - message refused permanently                -> UNAVAILABLE
 *   - credentials rejected and not queued        -> NOPERM
 *   - protocol violation and not queued          -> PROTOCOL
 */
enum result_failure {
    RESULT_FAIL_NONE = 0,
    RESULT_FAIL_RESOLVE,        /* host name did not resolve (temporary) */
    RESULT_FAIL_CONNECT,        /* connection refused / unreachable (temporary) */
    RESULT_FAIL_TIMEOUT,        /* server silent past the timeout (temporary) */
    RESULT_FAIL_TLS,            /* TLS handshake failed (temporary, loud) */
    RESULT_FAIL_CERT,           /* certificate not trusted or wrong name (temporary, loud) */
    RESULT_FAIL_STARTTLS,       /* STARTTLS required but not offered (temporary, loud) */
    RESULT_FAIL_AUTH_REJECTED,  /* 535 and friends */
    RESULT_FAIL_AUTH_NOMECH,    /* no usable AUTH mechanism offered */
    RESULT_FAIL_AUTH_CLEARTEXT, /* credentials would cross an unencrypted link */
    RESULT_FAIL_GREETING,       /* 4xx/5xx greeting or EHLO */
    RESULT_FAIL_TEMP_REPLY,     /* 4xx to MAIL, RCPT or DATA */
    RESULT_FAIL_PERM_REPLY,     /* 5xx to MAIL or DATA (whole message) */
    RESULT_FAIL_SOME_RCPTS,     /* 5xx to some RCPTs, the rest delivered or deferred */
    RESULT_FAIL_DROPPED,        /* connection lost mid-dialogue (temporary) */
    RESULT_FAIL_PROTOCOL,       /* unparsable or out-of-sequence server reply */
    RESULT_FAIL_EXTENSION,      /* a required extension (8BITMIME...) not offered */
    RESULT_FAIL_LOCAL,          /* local error (memory, spool read...) */
};

/* true when a failure of this kind is worth retrying later. */
bool result_failure_is_temporary(enum result_failure f);

/*
 * The outcome a caller sees for failure f.  queued says whether the message
 * (or its deferred recipients) is now safe in the queue; dsn_mailed says
 * whether permanent recipient failures were turned into a queued DSN
 * (-oem/-oew).
 */
enum outcome result_delivery(enum result_failure f, bool queued, bool dsn_mailed);

/* A short lower-case phrase for f, e.g. "connection refused" (for messages). */
const char *result_failure_text(enum result_failure f);

#endif
