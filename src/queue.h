/*
 * queue.h - the durable queue (DESIGN section 7; on-disk format in
 * doc/QUEUE.md).
 *
 * What postie accepts it never loses: queue_store() returns OUTCOME_OK only
 * once the message is fsync'd and renamed into place and the directory is
 * fsync'd.  Any number of submitters and flushers may run at once; a
 * per-message lock makes sure no message is delivered twice.
 */
#ifndef POSTIE_QUEUE_H
#define POSTIE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "conf.h"
#include "message.h"
#include "opts.h"
#include "relay.h"
#include "result.h"

#define QUEUE_ID_MAX 40

struct queue;

/*
 * Opens (and creates the subdirectories of) dir.  OUTCOME_CANTCREAT when
 * the directory is missing or not writable, with a message saying so.
 */
enum outcome queue_open(const char *dir, struct queue **q, struct result *r);

/* What is stored beside the message. */
struct queue_meta {
    const struct relay_rcpt *rcpts; /* per-recipient state; NULL = all pending */
    enum opts_body body;
    enum opts_ret ret;
    const char *envid;
    const char *last_error;         /* why it is queued; NULL none */
    bool is_bounce;                 /* a DSN postie generated (never bounced) */
};

/*
 * Stores m durably.  Recipients in meta->rcpts that are DELIVERED or FAILED
 * are recorded as such and never tried again.  Writes the new id into id.
 * OUTCOME_CANTCREAT when anything fails (disk full...); nothing partial is
 * left behind.
 */
enum outcome queue_store(struct queue *q, const struct message *m, const struct queue_meta *meta,
                         char id[QUEUE_ID_MAX], struct result *r);

/*
 * Queues an RFC 3464 bounce for m to its sender, listing the recipients of
 * rcpts[0..n) that are FAILED with their replies.  Does nothing (OUTCOME_OK)
 * for a null sender or when m is itself a bounce.
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

#endif
