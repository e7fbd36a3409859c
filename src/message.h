/*
 * message.h - one message made ready for the wire: envelope, final header
 * block and canonical body (DESIGN section 4).
 *
 * message_prepare() runs the intake stages in order:
 *   input (stdin -> header block in memory + canonical CRLF body: in the
 *   input's 32 KiB block while it fits, then in a memfd up to
 *   MESSAGE_SPOOL_MEMORY octets, then in an unlinked file in spool_dir)
 *   -> header parse -> envelope (sender, recipients, aliases,
 *   qualification, de-duplication) -> header edits (strip Bcc/Resent-Bcc,
 *   merge To/Cc, add Date/Message-ID/From, qualify) -> body checks (8-bit,
 *   lines over 998 octets re-encoded or folded).
 *
 * With stream_after, a large plain body is prepared before it is read to
 * its end, and the rest is read while the relay sends it: message_more()
 * per block, message_finish() for whatever is left and for a body that
 * turned out not to be plain (the relay then gives the transfer up).
 */
#ifndef POSTIE_MESSAGE_H
#define POSTIE_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "conf.h"
#include "opts.h"
#include "result.h"

/* Body octets held in memory before the spool moves to a file. */
#define MESSAGE_SPOOL_MEMORY (128 * 1024)

struct message {
    char *sender; /* envelope sender; "" is the null sender <> */
    char **rcpts; /* qualified, validated, de-duplicated */
    size_t nrcpts;
    char *headers; /* final header block: CRLF-terminated lines, no empty line */
    size_t headers_len;
    int body_fd; /* canonical CRLF body, read from offset 0; -1 none */
    off_t body_len;
    /* Or, with body_fd -1, a body small enough to have stayed in memory:
     * body_len octets (message_body_spool() gives it a descriptor). */
    char *body_mem;
    bool eightbit;      /* 8-bit octets in the header block or body */
    char *message_id;   /* the Message-ID value, for logs */
    size_t nul_removed; /* NUL octets dropped from the body (already warned about) */
    bool reencoded;     /* the body was re-encoded quoted-printable (long lines) */
    bool folded;        /* over-long body lines were cut at 998 octets */
    bool body_8bit;     /* 8-bit octets in the body as it will be sent */
    /* Non-NULL: the body is still being read (stream_after); body_len grows
     * with message_more() until message_finish(). */
    struct message_intake *intake;
    /* Meanwhile, the length the body is expected to reach (the input is a
     * regular file: what is left of it, scaled as the body so far was); 0
     * when unknown (a pipe). */
    off_t body_estimate;
};

struct message_params {
    const struct opts *opts; /* -t, -i, -f, -F, -B, recipients in args */
    const struct conf *conf;
    const char *user;      /* login name (default sender); NULL: envelope_login_name() */
    const char *spool_dir; /* where O_TMPFILE body files are created (NULL: TMPDIR) */
    /* Set by -bs: envelope from MAIL/RCPT instead of opts (never -t). */
    const char *smtp_sender;
    char *const *smtp_rcpts;
    size_t smtp_nrcpts;
    /*
     * > 0: message_prepare() may return before the end of the input, once
     * the body has passed this many octets and is so far 7-bit with no line
     * over 998 octets.  The message is then prepared for a body that stays
     * that way; the relay sends it while message_more() reads the rest.
     */
    off_t stream_after;
    /*
     * With stream_after: nothing reads the spool once the whole body has
     * been sent (there is no queue to store the message in), so
     * message_more() empties it then.  body_len keeps the length.
     */
    bool release_after_send;
};

/*
 * Reads one message from in_fd and prepares it (rules: input.h, header.h,
 * envelope.h, body.h).  The body is sent after headers and one empty line:
 * the relay writes headers, "\r\n", then body_fd's content.  In -bs mode
 * (smtp_sender or smtp_rcpts set) the input is the already un-stuffed DATA,
 * so a lone "." line is text.  NUL octets removed from the body are counted
 * in nul_removed and warned about (log_warn) here.
 *
 * On OUTCOME_OK, m is filled and owns its strings and its body: body_mem
 * for a body of 32 KiB at most (body_fd -1), else body_fd (a memfd, or an
 * unlinked O_TMPFILE in spool_dir for a body over MESSAGE_SPOOL_MEMORY;
 * rewound to offset 0).  Failures: OUTCOME_DATAERR (no recipients, bad
 * address in a header, NUL in the header block, header block over 1 MiB, a
 * header line that cannot be folded, alias loop), OUTCOME_USAGE (bad -f or
 * recipient argument), OUTCOME_CONFIG (aliases file syntax, bad account
 * "from"), OUTCOME_NOINPUT (aliases file unreadable), OUTCOME_IOERR (read
 * failed), OUTCOME_CANTCREAT (spool file).  Nothing is left behind on
 * failure; m is then zeroed with body_fd = -1.
 */
enum outcome message_prepare(const struct message_params *p, int in_fd, struct message *m,
                             struct result *r);

/* How long an input that may wait on its writer (a pipe) may pause while
 * the message is being sent, before the transfer is given up. */
#define MESSAGE_STREAM_PAUSE_MS 1000

enum message_more {
    MESSAGE_MORE_DATA,  /* body_len grew (or not yet: ask again) */
    MESSAGE_MORE_END,   /* the input has ended; the message is final */
    MESSAGE_MORE_REDO,  /* the body turned 8-bit or got a line over 998
                           octets (the header block or the plan must change),
                           or the input paused: what was sent is void */
    MESSAGE_MORE_ERROR, /* reading or spooling failed (message_finish() says how) */
};

/*
 * For a message still being read: reads one more block into the spool and
 * updates body_len (and body_fd); sent is how much of the body the caller
 * has sent so far.  Once it has said END, REDO or ERROR it says so again.
 * Without an open intake: MESSAGE_MORE_END.
 */
enum message_more message_more(struct message *m, off_t sent);

/*
 * Reads the rest of the input (no more pauses are noticed), warns about NUL
 * octets, and when the body did not stay 7-bit with short lines, makes the
 * plan, labels and header block fit it (as message_prepare() would have).
 * body_fd is rewound to 0 after.  A read or spool failure is returned with
 * r filled (what message_prepare() returns for it); body_fd is then -1 and
 * m is for message_free() only.  It can fail only before message_more()
 * said END (a body that said END needs nothing more), so a failure means
 * the relay never completed the transfer.  Nothing to do without an open
 * intake.
 */
enum outcome message_finish(struct message *m, struct result *r);

/*
 * Gives a body held in memory (body_mem) its own spool, for a reader that
 * needs a descriptor (the queue, re-encoding): a memfd, or an unlinked file
 * in spool_dir, rewound; body_mem is freed.  OUTCOME_OK at once when the
 * body has a descriptor or none is held, OUTCOME_CANTCREAT when the spool
 * cannot be made (m is then unchanged).
 */
enum outcome message_body_spool(struct message *m, const char *spool_dir, struct result *r);

/* Opens an unlinked O_RDWR temporary file in dir (O_TMPFILE; on file systems
 * without it, mkostemp() + unlink()).  dir NULL or "": $TMPDIR, else /tmp.
 * Returns the fd, or -1 with OUTCOME_CANTCREAT in r. */
int message_spool_open(const char *dir, struct result *r);

/*
 * For a server without 8BITMIME: re-encodes an 8-bit single-part text body
 * quoted-printable (new spool file in spool_dir, headers re-rendered with
 * Content-Transfer-Encoding: quoted-printable and MIME-Version), so the
 * message becomes 7-bit.  OUTCOME_OK when the body is now 7-bit (or already
 * was); OUTCOME_DATAERR when it cannot be converted (multipart or other
 * non-text 8-bit body) -- m is then unchanged.  A spool that cannot be made
 * or written fails it too (OUTCOME_CANTCREAT, OUTCOME_IOERR): the message is
 * then the same, but a body held in memory may have moved to body_fd, so a
 * copy of body_fd/body_mem must be taken again either way.  8-bit header
 * octets are not touched (m->eightbit stays true for them).
 */
enum outcome message_downgrade(struct message *m, const char *spool_dir, struct result *r);

void message_free(struct message *m);

#endif
