/*
 * submit.c - the send path for one message: prepare it, relay it, queue what
 * must wait, and say what happened (DESIGN sections 4-7).
 *
 * The order matters for "never lose a message": the body is spooled into the
 * queue directory (an unlinked O_TMPFILE) before the first attempt, so a
 * temporary failure only has to fsync and link it into place; when the first
 * attempt succeeds nothing is fsync'd at all.
 */
#include "config.h"

#include "submit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "aliases.h"
#include "envelope.h"
#include "log.h"
#include "mem.h"
#include "privs.h"
#include "queue.h"
#include "relay.h"

const char *submit_tmpdir(void)
{
    const char *t = privs_elevated() ? NULL : getenv("TMPDIR");
    return t != NULL && t[0] == '/' ? t : "/tmp";
}

/*
 * A body read from the caller that has passed this many octets, 7-bit with
 * short lines so far, is sent while the rest is read (message.h,
 * stream_after): a large message then costs little more time than sending
 * it, instead of reading plus sending.  Smaller ones are read whole first.
 */
#define SUBMIT_STREAM_AFTER (1024 * 1024)

static bool submit_queue_enabled(const struct conf *c)
{
    return c->queue_dir != NULL && c->queue_dir[0] != '\0';
}

/* Counts recipients by state. */
struct submit_tally {
    size_t delivered, deferred, failed;
    enum result_failure temp_failure; /* the first temporary failure seen */
    enum result_failure perm_failure; /* the first permanent failure seen */
};

static struct submit_tally submit_count(const struct relay_item *it)
{
    struct submit_tally t = {0};
    for (size_t i = 0; i < it->nrcpts; i++) {
        const struct relay_rcpt *rc = &it->rcpts[i];
        if (rc->state == RELAY_DELIVERED) {
            t.delivered++;
        } else if (rc->state == RELAY_FAILED) {
            t.failed++;
            if (t.perm_failure == RESULT_FAIL_NONE)
                t.perm_failure =
                    rc->failure != RESULT_FAIL_NONE ? rc->failure : RESULT_FAIL_PERM_REPLY;
        } else {
            t.deferred++;
            if (t.temp_failure == RESULT_FAIL_NONE)
                t.temp_failure =
                    rc->failure != RESULT_FAIL_NONE ? rc->failure : RESULT_FAIL_TEMP_REPLY;
        }
    }
    return t;
}

/* The one syslog line per message. */
static void submit_log_line(const struct message *m, const struct relay_item *it,
                            const struct conf_account *a, const char *id, const char *status,
                            const char *why)
{
    char rcpts[1024];
    size_t off = 0;
    rcpts[0] = '\0';
    for (size_t i = 0; i < it->nrcpts && off < sizeof rcpts; i++) {
        int n =
            snprintf(rcpts + off, sizeof rcpts - off, "%s<%s>", i ? "," : "", it->rcpts[i].addr);
        if (n < 0)
            break;
        off += (size_t)n;
    }
    log_info("id=%s from=<%s> to=%s size=%lld relay=%s:%d status=%s%s%s%s", id, m->sender, rcpts,
             (long long)(m->headers_len + 2 + (size_t)m->body_len), a ? a->host : "none",
             a ? a->port : 0, status, why ? " (" : "", why ? why : "", why ? ")" : "");
}

/* What the 8BITMIME downgrade needs (relay_item.downgrade). */
struct submit_downgrade {
    struct message *m;
    const char *spool_dir;
};

/* Every recipient of m, to be tried, with no result yet. */
static void submit_rcpts_pending(struct relay_rcpt *rcpts, const struct message *m,
                                 const struct opts *o)
{
    for (size_t i = 0; i < m->nrcpts; i++)
        rcpts[i] =
            (struct relay_rcpt){.addr = m->rcpts[i], .notify = o->notify, .state = RELAY_PENDING};
}

/* The item's copy of what the message holds now. */
static void submit_item_update(struct relay_item *it, const struct message *m)
{
    it->headers = m->headers;
    it->headers_len = m->headers_len;
    it->body_fd = m->body_fd;
    it->body_len = m->body_len;
    it->body_mem = m->body_mem;
    it->eightbit = m->eightbit;
}

/* A server without 8BITMIME: re-encode a single-part 8-bit text body. */
static bool submit_downgrade(struct relay_item *it, void *arg)
{
    struct submit_downgrade *d = arg;
    struct result r;
    result_clear(&r);
    enum outcome o = message_downgrade(d->m, d->spool_dir, &r);
    /* even a failed attempt may have moved a body held in memory to a spool */
    submit_item_update(it, d->m);
    if (o != OUTCOME_OK) {
        log_warn("%s; sending it as it is", r.text);
        return false;
    }
    return true;
}

/* relay_item.more: the body of a message still being read (stream_after). */
static int submit_more(struct relay_item *it, void *arg, off_t sent)
{
    struct message *m = arg;
    enum message_more k = message_more(m, sent);
    submit_item_update(it, m);
    return k == MESSAGE_MORE_DATA ? 1 : k == MESSAGE_MORE_END ? 0 : -1;
}

/* Stores m with the per-recipient states of it; fills rep->id.  A body still
 * in memory gets a spool first (in spool_dir where there is no memfd). */
static enum outcome submit_store(struct queue *q, struct message *m, const char *spool_dir,
                                 const struct relay_item *it, const struct opts *o, const char *why,
                                 struct submit_report *rep, struct result *r)
{
    enum outcome spooled = message_body_spool(m, spool_dir, r);
    if (spooled != OUTCOME_OK)
        return spooled;
    struct queue_meta meta = {
        .rcpts = it != NULL ? it->rcpts : NULL,
        .body = o->body,
        .ret = o->ret,
        .envid = o->envid,
        .notify = o->notify,
        .last_error = why,
    };
    char id[QUEUE_ID_MAX];
    enum outcome rc = queue_store(q, m, &meta, id, r);
    if (rc == OUTCOME_OK) {
        rep->queued = true;
        snprintf(rep->id, sizeof rep->id, "%s", id);
    }
    return rc;
}

enum outcome submit_run(const struct submit_params *p, int in_fd, struct submit_report *rep,
                        struct result *r)
{
    const struct opts *o = p->opts;
    const struct conf *conf = p->conf;
    memset(rep, 0, sizeof *rep);
    result_clear(r);

    /* The queue first: the body is spooled where it may have to stay. */
    struct queue *q = NULL;
    struct result qerr;
    result_clear(&qerr);
    const char *spool_dir = submit_tmpdir();
    if (submit_queue_enabled(conf)) {
        if (queue_open(conf->queue_dir, &q, &qerr) == OUTCOME_OK) {
            spool_dir = conf->queue_dir;
        } else {
            log_warn("%s", qerr.text);
            q = NULL;
        }
    }
    if (o->queue_only && q == NULL) {
        if (qerr.text[0] != '\0')
            return result_set(r, OUTCOME_CANTCREAT, "%s", qerr.text);
        return result_set(r, OUTCOME_CANTCREAT, "-odq needs a queue, and queue_dir is empty");
    }

    struct message_params mp = {
        .opts = o,
        .conf = conf,
        .user = p->user,
        .spool_dir = spool_dir,
        .smtp_sender = p->smtp_sender,
        .smtp_rcpts = p->smtp_rcpts,
        .smtp_nrcpts = p->smtp_nrcpts,
        /* A large body read from the caller goes out while it is read. */
        .stream_after = o->queue_only || p->smtp_sender != NULL || p->smtp_rcpts != NULL
                            ? 0
                            : SUBMIT_STREAM_AFTER,
        /* Without a queue, a message that went out whole is never read again. */
        .release_after_send = q == NULL,
    };
    struct message m;
    enum outcome rc = message_prepare(&mp, in_fd, &m, r);
    if (rc != OUTCOME_OK) {
        if (q != NULL)
            queue_close(q);
        return rc;
    }
    snprintf(rep->id, sizeof rep->id, "%s", m.message_id ? m.message_id : "");

    const struct conf_account *acct = conf_account_for(conf, m.sender);
    struct relay_rcpt *rcpts = NULL;
    if ((o->queue_only || acct == NULL) && (rc = message_finish(&m, r)) != OUTCOME_OK)
        goto out;
    rcpts = mem_array(m.nrcpts, sizeof *rcpts);
    submit_rcpts_pending(rcpts, &m, o);
    struct relay_item it = {
        .sender = m.sender,
        .rcpts = rcpts,
        .nrcpts = m.nrcpts,
        .headers = m.headers,
        .headers_len = m.headers_len,
        .body_fd = m.body_fd,
        .body_len = m.body_len,
        .body_mem = m.body_mem,
        .eightbit = m.eightbit,
        .body = o->body,
        .ret = o->ret,
        .envid = o->envid,
    };
    struct submit_downgrade dg = {.m = &m, .spool_dir = spool_dir};
    it.downgrade = submit_downgrade;
    it.downgrade_arg = &dg;
    if (m.intake != NULL) {
        it.more = submit_more;
        it.more_arg = &m;
        it.body_estimate = m.body_estimate;
    }

    if (o->queue_only) {
        rc = submit_store(q, &m, spool_dir, NULL, o, NULL, rep, r);
        submit_log_line(&m, &it, acct, rep->id, rc == OUTCOME_OK ? "queued" : "lost",
                        rc == OUTCOME_OK ? "-odq" : r->text);
        goto out;
    }
    if (acct == NULL) {
        if (q != NULL) {
            rc = submit_store(q, &m, spool_dir, NULL, o, "no smarthost is configured", rep, r);
            if (rc == OUTCOME_OK)
                result_set(r, OUTCOME_OK, "no smarthost is configured; message queued as %s",
                           rep->id);
        } else {
            rc = result_set(r, OUTCOME_CONFIG, "no smarthost is configured (no account in %s)",
                            conf->path ? conf->path : SYSCONFDIR "/postie.conf");
        }
        goto out;
    }

    struct relay_settings rs = {.conf = conf, .account = acct, .verify_only = false};
    enum result_failure session = RESULT_FAIL_NONE;
    struct result rerr;
    result_clear(&rerr);
    rc = relay_run(&rs, &it, 1, &session, &rerr);
    if (m.intake != NULL) {
        /* The rest of the input, whatever became of the session: a message
         * that must wait is stored whole.  An input that fails here was not
         * delivered (the transfer could not reach its final dot) and is
         * refused as if it had failed before sending. */
        enum outcome fo = message_finish(&m, r);
        if (fo != OUTCOME_OK) {
            rc = fo;
            goto out;
        }
        submit_item_update(&it, &m);
        it.more = NULL;
        if (rc == OUTCOME_OK && it.abandoned) {
            /* Given up before the final dot: nothing was delivered.  Again,
             * with the message as it is now complete. */
            log_debug("sending the message again, now that it is read to its end");
            submit_rcpts_pending(it.rcpts, &m, o);
            it.reply = (struct relay_reply){0};
            it.failure = RESULT_FAIL_NONE;
            it.abandoned = false;
            result_clear(&rerr);
            rc = relay_run(&rs, &it, 1, &session, &rerr);
        }
    }
    if (rc != OUTCOME_OK) {
        /* A local problem (e.g. password_command failed): keep the message if we can. */
        if (q != NULL && submit_store(q, &m, spool_dir, NULL, o, rerr.text, rep, r) == OUTCOME_OK) {
            submit_log_line(&m, &it, acct, rep->id, "deferred", rerr.text);
            rc = result_set(r, OUTCOME_OK, "%s; message queued as %s", rerr.text, rep->id);
        } else {
            submit_log_line(&m, &it, acct, rep->id, "failed", rerr.text);
            rc = result_set(r, rerr.outcome, "%s", rerr.text);
        }
        goto out;
    }

    struct submit_tally t = submit_count(&it);
    char why[RESULT_TEXT_MAX] = "";
    if (t.deferred > 0) {
        const struct relay_rcpt *first = NULL;
        for (size_t i = 0; i < it.nrcpts && first == NULL; i++)
            if (it.rcpts[i].state != RELAY_DELIVERED && it.rcpts[i].state != RELAY_FAILED)
                first = &it.rcpts[i];
        if (session != RESULT_FAIL_NONE && rerr.text[0] != '\0')
            snprintf(why, sizeof why, "%s", rerr.text);
        else if (first != NULL && first->reply.code != 0)
            relay_reply_describe(&first->reply, t.temp_failure, NULL, why, sizeof why);
        else if (it.reply.code != 0)
            relay_reply_describe(&it.reply, t.temp_failure, NULL, why, sizeof why);
        else
            snprintf(why, sizeof why, "%s", result_failure_text(t.temp_failure));
    }

    /* Name every permanently rejected recipient; the first one's reply goes into r. */
    char rejected[400] = "";
    for (size_t i = 0; i < it.nrcpts; i++) {
        if (it.rcpts[i].state != RELAY_FAILED)
            continue;
        char d[400];
        relay_reply_describe(it.rcpts[i].reply.code ? &it.rcpts[i].reply : &it.reply,
                             it.rcpts[i].failure, NULL, d, sizeof d);
        log_error("<%s>: %s", it.rcpts[i].addr, d);
        /* Truncation is fine here: r holds one line anyway. */
        if (rejected[0] == '\0' &&
            snprintf(rejected, sizeof rejected, "<%s>: %s", it.rcpts[i].addr, d) < 0)
            rejected[0] = '\0';
    }

    bool queued = false;
    struct result serr;
    result_clear(&serr);
    if (t.deferred > 0 && q != NULL) {
        if (submit_store(q, &m, spool_dir, &it, o, why, rep, &serr) == OUTCOME_OK)
            queued = true;
        else
            log_error("%s", serr.text);
    }
    bool dsn_mailed = false;
    if (t.failed > 0 && o->errors == OPTS_ERRORS_MAIL && q != NULL) {
        if (queue_bounce(q, conf, &m, it.rcpts, it.nrcpts, false, &serr) == OUTCOME_OK)
            dsn_mailed = m.sender[0] != '\0';
        else
            log_error("%s", serr.text);
    }

    /* What the caller sees: a permanent failure outranks a deferral. */
    enum result_failure kind = RESULT_FAIL_NONE;
    if (t.failed > 0) {
        bool whole = it.failure == RESULT_FAIL_PERM_REPLY || it.failure == RESULT_FAIL_EXTENSION ||
                     session != RESULT_FAIL_NONE;
        kind =
            whole && t.delivered == 0 && t.deferred == 0 ? t.perm_failure : RESULT_FAIL_SOME_RCPTS;
        if (kind == RESULT_FAIL_PERM_REPLY || kind == RESULT_FAIL_EXTENSION)
            kind = whole ? kind : RESULT_FAIL_SOME_RCPTS;
    } else if (t.deferred > 0) {
        kind = session != RESULT_FAIL_NONE ? session : t.temp_failure;
    }
    rc = result_delivery(kind, queued, dsn_mailed);

    if (t.failed == 0 && t.deferred == 0) {
        rep->delivered = true;
        rep->flush_wanted = true;
        submit_log_line(&m, &it, acct, rep->id, "sent", NULL);
    } else if (t.failed > 0) {
        char d[400];
        relay_reply_describe(&it.reply, kind, NULL, d, sizeof d);
        submit_log_line(&m, &it, acct, rep->id, "bounced", t.deferred ? why : d);
        if (rc != OUTCOME_OK)
            result_set(r, rc, "%s: %zu of %zu recipients rejected%s (%s)",
                       result_failure_text(kind), t.failed, it.nrcpts,
                       queued ? "; the rest are queued" : "", rejected);
        else
            result_set(r, OUTCOME_OK, "%zu of %zu recipients rejected; %s", t.failed, it.nrcpts,
                       dsn_mailed ? "a delivery status notification was queued"
                                  : "see the messages above");
        rep->flush_wanted = t.delivered > 0;
    } else if (queued) {
        submit_log_line(&m, &it, acct, rep->id, "deferred", why);
        result_set(r, OUTCOME_OK, "%s; message queued as %s", why, rep->id);
    } else {
        submit_log_line(&m, &it, acct, rep->id, "deferred", why);
        result_set(r, rc, "%s%s", why,
                   q == NULL && submit_queue_enabled(conf)
                       ? "; the queue is unusable, message not queued"
                   : q == NULL ? "; the queue is off, message not queued"
                               : "; message not queued");
    }

out:
    free(rcpts);
    message_free(&m);
    if (q != NULL)
        queue_close(q);
    return rc;
}

enum outcome submit_verify(const struct submit_params *p, FILE *out, struct result *r)
{
    const struct opts *o = p->opts;
    const struct conf *conf = p->conf;
    result_clear(r);
    if (o->nargs == 0)
        return result_set(r, OUTCOME_USAGE, "-bv needs at least one address");
    const struct conf_account *acct = conf_account_for(conf, o->sender);
    if (acct == NULL)
        return result_set(r, OUTCOME_CONFIG, "no smarthost is configured");

    /* The same aliases, qualification and validation as a real message. */
    struct aliases *al = NULL;
    if (conf->aliases != NULL && conf->aliases[0] != '\0') {
        enum outcome rc = aliases_load(conf->aliases, true, &al, r);
        if (rc != OUTCOME_OK)
            return rc;
    }
    struct envelope_params ep = {.opts = o, .conf = conf, .aliases = al, .user = p->user};
    struct envelope env;
    enum outcome rc = envelope_build(&ep, &env, r);
    aliases_free(al);
    if (rc != OUTCOME_OK)
        return rc;

    struct relay_rcpt *rcpts = mem_array(env.nrcpts, sizeof *rcpts);
    for (size_t i = 0; i < env.nrcpts; i++)
        rcpts[i].addr = env.rcpts[i];
    struct relay_item it = {
        .sender = env.sender, .rcpts = rcpts, .nrcpts = env.nrcpts, .body_fd = -1};
    struct relay_settings rs = {.conf = conf, .account = acct, .verify_only = true};
    enum result_failure session = RESULT_FAIL_NONE;
    rc = relay_run(&rs, &it, 1, &session, r);
    if (rc == OUTCOME_OK) {
        size_t bad = 0;
        for (size_t i = 0; i < env.nrcpts; i++) {
            char d[400];
            relay_reply_describe(&rcpts[i].reply, rcpts[i].failure, NULL, d, sizeof d);
            bool ok = rcpts[i].state == RELAY_DELIVERED;
            fprintf(out, "%s: %s (%s)\n", rcpts[i].addr,
                    ok                               ? "deliverable"
                    : rcpts[i].state == RELAY_FAILED ? "rejected"
                                                     : "deferred",
                    d);
            bad += !ok;
        }
        if (session != RESULT_FAIL_NONE)
            rc = result_set(r, result_delivery(session, false, false), "%s",
                            result_failure_text(session));
        else if (bad > 0)
            rc =
                result_set(r, OUTCOME_NOUSER, "%zu of %zu addresses not accepted", bad, env.nrcpts);
    }
    free(rcpts);
    envelope_free(&env);
    return rc;
}
