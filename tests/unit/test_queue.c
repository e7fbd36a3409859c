/*
 * test_queue.c - the queue: control file format, corrupt files, retry
 * schedule and lifetime, store/list/delete, flush decisions (with a fake
 * relay) and RFC 3464 bounces.
 */
#include "testlib.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"
#include "queue.h"

/* ------------------------------------------------------------------ helpers */

static char tmpdir[256];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_queue.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int rm_rf(const char *path)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    return system(cmd);
}

static int teardown_dir(void **state)
{
    (void)state;
    rm_rf(tmpdir);
    return 0;
}

/* Number of entries in tmpdir/sub ending in suffix. */
static size_t count_files(const char *sub, const char *suffix)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, sub);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name), k = strlen(suffix);
        if (de->d_name[0] != '.' && len > k && strcmp(de->d_name + len - k, suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* The id of the only (or first) control file in tmpdir/sub, or "". */
static void first_id(const char *sub, const char *skip, char id[QUEUE_ID_MAX])
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, sub);
    id[0] = '\0';
    DIR *d = opendir(path);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".ctl") == 0 &&
            (skip == NULL || strncmp(de->d_name, skip, len - 4) != 0)) {
            snprintf(id, QUEUE_ID_MAX, "%.*s", (int)(len - 4), de->d_name);
            break;
        }
    }
    closedir(d);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = (n + 4096 + 1) * 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t got = fread(buf + n, 1, 4096, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

static void read_control(const char *sub, const char *id, struct queue_control *c)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s%s%s.ctl", tmpdir, sub, sub[0] ? "/" : "", id);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    struct result r;
    assert_int_equal(queue_control_read(f, c, &r), OUTCOME_OK);
    fclose(f);
}

static void write_file(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A message with an O_TMPFILE body in the queue directory. */
struct testmsg {
    struct message m;
    char *rcpts[3];
};

static void make_message(struct testmsg *t, const char *sender, const char *r1, const char *r2,
                         const char *body)
{
    memset(t, 0, sizeof *t);
    t->m.sender = (char *)sender;
    t->rcpts[0] = (char *)r1;
    t->rcpts[1] = (char *)r2;
    t->m.rcpts = t->rcpts;
    t->m.nrcpts = r2 != NULL ? 2 : 1;
    t->m.headers = "From: Alice <alice@example.org>\r\nTo: bob@example.com\r\n"
                   "Subject: test\r\nMessage-ID: <m1@example.org>\r\n";
    t->m.headers_len = strlen(t->m.headers);
    t->m.message_id = "<m1@example.org>";
    t->m.body_fd = open(tmpdir, O_TMPFILE | O_RDWR, 0600);
    assert_true(t->m.body_fd >= 0);
    assert_int_equal(write(t->m.body_fd, body, strlen(body)), (ssize_t)strlen(body));
    t->m.body_len = (off_t)strlen(body);
}

static struct conf_account test_account = {.name = "default", .host = "127.0.0.1", .port = 25};

static struct conf test_conf(long lifetime)
{
    struct conf c = {0};
    c.hostname = "box.example";
    c.qualify_domain = "box.example";
    c.queue_lifetime = lifetime;
    c.accounts = &test_account;
    c.naccounts = 1;
    return c;
}

/* ------------------------------------------------------------------ fake relay */

struct fake {
    int calls;
    size_t nitems;
    size_t pending_seen; /* recipients handed over as PENDING */
    size_t skipped_seen;
    char sender[128];
    char body[8192];
    char headers[1024];
    /* per-address reply: code 250 delivered, 4xx deferred, 5xx failed */
    const char *addr_fail;
    int fail_code;
    bool all_defer;     /* a connection-level failure */
    enum outcome local; /* != OK: a local error */
};
static struct fake fake;

static enum outcome fake_relay(const struct relay_settings *s, struct relay_item *items, size_t n,
                               enum result_failure *session_failure, struct result *r)
{
    assert_non_null(s->account);
    fake.calls++;
    fake.nitems += n;
    if (fake.local != OUTCOME_OK)
        return result_set(r, fake.local, "password_command failed");
    for (size_t i = 0; i < n; i++) {
        struct relay_item *it = &items[i];
        snprintf(fake.sender, sizeof fake.sender, "%s", it->sender);
        snprintf(fake.headers, sizeof fake.headers, "%.*s", (int)it->headers_len, it->headers);
        ssize_t got = pread(it->body_fd, fake.body, sizeof fake.body - 1, 0);
        assert_true(got >= 0);
        fake.body[got] = '\0';
        assert_int_equal((off_t)got, it->body_len);
        for (size_t k = 0; k < it->nrcpts; k++) {
            struct relay_rcpt *rc = &it->rcpts[k];
            if (rc->state == RELAY_SKIP) {
                fake.skipped_seen++;
                continue;
            }
            assert_int_equal(rc->state, RELAY_PENDING);
            fake.pending_seen++;
            if (fake.all_defer) {
                rc->state = RELAY_DEFERRED;
                rc->failure = RESULT_FAIL_CONNECT;
                *session_failure = RESULT_FAIL_CONNECT;
            } else if (fake.addr_fail != NULL && strcmp(rc->addr, fake.addr_fail) == 0) {
                rc->reply.code = fake.fail_code;
                snprintf(rc->reply.enh, sizeof rc->reply.enh, "%d.1.1", fake.fail_code / 100);
                rc->reply.text = relay_text("mailbox says no");
                rc->state = fake.fail_code >= 500 ? RELAY_FAILED : RELAY_DEFERRED;
                rc->failure =
                    fake.fail_code >= 500 ? RESULT_FAIL_SOME_RCPTS : RESULT_FAIL_TEMP_REPLY;
            } else {
                rc->state = RELAY_DELIVERED;
                rc->reply.code = 250;
                rc->reply.text = relay_text("ok");
            }
        }
    }
    if (fake.all_defer)
        result_set(r, OUTCOME_OK, "cannot connect to 127.0.0.1 port 25: Connection refused");
    return OUTCOME_OK;
}

static struct queue *open_queue(void)
{
    struct queue *q;
    struct result r;
    assert_int_equal(queue_open(tmpdir, &q, &r), OUTCOME_OK);
    queue_set_relay(q, fake_relay);
    memset(&fake, 0, sizeof fake);
    return q;
}

static void store(struct queue *q, const char *sender, const char *r1, const char *r2,
                  char id[QUEUE_ID_MAX])
{
    struct testmsg t;
    make_message(&t, sender, r1, r2, "hello\r\n");
    struct queue_meta meta = {.last_error = "connection refused"};
    struct result r;
    assert_int_equal(queue_store(q, &t.m, &meta, id, &r), OUTCOME_OK);
    assert_true(id[0] != '\0');
    close(t.m.body_fd);
}

/* ------------------------------------------------------------------ format */

static void test_control_round_trip(void **state)
{
    (void)state;
    struct queue_rcpt rcpts[3] = {
        {.addr = "\"john doe\"@example.com",
         .notify = OPTS_NOTIFY_FAILURE | OPTS_NOTIFY_DELAY,
         .state = QUEUE_RCPT_DEFERRED,
         .failure = RESULT_FAIL_TEMP_REPLY,
         .reply = {.code = 450, .enh = "4.2.0", .text = "mailbox busy 100% (try later)"}},
        {.addr = "-", .state = QUEUE_RCPT_DELIVERED, .reply = {.code = 250, .text = "ok"}},
        {.addr = "x@y",
         .notify = OPTS_NOTIFY_NEVER,
         .state = QUEUE_RCPT_FAILED,
         .failure = RESULT_FAIL_SOME_RCPTS,
         .reply = {.code = 550, .enh = "5.1.1"}},
    };
    const char *headers = "Subject: caf\xc3\xa9 %41\r\n\tcontinued\r\nX-Empty:\r\n";
    struct queue_control c = {
        .version = 1,
        .id = "20261128194954-0123456789ab",
        .created = 1764359394,
        .last_attempt = 1764359400,
        .next_attempt = 1764359700,
        .attempts = 3,
        .sender = "",
        .rcpts = rcpts,
        .nrcpts = 3,
        .headers = (char *)headers,
        .headers_len = strlen(headers),
        .body_len = 12345,
        .eightbit = true,
        .is_bounce = true,
        .body = OPTS_BODY_8BITMIME,
        .ret = OPTS_RET_HDRS,
        .envid = "env id+2B",
        .message_id = "<a b@c>",
        .last_error = "450 4.2.0 busy\ttab",
    };
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_true(queue_control_write(f, &c));
    fclose(f);
    assert_non_null(strstr(text, "postie-queue 1\n"));
    assert_non_null(strstr(text, "\nend\n"));

    f = fmemopen(text, len, "r");
    struct queue_control d;
    struct result r;
    assert_int_equal(queue_control_read(f, &d, &r), OUTCOME_OK);
    fclose(f);
    assert_string_equal(d.id, c.id);
    assert_int_equal(d.created, c.created);
    assert_int_equal(d.last_attempt, c.last_attempt);
    assert_int_equal(d.next_attempt, c.next_attempt);
    assert_int_equal(d.attempts, 3);
    assert_string_equal(d.sender, "");
    assert_int_equal(d.nrcpts, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(d.rcpts[i].addr, rcpts[i].addr);
        assert_int_equal(d.rcpts[i].notify, rcpts[i].notify);
        assert_int_equal(d.rcpts[i].state, rcpts[i].state);
        assert_int_equal(d.rcpts[i].failure, rcpts[i].failure);
        assert_int_equal(d.rcpts[i].reply.code, rcpts[i].reply.code);
        assert_string_equal(d.rcpts[i].reply.enh, rcpts[i].reply.enh);
        /* no text is NULL on both sides */
        assert_string_equal(d.rcpts[i].reply.text ? d.rcpts[i].reply.text : "(none)",
                            rcpts[i].reply.text ? rcpts[i].reply.text : "(none)");
    }
    assert_int_equal(d.headers_len, strlen(headers));
    assert_memory_equal(d.headers, headers, strlen(headers));
    assert_int_equal(d.body_len, 12345);
    assert_true(d.eightbit);
    assert_true(d.is_bounce);
    assert_int_equal(d.body, OPTS_BODY_8BITMIME);
    assert_int_equal(d.ret, OPTS_RET_HDRS);
    assert_string_equal(d.envid, "env id+2B");
    assert_string_equal(d.message_id, "<a b@c>");
    assert_string_equal(d.last_error, "450 4.2.0 busy\ttab");

    /* Writing what was read gives the same bytes. */
    char *text2 = NULL;
    size_t len2 = 0;
    f = open_memstream(&text2, &len2);
    assert_true(queue_control_write(f, &d));
    fclose(f);
    assert_int_equal(len2, len);
    assert_memory_equal(text2, text, len);
    queue_control_free(&d);
    free(text);
    free(text2);
}

static const char valid_control[] = "postie-queue 1\n"
                                    "id 20261128194954-0123456789ab\n"
                                    "created 100\n"
                                    "attempts 0\n"
                                    "last-attempt 0\n"
                                    "next-attempt 100\n"
                                    "sender a@x\n"
                                    "size 0\n"
                                    "rcpt pending b@y - none 0 - -\n"
                                    "header Subject: hi\n"
                                    "end\n";

static enum outcome parse_text(const char *text, size_t len, struct result *r)
{
    FILE *f = fmemopen((void *)text, len, "r");
    assert_non_null(f);
    struct queue_control c;
    enum outcome rc = queue_control_read(f, &c, r);
    fclose(f);
    if (rc == OUTCOME_OK)
        queue_control_free(&c);
    return rc;
}

static void test_control_corrupt(void **state)
{
    (void)state;
    struct result r;
    assert_int_equal(parse_text(valid_control, strlen(valid_control), &r), OUTCOME_OK);

    static const struct {
        const char *text;
        const char *why;
    } bad[] = {
        {"", "empty"},
        {"hello world\n", "not a postie queue"},
        {"postie-queue x\n", "not a postie queue"},
        {"postie-queue 1\nid 20261128194954-0123456789ab\n", "truncated"},
        {"postie-queue 1\nid 2026", "truncated line"},
        {"postie-queue 1\nid ../etc/passwd\nend\n", "bad id"},
        {"postie-queue 1\nbogus 1\nend\n", "unknown"},
        {"postie-queue 1\ncreated -5\nend\n", "bad created"},
        {"postie-queue 1\ncreated 99999999999999999999999\nend\n", "bad created"},
        {"postie-queue 1\nsender a%ZZ\nend\n", "bad sender"},
        {"postie-queue 1\nsender a%0Ab\nend\n", "bad sender"},
        {"postie-queue 1\nsender a%3Eb@x\nend\n", "bad sender"},
        {"postie-queue 1\nrcpt pending caro\xff@x - none 0 - -\nend\n", "bad rcpt"},
        {"postie-queue 1\nrcpt pending <b@y> - none 0 - -\nend\n", "bad rcpt"},
        {"postie-queue 1\nrcpt pending b@y\nend\n", "bad rcpt"},
        {"postie-queue 1\nrcpt sent b@y - none 0 - -\nend\n", "bad rcpt"},
        {"postie-queue 1\nrcpt pending b@y bogus none 0 - -\nend\n", "bad rcpt"},
        {"postie-queue 1\nrcpt pending b@y - none 1000 - -\nend\n", "bad rcpt"},
        {"postie-queue 1\nrcpt pending b@y - none 0 - - extra\nend\n", "bad rcpt"},
        {"postie-queue 1\nrcpt pending - - none 0 - -\nend\n", "bad rcpt"},
        {"postie-queue 1\nheader a%0D%0Ab\nend\n", "bad header"},
        {"postie-queue 1\nend\n", "required"},
        {"postie-queue 1\nend\nend\n", "after"},
        {"postie-queue 1\nid 20261128194954-0123456789ab\nid 20261128194954-0123456789ab\n",
         "repeated"},
        {"postie-queue 1\nbounce 2\nend\n", "bad bounce"},
        {"postie-queue 1\nbody 9bit\nend\n", "bad body"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        result_clear(&r);
        enum outcome rc = parse_text(bad[i].text, strlen(bad[i].text), &r);
        if (rc != OUTCOME_DATAERR || strstr(r.text, bad[i].why) == NULL)
            fail_msg("case %zu: got %d \"%s\", wanted \"%s\"", i, rc, r.text, bad[i].why);
    }
    /* A NUL byte inside a line. */
    char withnul[] = "postie-queue 1\nid a\0b\nend\n";
    assert_int_equal(parse_text(withnul, sizeof withnul - 1, &r), OUTCOME_DATAERR);
    /* Written by a newer postie: not corrupt, but not ours either. */
    const char *newer = "postie-queue 2\nwhatever\n";
    assert_int_equal(parse_text(newer, strlen(newer), &r), OUTCOME_UNAVAILABLE);
}

/* Every truncation and many byte flips of a valid file: never a crash. */
static void test_control_mutations(void **state)
{
    (void)state;
    size_t len = strlen(valid_control);
    char buf[sizeof valid_control];
    struct result r;
    for (size_t cut = 0; cut < len; cut++) {
        enum outcome rc = parse_text(valid_control, cut, &r);
        assert_int_equal(rc, OUTCOME_DATAERR);
    }
    unsigned seed = 12345;
    for (int round = 0; round < 5000; round++) {
        memcpy(buf, valid_control, len);
        for (int k = 0; k < 3; k++) {
            seed = seed * 1103515245 + 12345;
            size_t pos = (seed >> 8) % len;
            seed = seed * 1103515245 + 12345;
            buf[pos] = (char)(seed >> 16);
        }
        enum outcome rc = parse_text(buf, len, &r);
        assert_true(rc == OUTCOME_OK || rc == OUTCOME_DATAERR || rc == OUTCOME_UNAVAILABLE);
    }
}

/* ------------------------------------------------------------------ rules */

static void test_backoff(void **state)
{
    (void)state;
    assert_int_equal(queue_backoff(0), 300);
    assert_int_equal(queue_backoff(1), 300);
    assert_int_equal(queue_backoff(2), 600);
    assert_int_equal(queue_backoff(3), 1200);
    assert_int_equal(queue_backoff(4), 2400);
    assert_int_equal(queue_backoff(5), 4800);
    assert_int_equal(queue_backoff(6), 9600);
    assert_int_equal(queue_backoff(7), 14400);
    assert_int_equal(queue_backoff(8), 14400);
    assert_int_equal(queue_backoff(1000000), 14400);
}

static void test_lifetime(void **state)
{
    (void)state;
    long five_days = 5L * 86400;
    assert_false(queue_expired(1000, 1000 + five_days - 1, five_days));
    assert_true(queue_expired(1000, 1000 + five_days, five_days));
    assert_false(queue_expired(1000, 1001, 2));
    assert_true(queue_expired(1000, 1002, 2));
    /* 0 (unset) means the default of 5 days. */
    assert_false(queue_expired(1000, 1000 + five_days - 1, 0));
    assert_true(queue_expired(1000, 1000 + five_days, 0));
}

/* ------------------------------------------------------------------ store, list, delete */

static void test_open_errors(void **state)
{
    (void)state;
    struct queue *q;
    struct result r;
    char path[512];
    snprintf(path, sizeof path, "%s/missing", tmpdir);
    assert_int_equal(queue_open(path, &q, &r), OUTCOME_CANTCREAT);
    assert_non_null(strstr(r.text, "does not exist"));
    write_file("plain", "x");
    snprintf(path, sizeof path, "%s/plain", tmpdir);
    assert_int_equal(queue_open(path, &q, &r), OUTCOME_CANTCREAT);
    assert_int_equal(queue_open("", &q, &r), OUTCOME_CANTCREAT);
}

static void test_store_list_delete(void **state)
{
    (void)state;
    struct queue *q = open_queue();
    char *out = NULL;
    size_t outlen = 0;
    struct result r;
    FILE *f = open_memstream(&out, &outlen);
    assert_int_equal(queue_list(q, f, &r), OUTCOME_OK);
    fclose(f);
    assert_string_equal(out, "Mail queue is empty\n");
    free(out);

    /* An O_TMPFILE body is linked; a named file is copied; -1 is empty. */
    char id1[QUEUE_ID_MAX], id2[QUEUE_ID_MAX], id3[QUEUE_ID_MAX];
    store(q, "alice@example.org", "bob@example.com", "carol@example.com", id1);
    struct testmsg t;
    make_message(&t, "dave@example.org", "erin@example.com", NULL, "");
    close(t.m.body_fd);
    write_file("named-body", "named body\r\n");
    char path[512];
    snprintf(path, sizeof path, "%s/named-body", tmpdir);
    t.m.body_fd = open(path, O_RDONLY);
    struct relay_rcpt rr[1] = {{.addr = "erin@example.com",
                                .state = RELAY_DEFERRED,
                                .failure = RESULT_FAIL_TEMP_REPLY,
                                .reply = {.code = 451, .enh = "4.3.0", .text = "try later"}}};
    struct queue_meta meta = {.rcpts = rr, .last_error = "451 4.3.0 try later"};
    assert_int_equal(queue_store(q, &t.m, &meta, id2, &r), OUTCOME_OK);
    close(t.m.body_fd);
    t.m.body_fd = -1;
    meta = (struct queue_meta){.notify = OPTS_NOTIFY_NEVER};
    assert_int_equal(queue_store(q, &t.m, &meta, id3, &r), OUTCOME_OK);
    assert_int_equal(count_files("", ".ctl"), 3);
    assert_int_equal(count_files("", ".body"), 3);
    assert_int_equal(count_files("tmp", ""), 0);

    struct queue_control c;
    read_control("", id2, &c);
    assert_int_equal(c.body_len, strlen("named body\r\n"));
    assert_int_equal(c.attempts, 1);
    assert_true(c.next_attempt >= c.created + 300);
    assert_int_equal(c.rcpts[0].state, QUEUE_RCPT_DEFERRED);
    assert_int_equal(c.rcpts[0].reply.code, 451);
    queue_control_free(&c);
    read_control("", id3, &c);
    assert_int_equal(c.body_len, 0);
    assert_int_equal(c.attempts, 0);
    assert_true(c.next_attempt <= c.created);
    assert_int_equal(c.rcpts[0].notify, OPTS_NOTIFY_NEVER);
    queue_control_free(&c);
    snprintf(path, sizeof path, "%s/%s.body", tmpdir, id2);
    char *body = slurp(path, NULL);
    assert_string_equal(body, "named body\r\n");
    free(body);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    f = open_memstream(&out, &outlen);
    assert_int_equal(queue_list(q, f, &r), OUTCOME_OK);
    fclose(f);
    assert_non_null(strstr(out, id1));
    assert_non_null(strstr(out, "alice@example.org"));
    assert_non_null(strstr(out, "carol@example.com"));
    assert_non_null(strstr(out, "(451 4.3.0 try later)"));
    assert_non_null(strstr(out, "in 3 Requests."));
    assert_null(strstr(out, "Mail queue is empty"));
    free(out);

    assert_true(queue_has_due(q)); /* id3 was never tried */
    assert_int_equal(queue_delete(q, id3, &r), OUTCOME_OK);
    assert_false(queue_has_due(q));
    assert_int_equal(queue_delete(q, id3, &r), OUTCOME_USAGE);
    assert_int_equal(queue_delete(q, "../../etc/passwd", &r), OUTCOME_USAGE);

    /* A message being delivered cannot be deleted. */
    snprintf(path, sizeof path, "%s/%s.body", tmpdir, id1);
    int lfd = open(path, O_RDONLY);
    assert_int_equal(flock(lfd, LOCK_EX), 0);
    assert_int_equal(queue_delete(q, id1, &r), OUTCOME_TEMPFAIL);
    close(lfd);
    assert_int_equal(queue_delete(q, id1, &r), OUTCOME_OK);
    assert_int_equal(queue_delete(q, id2, &r), OUTCOME_OK);
    assert_int_equal(count_files("", ".ctl"), 0);
    assert_int_equal(count_files("", ".body"), 0);
    queue_close(q);
}

/* All recipients already settled: nothing to keep. */
static void test_store_nothing_open(void **state)
{
    (void)state;
    struct queue *q = open_queue();
    struct testmsg t;
    make_message(&t, "a@x", "b@y", NULL, "x\r\n");
    struct relay_rcpt rr[1] = {{.addr = "b@y", .state = RELAY_DELIVERED}};
    struct queue_meta meta = {.rcpts = rr};
    char id[QUEUE_ID_MAX];
    struct result r;
    assert_int_equal(queue_store(q, &t.m, &meta, id, &r), OUTCOME_OK);
    assert_string_equal(id, "");
    assert_int_equal(count_files("", ".ctl"), 0);
    assert_int_equal(count_files("", ".body"), 0);
    close(t.m.body_fd);
    queue_close(q);
}

/* ------------------------------------------------------------------ flush */

static void test_flush_delivers(void **state)
{
    (void)state;
    struct queue *q = open_queue();
    char id1[QUEUE_ID_MAX], id2[QUEUE_ID_MAX];
    store(q, "alice@example.org", "bob@example.com", NULL, id1);
    store(q, "carol@example.org", "dave@example.com", "erin@example.com", id2);
    struct conf c = test_conf(0);
    struct queue_flush_stats st;
    struct result r;
    /* Not due yet (tried once at submission). */
    assert_int_equal(queue_flush(q, &c, true, NULL, &st, &r), OUTCOME_OK);
    assert_int_equal(fake.calls, 0);
    /* -q: everything, in one session. */
    assert_int_equal(queue_flush(q, &c, false, NULL, &st, &r), OUTCOME_OK);
    assert_int_equal(fake.calls, 1);
    assert_int_equal(fake.nitems, 2);
    assert_int_equal(fake.pending_seen, 3);
    assert_string_equal(fake.body, "hello\r\n");
    assert_non_null(strstr(fake.headers, "Subject: test\r\n"));
    assert_int_equal(st.tried, 2);
    assert_int_equal(st.delivered, 2);
    assert_int_equal(count_files("", ".ctl"), 0);
    assert_int_equal(count_files("", ".body"), 0);
    /* Nothing left: no session at all. */
    assert_int_equal(queue_flush(q, &c, false, NULL, &st, &r), OUTCOME_OK);
    assert_int_equal(fake.calls, 1);
    queue_close(q);
}

static void test_flush_filter_and_lock(void **state)
{
    (void)state;
    struct queue *q = open_queue();
    char id1[QUEUE_ID_MAX], id2[QUEUE_ID_MAX];
    store(q, "alice@example.org", "bob@example.com", NULL, id1);
    store(q, "carol@example.org", "dave@example.com", NULL, id2);
    struct conf c = test_conf(0);
    struct queue_flush_stats st;
    struct result r;
    /* id1 is locked by "another flusher": skipped; the filter picks id2 only. */
    char path[512];
    snprintf(path, sizeof path, "%s/%s.body", tmpdir, id1);
    int lfd = open(path, O_RDONLY);
    assert_int_equal(flock(lfd, LOCK_EX), 0);
    assert_int_equal(queue_flush(q, &c, false, NULL, &st, &r), OUTCOME_OK);
    assert_int_equal(fake.nitems, 1);
    assert_string_equal(fake.sender, "carol@example.org");
    close(lfd);
    assert_int_equal(count_files("", ".ctl"), 1);
    store(q, "frank@example.org", "gina@example.com", NULL, id2);
    fake.nitems = 0;
    assert_int_equal(queue_flush(q, &c, false, id2 + 15, &st, &r), OUTCOME_OK);
    assert_int_equal(fake.nitems, 1);
    assert_string_equal(fake.sender, "frank@example.org");
    assert_int_equal(count_files("", ".ctl"), 1);
    queue_close(q);
}

/* 250 for one recipient, 450 for the other: only the deferred one is retried. */
static void test_flush_partial(void **state)
{
    (void)state;
    struct queue *q = open_queue();
    char id[QUEUE_ID_MAX];
    store(q, "alice@example.org", "bob@example.com", "carol@example.com", id);
    struct conf c = test_conf(0);
    struct queue_flush_stats st;
    struct result r;
    fake.addr_fail = "carol@example.com";
    fake.fail_code = 450;
    time_t t0 = time(NULL);
    queue_set_clock(q, t0);
    assert_int_equal(queue_flush(q, &c, false, NULL, &st, &r), OUTCOME_OK);
    assert_int_equal(st.deferred, 1);
    struct queue_control ctl;
    read_control("", id, &ctl);
    assert_int_equal(ctl.rcpts[0].state, QUEUE_RCPT_DELIVERED);
    assert_int_equal(ctl.rcpts[1].state, QUEUE_RCPT_DEFERRED);
    assert_int_equal(ctl.rcpts[1].reply.code, 450);
    assert_int_equal(ctl.attempts, 2);
    assert_int_equal(ctl.next_attempt, t0 + 600);
    assert_non_null(strstr(ctl.last_error, "mailbox says no"));
    queue_control_free(&ctl);

    /* --due before the retry time: nothing; after it: only carol. */
    queue_set_clock(q, t0 + 599);
    memset(&fake, 0, sizeof fake);
    assert_int_equal(queue_flush(q, &c, true, NULL, &st, &r), OUTCOME_OK);
    assert_int_equal(fake.calls, 0);
    queue_set_clock(q, t0 + 600);
    assert_int_equal(queue_flush(q, &c, true, NULL, &st, &r), OUTCOME_OK);
    assert_int_equal(fake.calls, 1);
    assert_int_equal(fake.pending_seen, 1);
    assert_int_equal(fake.skipped_seen, 1);
    assert_int_equal(st.delivered, 1);
    assert_int_equal(count_files("", ".ctl"), 0);
    queue_close(q);
}

/* A clock set back never strands a message: a retry time further ahead
 * than the longest backoff counts as due. */
static void test_clock_set_back(void **state)
{
    (void)state;
    struct queue *q = open_queue();
    time_t t0 = time(NULL);
    queue_set_clock(q, t0);
    char id[QUEUE_ID_MAX];
    store(q, "alice@example.org", "bob@example.com", NULL, id);
    assert_false(queue_has_due(q)); /* next attempt in 5 min */
    queue_set_clock(q, t0 - 3 * 3600);
    assert_false(queue_has_due(q));
    queue_set_clock(q, t0 - 5 * 3600);
    assert_true(queue_has_due(q));
    struct conf c = test_conf(0);
    struct queue_flush_stats st;
    struct result r;
    assert_int_equal(queue_flush(q, &c, true, NULL, &st, &r), OUTCOME_OK);
    assert_int_equal(st.delivered, 1);
    queue_close(q);
}

/* Checks the structure of the one bounce in the queue; returns its body. */
static char *check_bounce(const char *orig_sender, const char *failed_rcpt, const char *status,
                          bool diagnostic)
{
    char id[QUEUE_ID_MAX];
    first_id("", NULL, id);
    assert_true(id[0] != '\0');
    struct queue_control b;
    read_control("", id, &b);
    assert_true(b.is_bounce);
    assert_string_equal(b.sender, "");
    assert_int_equal(b.nrcpts, 1);
    assert_string_equal(b.rcpts[0].addr, orig_sender);
    assert_true(b.next_attempt <= b.created); /* due at once */
    assert_int_equal(b.attempts, 0);
    assert_non_null(
        strstr(b.headers, "From: Mail Delivery System <MAILER-DAEMON@box.example>\r\n"));
    assert_non_null(strstr(b.headers, "Auto-Submitted: auto-replied\r\n"));
    assert_non_null(strstr(b.headers, "MIME-Version: 1.0\r\n"));
    const char *ct = strstr(b.headers, "Content-Type: multipart/report; "
                                       "report-type=delivery-status;\r\n\tboundary=\"");
    assert_non_null(ct);
    char boundary[80];
    const char *bs = strstr(ct, "boundary=\"") + 10;
    snprintf(boundary, sizeof boundary, "%.*s", (int)(strchr(bs, '"') - bs), bs);
    queue_control_free(&b);

    char path[512];
    snprintf(path, sizeof path, "%s/%s.body", tmpdir, id);
    char *body = slurp(path, NULL);
    char sep[100], close_sep[104];
    snprintf(sep, sizeof sep, "\r\n--%s\r\n", boundary);
    snprintf(close_sep, sizeof close_sep, "\r\n--%s--\r\n", boundary);
    const char *p1 = strstr(body, sep);
    assert_non_null(p1);
    assert_non_null(strstr(p1, "Content-Type: text/plain"));
    const char *p2 = strstr(p1 + 1, sep);
    assert_non_null(p2);
    assert_true(strncmp(p2 + strlen(sep),
                        "Content-Description: Delivery report\r\n"
                        "Content-Type: message/delivery-status\r\n\r\n",
                        70) == 0);
    const char *p3 = strstr(p2 + 1, sep);
    assert_non_null(p3);
    assert_non_null(strstr(p3, "Content-Type: text/rfc822-headers\r\n\r\nFrom: Alice"));
    assert_non_null(strstr(p3, "Subject: test\r\n"));
    const char *end = strstr(body, close_sep);
    assert_non_null(end);
    assert_true(end > p3);
    assert_string_equal(end + strlen(close_sep), "");

    /* The delivery-status part: per-message then per-recipient fields. */
    char *ds = strndup(p2, (size_t)(p3 - p2));
    assert_non_null(strstr(ds, "\r\n\r\nReporting-MTA: dns; box.example\r\n"));
    assert_non_null(strstr(ds, "Arrival-Date: "));
    char want[256];
    snprintf(want, sizeof want,
             "\r\n\r\nFinal-Recipient: rfc822; %s\r\nAction: failed\r\n"
             "Status: %s\r\n",
             failed_rcpt, status);
    assert_non_null(strstr(ds, want));
    if (diagnostic)
        assert_non_null(strstr(ds, "Diagnostic-Code: smtp; "));
    assert_non_null(strstr(ds, "Last-Attempt-Date: "));
    free(ds);
    /* Only CRLF line ends. */
    for (const char *p = body; *p != '\0'; p++) {
        if (*p == '\n')
            assert_true(p > body && p[-1] == '\r');
    }
    return body;
}

static void test_flush_permanent_bounces(void **state)
{
    (void)state;
    struct queue *q = open_queue();
    char id[QUEUE_ID_MAX];
    store(q, "alice@example.org", "bob@example.com", "carol@example.com", id);
    struct conf c = test_conf(0);
    struct queue_flush_stats st;
    struct result r;
    fake.addr_fail = "carol@example.com";
    fake.fail_code = 550;
    assert_int_equal(queue_flush(q, &c, false, NULL, &st, &r), OUTCOME_OK);
    assert_int_equal(st.bounced, 1);
    /* The original is gone; the bounce is the only message. */
    assert_int_equal(count_files("", ".ctl"), 1);
    char *body = check_bounce("alice@example.org", "carol@example.com", "5.1.1", true);
    assert_non_null(strstr(body, "Diagnostic-Code: smtp; 550 5.1.1 mailbox says no\r\n"));
    assert_null(strstr(body, "bob@example.com>"));
    free(body);

    /* The bounce itself fails permanently: no bounce, kept in failed/. */
    memset(&fake, 0, sizeof fake);
    fake.addr_fail = "alice@example.org";
    fake.fail_code = 550;
    assert_int_equal(queue_flush(q, &c, false, NULL, &st, &r), OUTCOME_OK);
    assert_string_equal(fake.sender, "");
    assert_int_equal(st.bounced, 0);
    assert_int_equal(st.failed, 1);
    assert_int_equal(count_files("", ".ctl"), 0);
    assert_int_equal(count_files("", ".body"), 0);
    assert_int_equal(count_files("failed", ".ctl"), 1);
    assert_int_equal(count_files("failed", ".body"), 1);
    queue_close(q);
}

/* Deferred past queue_lifetime: given up and bounced; the original never sent. */
static void test_flush_expiry(void **state)
{
    (void)state;
    struct queue *q = open_queue();
    time_t t0 = time(NULL);
    queue_set_clock(q, t0);
    char id[QUEUE_ID_MAX];
    store(q, "alice@example.org", "bob@example.com", NULL, id);
    struct conf c = test_conf(3600);
    struct queue_flush_stats st;
    struct result r;
    fake.all_defer = true;
    queue_set_clock(q, t0 + 3599);
    assert_int_equal(queue_flush(q, &c, false, NULL, &st, &r), OUTCOME_OK);
    assert_int_equal(st.deferred, 1);
    assert_int_equal(st.bounced, 0);
    struct queue_control ctl;
    read_control("", id, &ctl);
    assert_non_null(strstr(ctl.last_error, "Connection refused"));
    queue_control_free(&ctl);

    queue_set_clock(q, t0 + 3600);
    assert_int_equal(queue_flush(q, &c, false, NULL, &st, &r), OUTCOME_OK);
    assert_int_equal(st.bounced, 1);
    assert_int_equal(count_files("", ".ctl"), 1);
    char *body = check_bounce("alice@example.org", "bob@example.com", "4.4.1", false);
    assert_non_null(strstr(body, "gave up after 3600 seconds"));
    free(body);
    queue_close(q);
}

/* A null sender's message is given up without a bounce, kept in failed/. */
static void test_flush_null_sender(void **state)
{
    (void)state;
    struct queue *q = open_queue();
    char id[QUEUE_ID_MAX];
    store(q, "", "bob@example.com", NULL, id);
    struct conf c = test_conf(0);
    struct queue_flush_stats st;
    struct result r;
    fake.addr_fail = "bob@example.com";
    fake.fail_code = 550;
    assert_int_equal(queue_flush(q, &c, false, NULL, &st, &r), OUTCOME_OK);
    assert_int_equal(st.bounced, 0);
    assert_int_equal(st.failed, 1);
    assert_int_equal(count_files("", ".ctl"), 0);
    assert_int_equal(count_files("", ".body"), 0);
    assert_int_equal(count_files("failed", ".ctl"), 1);
    queue_close(q);
}

/* A local error (password_command failed): kept, never expired. */
static void test_flush_local_error(void **state)
{
    (void)state;
    struct queue *q = open_queue();
    time_t t0 = time(NULL);
    queue_set_clock(q, t0);
    char id[QUEUE_ID_MAX];
    store(q, "alice@example.org", "bob@example.com", NULL, id);
    struct conf c = test_conf(10);
    struct queue_flush_stats st;
    struct result r;
    fake.local = OUTCOME_CONFIG;
    queue_set_clock(q, t0 + 100);
    assert_int_equal(queue_flush(q, &c, false, NULL, &st, &r), OUTCOME_CONFIG);
    assert_non_null(strstr(r.text, "password_command"));
    assert_int_equal(count_files("", ".ctl"), 1);
    struct queue_control ctl;
    read_control("", id, &ctl);
    assert_int_equal(ctl.rcpts[0].state, QUEUE_RCPT_DEFERRED);
    assert_int_equal(ctl.attempts, 2);
    queue_control_free(&ctl);
    queue_close(q);
}

/* Corrupt and orphaned files never stop a flush. */
static void test_flush_corrupt_and_orphans(void **state)
{
    (void)state;
    struct queue *q = open_queue();
    char id[QUEUE_ID_MAX];
    store(q, "alice@example.org", "bob@example.com", NULL, id);
    write_file("20260101000000-aaaaaaaaaaaa.ctl", "garbage\n");
    write_file("20260101000000-aaaaaaaaaaaa.body", "x");
    write_file("20260101000000-bbbbbbbbbbbb.ctl", valid_control); /* no body, id mismatch */
    write_file("20260101000000-cccccccccccc.body", "orphan");
    /* A truncated control file (crash mid-write could never produce it, a disk might). */
    char path[512];
    snprintf(path, sizeof path, "%s/%s.ctl", tmpdir, id);
    size_t len;
    char *text = slurp(path, &len);
    char id2[QUEUE_ID_MAX];
    store(q, "carol@example.org", "dave@example.com", NULL, id2);
    snprintf(path, sizeof path, "%s.ctl", id2);
    text[len / 2] = '\0';
    write_file(path, text);
    free(text);
    /* Hostile file types: a symbolic link, a FIFO (must not block). */
    snprintf(path, sizeof path, "%s/20260101000000-dddddddddddd.ctl", tmpdir);
    assert_int_equal(symlink("/etc/passwd", path), 0);
    write_file("20260101000000-dddddddddddd.body", "");
    snprintf(path, sizeof path, "%s/20260101000000-eeeeeeeeeeee.body", tmpdir);
    assert_int_equal(mkfifo(path, 0600), 0);
    snprintf(path, sizeof path, "%s/20260101000000-eeeeeeeeeeee.ctl", tmpdir);
    assert_int_equal(mkfifo(path, 0600), 0);
    write_file("tmp/stale.ctl", "x");
    snprintf(path, sizeof path, "%s/tmp/stale.ctl", tmpdir);
    struct timespec old[2] = {{.tv_sec = 1000}, {.tv_sec = 1000}};
    assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
    write_file("tmp/fresh.ctl", "x");
    /* A writer of id's control file died: its lock is free, so it is garbage. */
    snprintf(path, sizeof path, "tmp/%s.999.ctl", id);
    write_file(path, "half a control file");

    char *out = NULL;
    size_t outlen;
    struct result r;
    FILE *f = open_memstream(&out, &outlen);
    assert_int_equal(queue_list(q, f, &r), OUTCOME_OK);
    fclose(f);
    assert_non_null(strstr(out, "unreadable control file"));
    free(out);

    struct conf c = test_conf(0);
    struct queue_flush_stats st;
    assert_int_equal(queue_flush(q, &c, false, NULL, &st, &r), OUTCOME_OK);
    assert_int_equal(st.delivered, 1);
    assert_string_equal(fake.sender, "alice@example.org");
    assert_int_equal(count_files("", ".ctl"), 0);
    assert_int_equal(count_files("", ".body"), 0);
    assert_int_equal(count_files("corrupt", ".ctl"), 5);
    assert_int_equal(count_files("corrupt", ".body"), 4);
    snprintf(path, sizeof path, "%s/corrupt/20260101000000-dddddddddddd.ctl", tmpdir);
    struct stat lst;
    assert_int_equal(lstat(path, &lst), 0);
    assert_true(S_ISLNK(lst.st_mode));
    snprintf(path, sizeof path, "%s/corrupt/20260101000000-eeeeeeeeeeee.body", tmpdir);
    assert_int_equal(lstat(path, &lst), 0);
    assert_true(S_ISFIFO(lst.st_mode));
    assert_int_equal(count_files("tmp", ".ctl"), 1); /* only the fresh one */
    queue_close(q);
}

/* ------------------------------------------------------------------ queue_bounce */

static void test_bounce_direct(void **state)
{
    (void)state;
    struct queue *q = open_queue();
    struct conf c = test_conf(0);
    struct testmsg t;
    make_message(&t, "alice@example.org", "bob@example.com", "carol@example.com", "x\r\n");
    struct relay_rcpt rr[2] = {
        {.addr = "bob@example.com", .state = RELAY_DELIVERED},
        {.addr = "carol@example.com",
         .state = RELAY_FAILED,
         .failure = RESULT_FAIL_SOME_RCPTS,
         .reply = {.code = 550, .enh = "5.1.1", .text = "no such user"}},
    };
    struct result r;
    /* Never for a bounce, never for the null sender. */
    assert_int_equal(queue_bounce(q, &c, &t.m, rr, 2, true, &r), OUTCOME_OK);
    assert_int_equal(count_files("", ".ctl"), 0);
    t.m.sender = "";
    assert_int_equal(queue_bounce(q, &c, &t.m, rr, 2, false, &r), OUTCOME_OK);
    assert_int_equal(count_files("", ".ctl"), 0);
    /* NOTIFY=NEVER: none either. */
    t.m.sender = "alice@example.org";
    rr[1].notify = OPTS_NOTIFY_NEVER;
    assert_int_equal(queue_bounce(q, &c, &t.m, rr, 2, false, &r), OUTCOME_OK);
    assert_int_equal(count_files("", ".ctl"), 0);
    rr[1].notify = 0;
    assert_int_equal(queue_bounce(q, &c, &t.m, rr, 2, false, &r), OUTCOME_OK);
    assert_int_equal(count_files("", ".ctl"), 1);
    char *body = check_bounce("alice@example.org", "carol@example.com", "5.1.1", true);
    assert_non_null(
        strstr(body, "<carol@example.com>: the smarthost said: 550 5.1.1 no such user"));
    assert_null(strstr(body, "Final-Recipient: rfc822; bob@example.com"));
    free(body);
    close(t.m.body_fd);
    queue_close(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_round_trip),
        cmocka_unit_test(test_control_corrupt),
        cmocka_unit_test(test_control_mutations),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_lifetime),
        cmocka_unit_test_setup_teardown(test_open_errors, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_store_list_delete, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_store_nothing_open, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_flush_delivers, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_flush_filter_and_lock, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_flush_partial, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_clock_set_back, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_flush_permanent_bounces, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_flush_expiry, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_flush_null_sender, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_flush_local_error, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_flush_corrupt_and_orphans, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_bounce_direct, setup_dir, teardown_dir),
    };
    return TESTLIB_RUN(tests);
}
