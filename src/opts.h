/*
 * opts.h - the sendmail command line (DESIGN section 2).
 *
 * opts_parse() turns argv into a struct opts and does no I/O: it neither
 * prints nor opens anything.  The single strings in struct opts (sender,
 * fullname, config, envid, queue_filter) point into argv (never copied, never
 * freed); args is one allocation owned by the struct (opts_free()).  Flags
 * are accepted in attached (-fuser@x, -oi, -B8BITMIME) and separate
 * (-f user@x) forms, value-less flags may be grouped (-ti), and options may
 * follow recipients (as with glibc getopt); "--" ends the options and
 * everything after it is a recipient, even when it starts with '-'.
 *
 * The personality comes from the basename of argv[0]: "mailq" means -bp,
 * "newaliases" means -bi, anything else is sendmail.
 */
#ifndef POSTIE_OPTS_H
#define POSTIE_OPTS_H

#include <stdbool.h>
#include <stddef.h>

#include "result.h"

enum opts_mode {
    OPTS_MODE_SEND = 0, /* -bm (default): read a message on stdin and send it */
    OPTS_MODE_LIST,     /* -bp, mailq: list the queue */
    OPTS_MODE_FLUSH,    /* -q: attempt queued messages now */
    OPTS_MODE_VERIFY,   /* -bv: check recipients with RCPT, send nothing */
    OPTS_MODE_SMTP,     /* -bs: SMTP on stdin/stdout */
    OPTS_MODE_ALIASES,  /* -bi, -I, newaliases: check the aliases file */
    OPTS_MODE_DELETE,   /* --delete ID...: remove queued messages */
    OPTS_MODE_HELP,     /* --help */
    OPTS_MODE_VERSION,  /* --version */
};

enum opts_body {
    OPTS_BODY_UNSET = 0,
    OPTS_BODY_7BIT,     /* -B7BIT */
    OPTS_BODY_8BITMIME, /* -B8BITMIME */
};

/* -N: DSN notify conditions (bit set); 0 = not given. */
enum opts_notify {
    OPTS_NOTIFY_NEVER = 1 << 0,
    OPTS_NOTIFY_SUCCESS = 1 << 1,
    OPTS_NOTIFY_FAILURE = 1 << 2,
    OPTS_NOTIFY_DELAY = 1 << 3,
};

enum opts_ret {
    OPTS_RET_UNSET = 0,
    OPTS_RET_FULL, /* -R full */
    OPTS_RET_HDRS, /* -R hdrs */
};

/* -oe: how permanent recipient failures are reported. */
enum opts_errors {
    OPTS_ERRORS_PRINT = 0, /* -oep, -oeq, default: stderr and exit status */
    OPTS_ERRORS_MAIL,      /* -oem, -oew: a DSN to the sender, exit 0 */
};

struct opts {
    enum opts_mode mode;
    bool extract;             /* -t */
    bool ignore_dots;         /* -i, -oi: a lone "." does not end the input */
    const char *sender;       /* -f/-r; "" is the null sender <>; NULL unset */
    const char *fullname;     /* -F; NULL unset */
    const char *config;       /* -C FILE; NULL unset */
    bool verbose;             /* -v */
    unsigned notify;          /* -N, enum opts_notify bits */
    enum opts_ret ret;        /* -R */
    const char *envid;        /* -V; NULL unset */
    enum opts_body body;      /* -B */
    bool queue_only;          /* -odq (and -odd) */
    enum opts_errors errors;  /* -oe* */
    bool flush_due_only;      /* --due with -q: only messages whose retry time has come */
    const char *queue_filter; /* -qIsubstr: only ids containing substr; NULL = all */
    char **args;              /* recipients (send/verify) or ids (delete), NULL-terminated;
                                 NULL when nargs == 0; other modes ignore arguments */
    size_t nargs;
};

/*
 * Parses argv.  Returns OUTCOME_OK, or OUTCOME_USAGE with a one-line message
 * naming the offending flag or argument in r.  Recipient arguments are
 * checked for CR, LF, NUL, '<', '>' and unbalanced quotes (OUTCOME_USAGE);
 * so is the -f/-r address.  Recipient arguments are split at commas outside
 * quotes ("a," "b" from Debian cron), blanks trimmed, empty pieces dropped.
 * Send mode without -t and without any recipient is OUTCOME_USAGE.  On
 * failure nothing needs freeing.
 */
enum outcome opts_parse(int argc, char **argv, struct opts *o, struct result *r);

/* Frees o->args (NULL-safe; o may be reused with opts_parse afterwards). */
void opts_free(struct opts *o);

/* The --help text (every flag, including those accepted and ignored). */
const char *opts_help_text(void);

#endif
