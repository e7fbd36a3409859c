/*
 * queue.h - the durable queue (DESIGN section 7; on-disk format in
 * doc/QUEUE.md).
 *
 * What postie accepts it never loses: queue_store() returns OUTCOME_OK only
 * once the message is fsync'd and renamed into place and the directory is
 * fsync'd.  Any number of submitters and flushers may run at once; a
 * per-message lock makes sure no message is delivered twice (short of the
 * one at-least-once window described in doc/QUEUE.md: a crash between the
 * smarthost's acceptance and the recording of it).
 */
#ifndef POSTIE_QUEUE_H
#define POSTIE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include "conf.h"
#include "message.h"
#include "opts.h"
#include "relay.h"
#include "result.h"

#define QUEUE_ID_MAX 40

struct queue;

/*
 * Body files: m->body_fd is best an unlinked O_TMPFILE created in the queue
 * directory itself (message_spool_open(queue_dir)); queue_store() then links
 * it into place without copying.  Any other readable fd is copied.
 */

/*
 * Opens (and creates the subdirectories of) dir.  OUTCOME_CANTCREAT when
 * the directory is missing or not writable, with a message saying so.
 */
enum outcome queue_open(const char *dir, struct queue **q, struct result *r);

/*
 * What is stored beside the message.  A message stored without last_error
 * and with no recipient DELIVERED, DEFERRED or FAILED counts as never tried
 * (-odq): it is due at once.
 * Otherwise the submission counts as the first attempt and the next one is
 * due after the first backoff step.
 */
struct queue_meta {
    const struct relay_rcpt *rcpts; /* per-recipient state, m->rcpts order; NULL = all pending */
    unsigned notify;                /* -N bits for every recipient when rcpts is NULL */
    enum opts_body body;
    enum opts_ret ret;
    const char *envid;
    const char *last_error; /* why it is queued; NULL none */
    bool is_bounce;         /* a DSN postie generated (never bounced) */
};

/*
 * Stores m durably.  Recipients in meta->rcpts that are DELIVERED or FAILED
 * are recorded as such and never tried again.  Writes the new id into id
 * ("" and OUTCOME_OK when no recipient is left to try: nothing is stored).
 * OUTCOME_CANTCREAT when anything fails (disk full...); nothing partial is
 * left behind.
 */
enum outcome queue_store(struct queue *q, const struct message *m, const struct queue_meta *meta,
                         char id[QUEUE_ID_MAX], struct result *r);

/*
 * Queues an RFC 3464 bounce for m to its sender, listing the recipients of
 * rcpts[0..n) that are FAILED with their replies.  Does nothing (OUTCOME_OK)
 * for a null sender, when m is itself a bounce, or for recipients whose -N
 * excludes failure notices.  The bounce is due at once (the next -q sends it).
 */
enum outcome queue_bounce(struct queue *q, const struct conf *c, const struct message *m,
                          const struct relay_rcpt *rcpts, size_t n, bool is_bounce,
                          struct result *r);

/* -bp: prints the queue, or "Mail queue is empty". */
enum outcome queue_list(struct queue *q, FILE *out, struct result *r);

struct queue_flush_stats {
    size_t tried, delivered, deferred, bounced, failed;
};

/*
 * -q: attempts queued messages over one connection.  due_only limits the
 * run to messages whose retry time has come; filter (may be NULL) to ids
 * containing it.  Messages locked by another flusher are skipped.
 */
enum outcome queue_flush(struct queue *q, const struct conf *c, bool due_only, const char *filter,
                         struct queue_flush_stats *st, struct result *r);

/* true when at least one message's retry time has come. */
bool queue_has_due(struct queue *q);

/* Removes a queued message by id (OUTCOME_USAGE for an unknown id). */
enum outcome queue_delete(struct queue *q, const char *id, struct result *r);

void queue_close(struct queue *q);

/* ------------------------------------------------------------------
 * The control file and the retry rules, exposed for the unit tests and
 * documented in doc/QUEUE.md.
 */

#define QUEUE_FORMAT_VERSION 1

enum queue_rcpt_state {
    QUEUE_RCPT_PENDING = 0, /* never tried */
    QUEUE_RCPT_DEFERRED,    /* tried, temporary failure: reply kept */
    QUEUE_RCPT_DELIVERED,   /* accepted by the smarthost: never tried again */
    QUEUE_RCPT_FAILED,      /* given up (permanent failure or expired) and reported */
};

struct queue_rcpt {
    char *addr;
    unsigned notify; /* enum opts_notify bits, 0 = default */
    enum queue_rcpt_state state;
    enum result_failure failure; /* why DEFERRED or FAILED */
    struct relay_reply reply;    /* the last reply for this recipient */
};

/* One control file, parsed.  Strings are owned (queue_control_free). */
struct queue_control {
    int version;
    char id[QUEUE_ID_MAX];
    time_t created, last_attempt, next_attempt; /* last_attempt 0 = never */
    unsigned attempts;
    char *sender; /* "" = <> */
    struct queue_rcpt *rcpts;
    size_t nrcpts;
    char *headers; /* CRLF lines, no empty line */
    size_t headers_len;
    off_t body_len; /* size of the body file */
    bool eightbit;
    bool is_bounce;
    enum opts_body body;
    enum opts_ret ret;
    char *envid;      /* NULL unset */
    char *message_id; /* NULL unknown */
    char *last_error; /* NULL none */
};

/* Writes c in the control file format; false on a write error (errno set). */
bool queue_control_write(FILE *out, const struct queue_control *c);

/*
 * Parses a control file.  OUTCOME_DATAERR with "line N: what" when it is
 * corrupt (c is then freed); OUTCOME_UNAVAILABLE when it was written by a
 * newer format version (left alone, not corrupt).  Bounded: a file larger
 * than QUEUE_CONTROL_MAX is corrupt.
 */
#define QUEUE_CONTROL_MAX (16L * 1024 * 1024)
enum outcome queue_control_read(FILE *in, struct queue_control *c, struct result *r);

void queue_control_free(struct queue_control *c);

/* Seconds to wait after the given number of failed attempts (>= 1):
 * 5 min, 10, 20, 40, 80, 160, then 4 h for good. */
long queue_backoff(unsigned attempts);

/* true when a message created at created has outlived lifetime seconds at
 * now (lifetime <= 0 means the default, 5 days). */
bool queue_expired(time_t created, time_t now, long lifetime);

/*
 * Test hooks: the function a flush calls instead of relay_run() (NULL:
 * relay_run), and a fixed clock (0: the real time).
 */
typedef enum outcome (*queue_relay_fn)(const struct relay_settings *s, struct relay_item *items,
                                       size_t n, enum result_failure *session_failure,
                                       struct result *r);
void queue_set_relay(struct queue *q, queue_relay_fn fn);
void queue_set_clock(struct queue *q, time_t now);

#endif
