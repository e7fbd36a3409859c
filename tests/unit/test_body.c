/*
 * test_body.c - the long-line plan, quoted-printable re-encoding (exact
 * output, line limits, round trip), folding, and the MIME labels.
 */
#include "testlib.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "body.h"
#include "header.h"
#include "mem.h"
#include "message.h"

static void parse(struct header_block *h, const char *block)
{
    struct result r;
    assert_int_equal(header_parse(block, strlen(block), h, &r), OUTCOME_OK);
}

static enum body_plan plan_for(const char *block, size_t longest)
{
    struct header_block h;
    parse(&h, block);
    enum body_plan p = body_plan(&h, longest);
    header_free(&h);
    return p;
}

static void test_plan(void **state)
{
    (void)state;
    assert_int_equal(plan_for("To: a@x\r\n", 998), BODY_KEEP);
    assert_int_equal(plan_for("To: a@x\r\n", 999), BODY_QP);
    assert_int_equal(plan_for("Content-Type: text/plain; charset=utf-8\r\n", 5000), BODY_QP);
    assert_int_equal(
        plan_for("Content-Type: TEXT/html\r\nContent-Transfer-Encoding: 8bit\r\n", 5000), BODY_QP);
    assert_int_equal(plan_for("Content-Transfer-Encoding: 7bit\r\n", 5000), BODY_QP);
    assert_int_equal(plan_for("Content-Type: multipart/mixed; boundary=x\r\n", 5000), BODY_FOLD);
    assert_int_equal(
        plan_for("Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n", 5000),
        BODY_FOLD);
    assert_int_equal(plan_for("Content-Type: application/octet-stream\r\n", 5000), BODY_FOLD);
}

/* Runs body_rewrite on data; returns the output (NUL-terminated). */
static char *rewrite(enum body_plan plan, const char *data, size_t len, off_t *out_len)
{
    struct result r;
    int in = message_spool_open(NULL, &r);
    int out = message_spool_open(NULL, &r);
    assert_true(in >= 0 && out >= 0);
    assert_int_equal(write(in, data, len), (ssize_t)len);
    assert_int_equal(body_rewrite(plan, in, out, out_len, &r), OUTCOME_OK);
    char *buf = mem_alloc((size_t)*out_len + 1);
    assert_int_equal(pread(out, buf, (size_t)*out_len, 0), (ssize_t)*out_len);
    close(in);
    close(out);
    return buf;
}

static void test_qp_exact(void **state)
{
    (void)state;
    const char in[] = "caf\xc3\xa9 = ok \r\ntab\t\r\n.dot\r\n";
    off_t n;
    char *out = rewrite(BODY_QP, in, sizeof in - 1, &n);
    assert_string_equal(out, "caf=C3=A9 =3D ok=20\r\ntab=09\r\n.dot\r\n");
    free(out);
}

static int hexval(char c)
{
    return c <= '9' ? c - '0' : c - 'A' + 10;
}

static void test_qp_long_line_round_trip(void **state)
{
    (void)state;
    /* 5000 octets of mixed text with 8-bit, '=' and spaces, then a short line */
    size_t n = 5000;
    char *in = mem_alloc(n + 16);
    for (size_t i = 0; i < n; i++)
        in[i] = "ab =\xc3\xa9xyz \t"[i % 10];
    memcpy(in + n, "\r\nend\r\n", 7);
    off_t len;
    char *out = rewrite(BODY_QP, in, n + 7, &len);
    /* every line within 76 octets, 7-bit only */
    for (char *line = out; *line != '\0';) {
        char *end = strstr(line, "\r\n");
        assert_non_null(end);
        assert_true(end - line <= 76);
        line = end + 2;
    }
    for (off_t i = 0; i < len; i++)
        assert_true((unsigned char)out[i] < 0x80);
    /* decode and compare */
    char *dec = mem_alloc((size_t)len + 1);
    size_t k = 0;
    for (off_t i = 0; i < len; i++) {
        if (out[i] == '=' && out[i + 1] == '\r') {
            i += 2;
        } else if (out[i] == '=') {
            dec[k++] = (char)(hexval(out[i + 1]) * 16 + hexval(out[i + 2]));
            i += 2;
        } else {
            dec[k++] = out[i];
        }
    }
    assert_int_equal(k, n + 7);
    assert_memory_equal(dec, in, n + 7);
    free(dec);
    free(out);
    free(in);
}

static void test_fold(void **state)
{
    (void)state;
    size_t n = 2500;
    char *in = mem_alloc(n + 8);
    memset(in, 'x', n);
    memcpy(in + n, "\r\nok\r\n", 6);
    off_t len;
    char *out = rewrite(BODY_FOLD, in, n + 6, &len);
    assert_int_equal(len, (off_t)(n + 6 + 4));
    assert_int_equal(strstr(out, "\r\n") - out, 998);
    assert_int_equal(strstr(out + 1000, "\r\n") - (out + 1000), 998);
    assert_int_equal(strspn(out + 2000, "x"), n - 2 * 998);
    assert_string_equal(out + 2000 + n - 2 * 998, "\r\nok\r\n");
    free(out);
    free(in);
}

static char *render(struct header_block *h)
{
    char *out;
    size_t len;
    struct result r;
    assert_int_equal(header_render(h, &out, &len, &r), OUTCOME_OK);
    return out;
}

static void test_label_qp(void **state)
{
    (void)state;
    struct header_block h;
    parse(&h, "To: a@x\r\n");
    body_label(&h, BODY_QP, true, true);
    char *out = render(&h);
    assert_string_equal(out, "To: a@x\r\nMIME-Version: 1.0\r\n"
                             "Content-Type: text/plain; charset=utf-8\r\n"
                             "Content-Transfer-Encoding: quoted-printable\r\n");
    free(out);
    header_free(&h);

    parse(&h, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
              "Content-Transfer-Encoding: 8bit\r\n");
    body_label(&h, BODY_QP, true, false);
    out = render(&h);
    assert_string_equal(out, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
                             "Content-Transfer-Encoding: quoted-printable\r\n");
    free(out);
    header_free(&h);

    parse(&h, "To: a@x\r\n");
    body_label(&h, BODY_QP, false, true);
    out = render(&h);
    assert_non_null(strstr(out, "charset=us-ascii"));
    free(out);
    header_free(&h);
}

static void test_label_unlabelled_8bit(void **state)
{
    (void)state;
    struct header_block h;
    parse(&h, "To: a@x\r\n");
    body_label(&h, BODY_KEEP, true, false);
    char *out = render(&h);
    assert_string_equal(out, "To: a@x\r\nMIME-Version: 1.0\r\n"
                             "Content-Type: text/plain; charset=unknown-8bit\r\n"
                             "Content-Transfer-Encoding: 8bit\r\n");
    free(out);
    header_free(&h);
    /* already labelled, or 7-bit: untouched */
    parse(&h, "Content-Type: text/plain; charset=utf-8\r\n");
    body_label(&h, BODY_KEEP, true, true);
    assert_int_equal(h.n, 1);
    header_free(&h);
    parse(&h, "To: a@x\r\n");
    body_label(&h, BODY_KEEP, false, true);
    body_label(&h, BODY_FOLD, true, true);
    assert_int_equal(h.n, 1);
    header_free(&h);
}

/* message_prepare() on text, then message_downgrade() for a server without 8BITMIME. */
static struct message prepare_len(const char *text, size_t len, enum outcome want);

static struct message prepare(const char *text, enum outcome want)
{
    return prepare_len(text, strlen(text), want);
}

static struct message prepare_len(const char *text, size_t len, enum outcome want)
{
    char *args[] = {"a@example.org"};
    struct opts o = {.args = args, .nargs = 1, .ignore_dots = true};
    struct conf c = {.qualify_domain = "box.example", .hostname = "box.example"};
    struct message_params p = {.opts = &o, .conf = &c, .user = "alice"};
    struct result r;
    int in = message_spool_open(NULL, &r);
    assert_int_equal(write(in, text, len), (ssize_t)len);
    lseek(in, 0, SEEK_SET);
    struct message m;
    assert_int_equal(message_prepare(&p, in, &m, &r), want);
    close(in);
    return m;
}

static char *body_of(const struct message *m)
{
    char *b = mem_alloc((size_t)m->body_len + 1);
    if (m->body_fd < 0) {
        assert_non_null(m->body_mem);
        memcpy(b, m->body_mem, (size_t)m->body_len);
    } else {
        assert_null(m->body_mem);
        assert_int_equal(pread(m->body_fd, b, (size_t)m->body_len, 0), (ssize_t)m->body_len);
    }
    return b;
}

static void test_downgrade(void **state)
{
    (void)state;
    struct result r;
    struct message m = prepare("Subject: x\n\ncaf\xc3\xa9\n", OUTCOME_OK);
    assert_true(m.eightbit);
    assert_true(m.body_8bit);
    assert_non_null(strstr(m.headers, "Content-Transfer-Encoding: 8bit\r\n"));
    assert_int_equal(message_downgrade(&m, NULL, &r), OUTCOME_OK);
    assert_false(m.eightbit);
    assert_false(m.body_8bit);
    assert_non_null(strstr(m.headers, "Content-Type: text/plain; charset=utf-8\r\n"));
    assert_non_null(strstr(m.headers, "Content-Transfer-Encoding: quoted-printable\r\n"));
    assert_null(strstr(m.headers, "8bit"));
    assert_int_equal(lseek(m.body_fd, 0, SEEK_CUR), 0);
    char *b = body_of(&m);
    assert_string_equal(b, "caf=C3=A9\r\n");
    free(b);
    message_free(&m);

    /* 8-bit multipart cannot be converted; the message is left as it was */
    m = prepare(
        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\xe9\n--b--\n",
        OUTCOME_OK);
    char *before = mem_strdup(m.headers);
    assert_int_equal(message_downgrade(&m, NULL, &r), OUTCOME_DATAERR);
    assert_string_equal(m.headers, before);
    assert_true(m.body_8bit);
    free(before);
    message_free(&m);

    /* 7-bit: nothing to do */
    m = prepare("Subject: x\n\nplain\n", OUTCOME_OK);
    assert_false(m.eightbit);
    assert_int_equal(message_downgrade(&m, NULL, &r), OUTCOME_OK);
    assert_false(m.reencoded);
    message_free(&m);
}

static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        n += fcntl(fd, F_GETFD) != -1;
    return n;
}

/* message_prepare() leaves nothing behind when a stage fails. */
static void test_prepare_failures_clean_up(void **state)
{
    (void)state;
    int before = count_fds();
    const char nul[] = "Subject: a\0b\n\nx\n";
    struct message m = prepare_len(nul, sizeof nul - 1, OUTCOME_DATAERR);
    assert_int_equal(m.body_fd, -1);
    assert_null(m.headers);
    char *longhdr = mem_alloc(3000);
    strcpy(longhdr, "X-Long: ");
    memset(longhdr + 8, 'x', 1500);
    strcpy(longhdr + 1508, "\n\nbody\n");
    m = prepare(longhdr, OUTCOME_DATAERR);
    free(longhdr);
    assert_int_equal(m.body_fd, -1);
    /* a long body line re-encoded into a second spool file: one fd kept */
    char *longbody = mem_alloc(3000);
    strcpy(longbody, "Subject: x\n\n");
    memset(longbody + 12, 'y', 2000);
    strcpy(longbody + 2012, "\n");
    m = prepare(longbody, OUTCOME_OK);
    free(longbody);
    assert_true(m.reencoded);
    assert_int_equal(count_fds(), before + 1);
    message_free(&m);
    assert_int_equal(count_fds(), before);
}

/* Where a descriptor points: "/memfd:postie-spool (deleted)" or a file. */
static char *fd_target(int fd)
{
    char proc[64], *t = mem_alloc(4096);
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(proc, t, 4095);
    assert_true(n > 0);
    t[n] = '\0';
    return t;
}

/* A body of n octets of CRLF lines after "Subject: x\n\n"; *hl gets the header's length. */
static char *body_text(size_t n, size_t *hl)
{
    *hl = strlen("Subject: x\n\n");
    char *text = mem_alloc(*hl + n + 1);
    memcpy(text, "Subject: x\n\n", *hl);
    for (size_t i = 0; i < n; i++)
        text[*hl + i] = i % 100 == 98 ? '\r' : i % 100 == 99 ? '\n' : (char)('a' + i % 26);
    text[*hl + n] = '\0';
    return text;
}

/* A body of one input block (32 KiB) at most stays in memory, with no
 * descriptor; up to MESSAGE_SPOOL_MEMORY octets it is in a memfd; a larger
 * one moves to a file.  Byte for byte each time, one descriptor at most. */
static void test_spool_memory_then_file(void **state)
{
    (void)state;
    int before = count_fds();
    struct message m = prepare("Subject: x\n\nsmall\n", OUTCOME_OK);
    assert_int_equal(m.body_fd, -1);
    assert_int_equal(m.body_len, 7);
    assert_memory_equal(m.body_mem, "small\r\n", 7);
    assert_int_equal(count_fds(), before);
    message_free(&m);

    /* whole CRLF lines of 100 octets: just under and just over 32 KiB, and over 128 KiB */
    enum where { HELD, MEMFD, FILE_ };
    const struct {
        size_t n;
        enum where where;
    } cases[] = {{32700, HELD}, {32800, MEMFD}, {(MESSAGE_SPOOL_MEMORY / 100 + 50) * 100, FILE_}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        size_t hl, n = cases[k].n;
        char *text = body_text(n, &hl);
        m = prepare(text, OUTCOME_OK);
        assert_int_equal(m.body_len, (off_t)n);
        if (cases[k].where == HELD) {
            assert_int_equal(m.body_fd, -1);
            assert_int_equal(count_fds(), before);
        } else {
            char *t = fd_target(m.body_fd);
            assert_true((strstr(t, "memfd:postie-spool") != NULL) == (cases[k].where == MEMFD));
            free(t);
            assert_int_equal(count_fds(), before + 1);
        }
        char *b = body_of(&m);
        assert_memory_equal(b, text + hl, n);
        free(b);
        free(text);
        message_free(&m);
        assert_int_equal(count_fds(), before);
    }
}

/* message_body_spool(): a body held in memory gets a rewound memfd with the
 * same octets; a body with a descriptor keeps it. */
static void test_body_spool(void **state)
{
    (void)state;
    struct result r;
    struct message m = prepare("Subject: x\n\nline one\nline two\n", OUTCOME_OK);
    assert_int_equal(m.body_fd, -1);
    assert_int_equal(message_body_spool(&m, NULL, &r), OUTCOME_OK);
    assert_null(m.body_mem);
    assert_true(m.body_fd >= 0);
    assert_int_equal(lseek(m.body_fd, 0, SEEK_CUR), 0);
    char *t = fd_target(m.body_fd);
    assert_non_null(strstr(t, "memfd:postie-spool"));
    free(t);
    char *b = body_of(&m);
    assert_memory_equal(b, "line one\r\nline two\r\n", 20);
    free(b);
    int fd = m.body_fd;
    assert_int_equal(message_body_spool(&m, NULL, &r), OUTCOME_OK);
    assert_int_equal(m.body_fd, fd);
    message_free(&m);
}

/* message_prepare() with stream_after on a large body ending in tail. */
static int stream_prepare_with(const char *tail, bool release, struct message *m, char **want,
                               size_t *wlen)
{
    size_t cap = 200000, len = 0;
    char *text = mem_alloc(cap);
    len += (size_t)sprintf(text, "Subject: big\r\n\r\n");
    size_t hl = len;
    while (len < 100000)
        len += (size_t)sprintf(text + len, "line %zu of the body\r\n", len);
    len += (size_t)sprintf(text + len, "%s", tail);
    *wlen = len - hl;
    *want = mem_alloc(*wlen + 1);
    memcpy(*want, text + hl, *wlen);

    char *args[] = {"a@example.org"};
    struct opts o = {.args = args, .nargs = 1, .ignore_dots = true};
    struct conf c = {.qualify_domain = "box.example", .hostname = "box.example"};
    struct message_params p = {.opts = &o,
                               .conf = &c,
                               .user = "alice",
                               .stream_after = 10000,
                               .release_after_send = release};
    struct result r;
    int in = message_spool_open(NULL, &r);
    assert_int_equal(write(in, text, len), (ssize_t)len);
    lseek(in, 0, SEEK_SET);
    free(text);
    assert_int_equal(message_prepare(&p, in, m, &r), OUTCOME_OK);
    assert_non_null(m->intake);
    assert_true(m->body_len >= 10000 && m->body_len < (off_t)*wlen);
    /* a regular file: the estimate is exact for CRLF input */
    assert_int_equal(m->body_estimate, (off_t)*wlen);
    assert_null(strstr(m->headers, "MIME-Version"));
    return in;
}

static int stream_prepare(const char *tail, struct message *m, char **want, size_t *wlen)
{
    return stream_prepare_with(tail, false, m, want, wlen);
}

/* ... then message_more() to the end and message_finish(). */
static enum message_more stream(const char *tail, struct message *m, char **want, size_t *wlen)
{
    int in = stream_prepare(tail, m, want, wlen);
    enum message_more k;
    off_t last = m->body_len;
    while ((k = message_more(m, m->body_len)) == MESSAGE_MORE_DATA) {
        assert_true(m->body_len >= last);
        last = m->body_len;
    }
    /* said once, said again */
    assert_int_equal(message_more(m, m->body_len), k);
    struct result r;
    assert_int_equal(message_finish(m, &r), OUTCOME_OK);
    assert_null(m->intake);
    assert_int_equal(lseek(m->body_fd, 0, SEEK_CUR), 0);
    close(in);
    return k;
}

static void test_streaming(void **state)
{
    (void)state;
    struct message m;
    char *want;
    size_t wlen;
    /* the bet holds */
    assert_int_equal(stream("last line\r\n", &m, &want, &wlen), MESSAGE_MORE_END);
    assert_int_equal(m.body_len, (off_t)wlen);
    char *b = body_of(&m);
    assert_memory_equal(b, want, wlen);
    assert_null(strstr(m.headers, "MIME-Version"));
    assert_false(m.body_8bit);
    free(b);
    free(want);
    message_free(&m);

    /* a late 8-bit line: REDO, and finish labels the body */
    assert_int_equal(stream("Gr\xc3\xbc\xc3\x9f\x65\r\n", &m, &want, &wlen), MESSAGE_MORE_REDO);
    assert_int_equal(m.body_len, (off_t)wlen);
    assert_non_null(strstr(m.headers, "Content-Type: text/plain; charset=utf-8\r\n"));
    assert_non_null(strstr(m.headers, "Content-Transfer-Encoding: 8bit\r\n"));
    assert_true(m.body_8bit && m.eightbit);
    b = body_of(&m);
    assert_memory_equal(b, want, wlen);
    free(b);
    free(want);
    message_free(&m);

    /* a late long line: REDO, and finish re-encodes the body */
    char tail[1600];
    memset(tail, 'q', 1500);
    strcpy(tail + 1500, "\r\n");
    assert_int_equal(stream(tail, &m, &want, &wlen), MESSAGE_MORE_REDO);
    assert_true(m.reencoded);
    assert_non_null(strstr(m.headers, "Content-Transfer-Encoding: quoted-printable\r\n"));
    assert_true(m.body_len > (off_t)wlen);
    free(want);
    message_free(&m);
}

/* release_after_send: the spool is emptied once all of it was sent, and
 * not before; without it, it is kept. */
static void test_streaming_release(void **state)
{
    (void)state;
    for (int release = 0; release < 2; release++) {
        struct message m;
        char *want;
        size_t wlen;
        int in = stream_prepare_with("last\r\n", release, &m, &want, &wlen);
        /* read to the end, nothing sent yet: the spool is whole */
        enum message_more k;
        while ((k = message_more(&m, 0)) == MESSAGE_MORE_DATA)
            continue;
        assert_int_equal(k, MESSAGE_MORE_END);
        struct stat st;
        assert_int_equal(fstat(m.body_fd, &st), 0);
        assert_int_equal(st.st_size, m.body_len);
        /* one octet short of all of it: still whole */
        assert_int_equal(message_more(&m, m.body_len - 1), MESSAGE_MORE_END);
        assert_int_equal(fstat(m.body_fd, &st), 0);
        assert_int_equal(st.st_size, m.body_len);
        /* all of it sent */
        assert_int_equal(message_more(&m, m.body_len), MESSAGE_MORE_END);
        assert_int_equal(fstat(m.body_fd, &st), 0);
        assert_int_equal(st.st_size, release ? 0 : m.body_len);
        struct result r;
        assert_int_equal(message_finish(&m, &r), OUTCOME_OK);
        assert_int_equal(m.body_len, (off_t)wlen);
        free(want);
        message_free(&m);
        close(in);
    }
}

/* Freed while still reading: nothing left open. */
static void test_streaming_freed_early(void **state)
{
    (void)state;
    int before = count_fds();
    struct message m;
    char *want;
    size_t wlen;
    int in = stream_prepare("x\r\n", &m, &want, &wlen);
    assert_int_equal(message_more(&m, m.body_len), MESSAGE_MORE_DATA);
    message_free(&m);
    close(in);
    free(want);
    assert_int_equal(count_fds(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_qp_exact),
        cmocka_unit_test(test_qp_long_line_round_trip),
        cmocka_unit_test(test_fold),
        cmocka_unit_test(test_label_qp),
        cmocka_unit_test(test_label_unlabelled_8bit),
        cmocka_unit_test(test_downgrade),
        cmocka_unit_test(test_prepare_failures_clean_up),
        cmocka_unit_test(test_spool_memory_then_file),
        cmocka_unit_test(test_body_spool),
        cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_streaming_release),
        cmocka_unit_test(test_streaming_freed_early),
    };
    return TESTLIB_RUN(tests);
}
