/*
 * relay.h - one libESMTP session to the smarthost (DESIGN section 5).
 *
 * relay_run() connects once (through bridge.c, which owns the socket and
 * TLS), authenticates, and offers every item in turn over that one
 * connection.  It fills in each recipient's state and last reply, and each
 * item's final reply.  It never exits and never hangs past the account's
 * timeout.
 */
#ifndef POSTIE_RELAY_H
#define POSTIE_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "conf.h"
#include "opts.h"
#include "result.h"

enum relay_state {
    RELAY_PENDING = 0, /* to be tried (input) */
    RELAY_DELIVERED,   /* 2xx to RCPT and to the end of data */
    RELAY_DEFERRED,    /* temporary failure: try again later */
    RELAY_FAILED,      /* permanent failure: give up, bounce */
    RELAY_SKIP,        /* not to be tried (already delivered or failed) */
};

/*
 * A server reply, sanitised: no control characters, at most one line.  The
 * text is shared (relay_text()): replies are copied by value and never own
 * or free it.
 */
struct relay_reply {
    int code;         /* 0 = stage not reached */
    char enh[16];     /* "5.1.1" or "" */
    const char *text; /* NULL: none */
};

/* Longest reply text kept, in octets. */
#define RELAY_TEXT_MAX 255

/*
 * raw as a reply text: up to the first line end, control characters as
 * '?', trailing blanks and anything past RELAY_TEXT_MAX octets dropped;
 * NULL for NULL or an empty result.  Each distinct text is stored once, for
 * the life of the process (a message to 100,000 recipients who are all told
 * "OK" keeps one copy).  Not thread-safe: only postie's main thread calls it.
 */
const char *relay_text(const char *raw);

struct relay_rcpt {
    const char *addr;
    unsigned notify;        /* enum opts_notify bits, 0 = none */
    enum relay_state state; /* in: PENDING or SKIP; out: final state */
    struct relay_reply reply;
    enum result_failure failure; /* why, when DEFERRED or FAILED */
};

struct relay_item {
    const char *sender; /* "" = <> */
    struct relay_rcpt *rcpts;
    size_t nrcpts;
    const char *headers; /* header block, CRLF lines, no empty line */
    size_t headers_len;
    int body_fd; /* canonical CRLF body, read with pread from 0 */
    off_t body_len;
    const char *body_mem; /* or, with body_fd -1, the body_len octets in memory */
    bool eightbit;
    enum opts_body body; /* -B */
    enum opts_ret ret;   /* -R */
    const char *envid;   /* -V, NULL unset */
    /*
     * Optional: called once, before the first byte of the message, when the
     * item is 8-bit and the server does not offer 8BITMIME (RFC 6152).  It
     * may replace headers, headers_len, body_fd, body_mem and body_len (say,
     * with a quoted-printable re-encoding); false sends the message unchanged.
     */
    bool (*downgrade)(struct relay_item *it, void *arg);
    void *downgrade_arg;
    /*
     * Optional: the body is still being read.  Called whenever body_len
     * octets (sent) have been handed to libESMTP: 1 when there may be more
     * (body_len grew, or ask again), 0 at the end of the body (body_len may
     * have grown a last time), -1 to give up the transfer before its final
     * dot, so that nothing is delivered (abandoned is set, and the item's
     * results say nothing of the message).
     */
    int (*more)(struct relay_item *it, void *arg, off_t sent);
    void *more_arg;
    off_t body_estimate; /* with more: the expected body length for SIZE; 0 sends none */
    /* out */
    bool abandoned;              /* more() gave the transfer up */
    struct relay_reply reply;    /* MAIL failure or final reply to the data */
    enum result_failure failure; /* RESULT_FAIL_NONE when every recipient is settled ok */
};

struct relay_settings {
    const struct conf *conf;
    const struct conf_account *account;
    bool verify_only; /* -bv: RCPT only, never transfer a message */
};

/*
 * Runs one session over items[0..n).  Returns OUTCOME_OK when the session
 * ran; the per-item and per-recipient fields then tell what happened (a
 * session-level failure such as a refused connection or a 535 marks every
 * pending recipient DEFERRED or FAILED with that failure and is also
 * returned in *session_failure, with the specific reason in r's text; relay
 * prints nothing itself but the -v transcript).  Returns another outcome only for local
 * errors that make the attempt impossible (configuration: OUTCOME_CONFIG;
 * password_command failure: OUTCOME_CONFIG), with r filled.
 */
enum outcome relay_run(const struct relay_settings *s, struct relay_item *items, size_t n,
                       enum result_failure *session_failure, struct result *r);

/*
 * A reply for people: "550 5.1.1 text", else the reply's own text (a local
 * reason), else fallback, else the failure's description.
 */
void relay_reply_describe(const struct relay_reply *reply, enum result_failure f,
                          const char *fallback, char *buf, size_t len);

/* The libESMTP version string, for --version. */
const char *relay_library_version(void);

#endif
