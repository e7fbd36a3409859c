/*
 * message.c - runs the intake stages for one message; see message.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "aliases.h"
#include "body.h"
#include "envelope.h"
#include "fdio.h"
#include "header.h"
#include "input.h"
#include "log.h"
#include "mem.h"
#include "message.h"

#define MESSAGE_DEFAULT_ALIASES "/etc/aliases"

int message_spool_open(const char *dir, struct result *r)
{
    if (dir == NULL || dir[0] == '\0') {
        dir = getenv("TMPDIR");
        if (dir == NULL || dir[0] == '\0')
            dir = "/tmp";
    }
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL) {
        /* file system without O_TMPFILE: a named file, unlinked at once */
        char *path = mem_printf("%s/postie-spool.XXXXXX", dir);
        fd = mkostemp(path, O_CLOEXEC);
        if (fd >= 0)
            unlink(path);
        free(path);
        if (fd >= 0)
            return fd;
    }
    result_set(r, OUTCOME_CANTCREAT, "cannot create a spool file in %s: %s", dir, strerror(errno));
    return -1;
}

/* A memory file (memfd) for a body that may stay small; -1 where there is none. */
static int message_spool_memory(void)
{
#ifdef HAVE_MEMFD_CREATE
    return memfd_create("postie-spool", MFD_CLOEXEC);
#else
    return -1;
#endif
}

/* Moves the body held in memory (m->body_mem, body_len octets) into a new
 * rewound spool (a memfd, else a file in spool_dir) and frees it; returns
 * the descriptor, or -1 with r set and m unchanged. */
static int message_spool_take(struct message *m, off_t body_len, const char *spool_dir,
                              struct result *r)
{
    int fd = message_spool_memory();
    if (fd < 0)
        fd = message_spool_open(spool_dir, r);
    if (fd < 0)
        return -1;
    int e = fdio_write_all(fd, m->body_mem, (size_t)body_len);
    if (e == 0 && lseek(fd, 0, SEEK_SET) < 0)
        e = errno;
    if (e != 0) {
        close(fd);
        result_set(r, OUTCOME_CANTCREAT, "cannot write the message spool file: %s", strerror(e));
        return -1;
    }
    free(m->body_mem);
    m->body_mem = NULL;
    return fd;
}

static const char *message_hostname(const struct conf *c)
{
    static char host[256];
    if (c != NULL && c->hostname != NULL && c->hostname[0] != '\0')
        return c->hostname;
    if (host[0] == '\0' && gethostname(host, sizeof host - 1) != 0)
        strcpy(host, "localhost");
    return host;
}

/* The first Resent- field (the newest resend's block), or h->n. */
static size_t message_first_resent(const struct header_block *h)
{
    size_t i = 0;
    while (i < h->n && strncasecmp(h->v[i].name, "Resent-", 7) != 0)
        i++;
    return i;
}

/* The From: postie writes when there is none: the sender, else the login name. */
static char *message_from_value(const struct message_params *p, const struct envelope *env,
                                const char *domain)
{
    char *addr;
    if (env->sender[0] != '\0') {
        addr = mem_strdup(env->sender);
    } else {
        const char *user = p->user && p->user[0] ? p->user : envelope_login_name();
        addr = addr_qualify(user, domain);
    }
    char *v = header_mailbox(p->opts ? p->opts->fullname : NULL, addr);
    free(addr);
    return v;
}

/* Header edits of DESIGN section 4, once the envelope is known. */
static void message_edit_headers(const struct message_params *p, const struct envelope *env,
                                 struct header_block *h)
{
    const char *domain = envelope_qualify_domain(p->conf);
    bool resent = message_first_resent(h) < h->n;
    header_remove(h, "Bcc");
    header_remove(h, "Resent-Bcc");
    /* libESMTP keeps only the first of these: merge the lists, keep the first single */
    header_merge(h, "To");
    header_merge(h, "Cc");
    header_merge(h, "Reply-To");
    header_keep_first(h, "Date");
    header_keep_first(h, "Message-ID");
    header_keep_first(h, "From");
    header_keep_first(h, "Sender");
    envelope_qualify_headers(h, domain);
    /* no visible recipient left (none, or only empty To:/Cc: fields): say so */
    bool visible = false;
    for (size_t i = 0; i < h->n && !visible; i++) {
        visible = (strcasecmp(h->v[i].name, "To") == 0 || strcasecmp(h->v[i].name, "Cc") == 0) &&
                  h->v[i].value[0] != '\0';
    }
    if (!visible) {
        header_remove(h, "To");
        header_remove(h, "Cc");
        header_add(h, "To", "undisclosed-recipients:;");
    }
    if (header_find(h, "From", 0) == h->n) {
        char *from = message_from_value(p, env, domain);
        header_add(h, "From", from);
        free(from);
    }
    if (header_find(h, "Date", 0) == h->n) {
        char *d = header_date(time(NULL));
        header_add(h, "Date", d);
        free(d);
    }
    if (header_find(h, "Message-ID", 0) == h->n) {
        char *id = header_message_id(message_hostname(p->conf));
        header_add(h, "Message-ID", id);
        free(id);
    }
    /* A resend (RFC 5322 section 3.6.6) gets what its Resent- block lacks,
     * inserted at the top of that block, as Postfix's cleanup does. */
    size_t at = message_first_resent(h);
    if (resent && header_find(h, "Resent-Message-ID", 0) == h->n) {
        char *id = header_message_id(message_hostname(p->conf));
        header_insert(h, at, "Resent-Message-ID", id);
        free(id);
    }
    if (resent && header_find(h, "Resent-From", 0) == h->n) {
        char *from = message_from_value(p, env, domain);
        header_insert(h, at, "Resent-From", from);
        free(from);
    }
    if (resent && header_find(h, "Resent-Date", 0) == h->n) {
        char *d = header_date(time(NULL));
        header_insert(h, at, "Resent-Date", d);
        free(d);
    }
}

/* The intake of one message; outlives message_prepare() while the body is
 * still being read (message_params.stream_after). */
struct message_intake {
    struct input_params ip;
    struct input *in;
    struct input_result res;
    int fd;        /* the spool; input.c writes through &fd (a spill moves it) */
    int in_fd;     /* the input, polled while streaming */
    bool waits;    /* in_fd may wait on a writer (not a regular file) */
    bool redo;     /* what the relay is sending no longer fits the body */
    bool ended;    /* the input has ended, plain: message_more() said END */
    bool release;  /* message_params.release_after_send */
    bool released; /* ... and the spool has been emptied */
    const char *spool_dir;
    struct result err; /* the input's errors, read or spool */
};

/* input_params.open: the body outgrew the input's block; a memfd while it may
 * stay under MESSAGE_SPOOL_MEMORY. */
static int message_spool_first(void *arg, struct result *r)
{
    struct message_intake *k = arg;
    int fd = message_spool_memory();
    if (fd >= 0)
        return fd;
    k->ip.spill = NULL; /* in a file already: it never moves */
    return message_spool_open(k->spool_dir, r);
}

/* input_params.spill: the body outgrew MESSAGE_SPOOL_MEMORY. */
static int message_spool_spill(void *arg, struct result *r)
{
    const struct message_intake *k = arg;
    return message_spool_open(k->spool_dir, r);
}

static void message_intake_free(struct message_intake *k)
{
    if (k == NULL)
        return;
    input_close(k->in);
    input_result_free(&k->res);
    if (k->fd >= 0)
        close(k->fd);
    free(k);
}

/* The body can go out with the header block as it is now: 7-bit, no line
 * over 998 octets (what body_plan() and body_label() leave alone). */
static bool message_body_plain(const struct input_result *in)
{
    return !in->body_8bit && in->longest_line <= BODY_LINE_MAX;
}

/*
 * The body's plan (kept, re-encoded or folded into a new spool file that
 * replaces *fd) and labels for what the input found, and the header block
 * rendered into m with the fields that depend on them.
 */
static enum outcome message_shape(struct message *m, struct header_block *h,
                                  const struct input_result *in, const char *spool_dir, int *fd,
                                  struct result *r)
{
    enum body_plan plan = body_plan(h, in->longest_line);
    off_t body_len = in->body_len;
    enum outcome o = OUTCOME_OK;
    if (plan != BODY_KEEP) {
        /* rewritten from a descriptor: a body held in memory gets one */
        if (*fd < 0) {
            *fd = message_spool_take(m, body_len, spool_dir, r);
            if (*fd < 0)
                return r ? r->outcome : OUTCOME_CANTCREAT;
        }
        int nfd = message_spool_open(spool_dir, r);
        if (nfd < 0)
            return r ? r->outcome : OUTCOME_CANTCREAT;
        o = body_rewrite(plan, *fd, nfd, &body_len, r);
        close(*fd);
        *fd = nfd;
        if (o != OUTCOME_OK)
            return o;
    }
    body_label(h, plan, in->body_8bit, in->body_utf8);
    char *rendered = NULL;
    size_t rendered_len = 0;
    o = header_render(h, &rendered, &rendered_len, r);
    if (o != OUTCOME_OK)
        return o;
    free(m->headers);
    m->headers = rendered;
    m->headers_len = rendered_len;
    m->body_len = body_len;
    m->eightbit = header_is_8bit(h) || (in->body_8bit && plan != BODY_QP);
    m->reencoded = plan == BODY_QP;
    m->body_8bit = in->body_8bit && plan != BODY_QP;
    m->folded = plan == BODY_FOLD;
    return OUTCOME_OK;
}

static void message_warn_nul(const struct input_result *in)
{
    if (in->nul_removed > 0)
        log_warn("removed %zu NUL octet%s from the message body", in->nul_removed,
                 in->nul_removed == 1 ? "" : "s");
}

enum outcome message_prepare(const struct message_params *p, int in_fd, struct message *m,
                             struct result *r)
{
    memset(m, 0, sizeof *m);
    m->body_fd = -1;
    bool smtp = p->smtp_sender != NULL || p->smtp_rcpts != NULL;
    struct header_block h = {0};
    struct aliases *al = NULL;
    struct envelope env = {0};

    struct message_intake *k = mem_alloc(sizeof *k);
    k->in_fd = in_fd;
    k->spool_dir = p->spool_dir;
    k->release = p->release_after_send;
    k->ip.ignore_dots = smtp || (p->opts && p->opts->ignore_dots);
    /* The body stays in the input's block while it fits (the typical message
     * needs no descriptor at all), then goes on in a memfd, and moves to a
     * file in spool_dir only when it grows past MESSAGE_SPOOL_MEMORY (one that
     * must wait is copied into the queue). */
    k->fd = -1;
    k->ip.open = message_spool_first;
    k->ip.spill_at = MESSAGE_SPOOL_MEMORY;
    k->ip.spill = message_spool_spill;
    k->ip.spill_arg = k;
    k->in = input_open(in_fd, &k->fd, &k->ip, &k->res, &k->err);
    /* Read to the end, or (stream_after) until a large plain body is under
     * way: the rest is read while the relay sends it (message_more()). */
    enum outcome o = OUTCOME_OK;
    bool done = false;
    while (o == OUTCOME_OK && !done) {
        /* streaming may start: keep the spool up to date (body_len exact) */
        o = input_step(k->in, p->stream_after > 0, &done);
        if (p->stream_after > 0 && !done && input_in_body(k->in) &&
            k->res.body_len >= p->stream_after && message_body_plain(&k->res))
            break;
    }
    if (o != OUTCOME_OK && r != NULL)
        *r = k->err;
    off_t estimate = 0;
    if (o == OUTCOME_OK && !done) {
        struct stat st;
        k->waits = fstat(in_fd, &st) != 0 || !S_ISREG(st.st_mode);
        off_t at = k->waits ? -1 : lseek(in_fd, 0, SEEK_CUR);
        if (at >= 0 && st.st_size >= at && k->res.body_read > 0)
            estimate =
                k->res.body_len + (off_t)((double)(st.st_size - at) * (double)k->res.body_len /
                                          (double)k->res.body_read);
    }
    if (o == OUTCOME_OK)
        o = header_parse(k->res.headers, k->res.headers_len, &h, r);
    if (o == OUTCOME_OK && done)
        message_warn_nul(&k->res);
    if (o == OUTCOME_OK && p->conf != NULL && p->conf->aliases != NULL &&
        p->conf->aliases[0] != '\0') {
        bool optional = strcmp(p->conf->aliases, MESSAGE_DEFAULT_ALIASES) == 0;
        o = aliases_load(p->conf->aliases, optional, &al, r);
    }
    if (o == OUTCOME_OK) {
        struct envelope_params ep = {
            .opts = p->opts,
            .conf = p->conf,
            .aliases = al,
            .user = p->user,
            .headers = &h,
            .smtp = smtp,
            .smtp_sender = p->smtp_sender,
            .smtp_rcpts = p->smtp_rcpts,
            .smtp_nrcpts = p->smtp_nrcpts,
        };
        o = envelope_build(&ep, &env, r);
    }
    if (o == OUTCOME_OK && done)
        m->body_mem = input_take_body(k->in);
    if (o == OUTCOME_OK) {
        message_edit_headers(p, &env, &h);
        o = message_shape(m, &h, &k->res, p->spool_dir, &k->fd, r);
    }
    /* Streaming, the spool is written on at its end: rewound in message_finish(). */
    if (o == OUTCOME_OK && done && k->fd >= 0 && lseek(k->fd, 0, SEEK_SET) < 0)
        o = result_set(r, OUTCOME_IOERR, "cannot rewind the message spool file: %s",
                       strerror(errno));
    if (o == OUTCOME_OK) {
        size_t id = header_find(&h, "Message-ID", 0);
        m->sender = env.sender;
        m->rcpts = env.rcpts;
        m->nrcpts = env.nrcpts;
        env.sender = NULL;
        env.rcpts = NULL;
        env.nrcpts = 0;
        m->message_id = mem_strdup(id < h.n ? h.v[id].value : "");
        m->nul_removed = k->res.nul_removed;
        m->body_fd = k->fd;
        m->body_estimate = estimate;
        if (done) {
            k->fd = -1;
            message_intake_free(k);
        } else {
            m->intake = k; /* owns the spool until message_finish() */
        }
        k = NULL;
    }
    /* Refused before the end of the input (streaming would have begun): read
     * the rest, as a message read whole first would have been, so that the
     * writer sees the exit status, not a broken pipe. */
    if (k != NULL && o != OUTCOME_OK && !done)
        (void)input_rest(k->in);
    envelope_free(&env);
    aliases_free(al);
    header_free(&h);
    message_intake_free(k);
    if (o != OUTCOME_OK)
        message_free(m);
    return o;
}

/*
 * Called once the input has ended (k->ended).
 * release_after_send: the whole body is spooled and has been handed on, and
 * nothing will read the spool again.  Freeing its pages now, while the
 * server still works through what is in flight, spares the caller the wait
 * at exit (12 ms for 100 MB here).
 */
static void message_release(struct message_intake *k, off_t sent, off_t body_len)
{
    if (!k->release || k->released || sent < body_len)
        return;
    k->released = true;
    if (ftruncate(k->fd, 0) != 0)
        log_debug("cannot empty the message spool file early: %s", strerror(errno));
}

enum message_more message_more(struct message *m, off_t sent)
{
    struct message_intake *k = m->intake;
    if (k == NULL)
        return MESSAGE_MORE_END;
    if (k->redo)
        return MESSAGE_MORE_REDO;
    if (k->ended) {
        message_release(k, sent, m->body_len);
        return MESSAGE_MORE_END;
    }
    if (k->waits) {
        /* An input that pauses would hold the server in DATA: give up the
         * transfer and read the rest before sending again. */
        struct pollfd pfd = {.fd = k->in_fd, .events = POLLIN};
        int n;
        do
            n = poll(&pfd, 1, MESSAGE_STREAM_PAUSE_MS);
        while (n < 0 && errno == EINTR);
        if (n == 0) {
            log_debug("the input paused for over %d ms while the message was being sent",
                      MESSAGE_STREAM_PAUSE_MS);
            k->redo = true;
            return MESSAGE_MORE_REDO;
        }
    }
    bool done = false;
    if (input_step(k->in, true, &done) != OUTCOME_OK)
        return MESSAGE_MORE_ERROR;
    m->body_fd = k->fd;
    m->body_len = k->res.body_len;
    if (!message_body_plain(&k->res)) {
        log_debug("the body has %s further on: the message is sent again from the start",
                  k->res.body_8bit ? "8-bit octets" : "a line over 998 octets");
        k->redo = true;
        return MESSAGE_MORE_REDO;
    }
    if (!done)
        return MESSAGE_MORE_DATA;
    k->ended = true;
    message_release(k, sent, m->body_len);
    return MESSAGE_MORE_END;
}

enum outcome message_finish(struct message *m, struct result *r)
{
    struct message_intake *k = m->intake;
    if (k == NULL)
        return OUTCOME_OK;
    m->intake = NULL;
    m->body_fd = -1;
    m->body_estimate = 0;
    enum outcome o = input_rest(k->in);
    if (o != OUTCOME_OK && r != NULL)
        *r = k->err;
    if (o == OUTCOME_OK) {
        message_warn_nul(&k->res);
        m->nul_removed = k->res.nul_removed;
        m->body_len = k->res.body_len;
    }
    if (o == OUTCOME_OK && !message_body_plain(&k->res)) {
        /* the plan and labels the header block was made without */
        struct header_block h;
        o = header_parse(m->headers, m->headers_len, &h, r);
        if (o == OUTCOME_OK) {
            o = message_shape(m, &h, &k->res, k->spool_dir, &k->fd, r);
            header_free(&h);
        }
    }
    /* Not a failure of its own: a body that went out whole must not be
     * reported undelivered, and every reader uses pread() or seeks itself. */
    if (o == OUTCOME_OK) {
        (void)lseek(k->fd, 0, SEEK_SET);
        m->body_fd = k->fd;
        k->fd = -1;
    }
    message_intake_free(k);
    return o;
}

enum outcome message_body_spool(struct message *m, const char *spool_dir, struct result *r)
{
    if (m->body_fd >= 0 || m->body_mem == NULL)
        return OUTCOME_OK;
    int fd = message_spool_take(m, m->body_len, spool_dir, r);
    if (fd < 0)
        return r ? r->outcome : OUTCOME_CANTCREAT;
    m->body_fd = fd;
    return OUTCOME_OK;
}

enum outcome message_downgrade(struct message *m, const char *spool_dir, struct result *r)
{
    if (!m->body_8bit)
        return OUTCOME_OK;
    struct header_block h;
    enum outcome o = header_parse(m->headers, m->headers_len, &h, r);
    if (o != OUTCOME_OK)
        return o;
    /* body_plan() says QP for single-part text once lines are "too long" */
    if (body_plan(&h, BODY_LINE_MAX + 1) != BODY_QP) {
        header_free(&h);
        return result_set(r, OUTCOME_DATAERR,
                          "the server does not accept 8-bit data (no 8BITMIME) and the 8-bit "
                          "body is not single-part text that could be re-encoded");
    }
    /* rewritten from a descriptor: a body held in memory gets one */
    o = message_body_spool(m, spool_dir, r);
    if (o != OUTCOME_OK) {
        header_free(&h);
        return o;
    }
    int nfd = message_spool_open(spool_dir, r);
    off_t len = 0;
    char *rendered = NULL;
    size_t rlen = 0;
    if (nfd < 0)
        o = r->outcome;
    if (o == OUTCOME_OK)
        o = body_rewrite(BODY_QP, m->body_fd, nfd, &len, r);
    if (o == OUTCOME_OK) {
        /* an 8-bit body has a Content-Type by now (message_prepare labels it) */
        body_label(&h, BODY_QP, true, false);
        o = header_render(&h, &rendered, &rlen, r);
    }
    if (o == OUTCOME_OK && lseek(nfd, 0, SEEK_SET) < 0)
        o = result_set(r, OUTCOME_IOERR, "cannot rewind the message spool file: %s",
                       strerror(errno));
    header_free(&h);
    if (o != OUTCOME_OK) {
        free(rendered);
        if (nfd >= 0)
            close(nfd);
        lseek(m->body_fd, 0, SEEK_SET);
        return o;
    }
    close(m->body_fd);
    m->body_fd = nfd;
    m->body_len = len;
    free(m->headers);
    m->headers = rendered;
    m->headers_len = rlen;
    m->body_8bit = false;
    m->reencoded = true;
    for (size_t i = 0; i < rlen; i++) {
        if ((unsigned char)rendered[i] >= 0x80)
            return OUTCOME_OK;
    }
    m->eightbit = false;
    return OUTCOME_OK;
}

void message_free(struct message *m)
{
    if (m == NULL)
        return;
    if (m->intake != NULL) {
        message_intake_free(m->intake); /* closes the spool, which body_fd names */
        m->intake = NULL;
        m->body_fd = -1;
    }
    free(m->sender);
    for (size_t i = 0; i < m->nrcpts; i++)
        free(m->rcpts[i]);
    free(m->rcpts);
    free(m->headers);
    free(m->message_id);
    free(m->body_mem);
    if (m->body_fd >= 0)
        close(m->body_fd);
    memset(m, 0, sizeof *m);
    m->body_fd = -1;
}
