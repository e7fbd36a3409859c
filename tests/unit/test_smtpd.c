/*
 * test_smtpd.c - the -bs protocol engine (smtpd_serve) driven over files,
 * pipes and socketpairs with a fake delivery hook.
 */
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mem.h"
#include "smtpd.h"

/* ------------------------------------------------------------- fake hook */

#define FAKE_MAX 4

struct fake_call {
    char *sender;
    char **rcpts;
    size_t nrcpts;
    unsigned notify;
    enum opts_body body;
    enum opts_ret ret;
    char *envid;
    off_t size;
    char *data;      /* the spooled DATA when it is small, NUL-terminated */
    size_t data_len; /* octets read from the spool fd */
    unsigned char first, last;
};

struct fake {
    size_t ncalls;
    struct fake_call calls[FAKE_MAX];
    enum outcome outcome[FAKE_MAX]; /* what call i returns */
    const char *text[FAKE_MAX];
    bool queued;
    bool keep_data; /* store the data (else count it) */
};

static enum outcome fake_deliver(void *arg, int fd, const struct smtpd_envelope *env,
                                 struct submit_report *rep, struct result *r)
{
    struct fake *f = arg;
    assert_true(f->ncalls < FAKE_MAX);
    size_t i = f->ncalls++;
    struct fake_call *c = &f->calls[i];
    c->sender = mem_strdup(env->sender);
    c->nrcpts = env->nrcpts;
    c->rcpts = mem_array(env->nrcpts, sizeof *c->rcpts);
    for (size_t k = 0; k < env->nrcpts; k++)
        c->rcpts[k] = mem_strdup(env->rcpts[k]);
    c->notify = env->notify;
    c->body = env->body;
    c->ret = env->ret;
    c->envid = env->envid ? mem_strdup(env->envid) : NULL;
    c->size = env->size;

    char buf[65536];
    size_t cap = f->keep_data ? 1 << 20 : 0;
    c->data = mem_alloc(cap + 1);
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        if (c->data_len == 0)
            c->first = (unsigned char)buf[0];
        c->last = (unsigned char)buf[n - 1];
        if (c->data_len + (size_t)n <= cap)
            memcpy(c->data + c->data_len, buf, (size_t)n);
        c->data_len += (size_t)n;
    }
    assert_int_equal(n, 0);

    snprintf(rep->id, sizeof rep->id, "ID%zu", i + 1);
    rep->queued = f->queued;
    rep->delivered = !f->queued;
    if (f->outcome[i] != OUTCOME_OK)
        return result_set(r, f->outcome[i], "%s", f->text[i] ? f->text[i] : "failed");
    return OUTCOME_OK;
}

static void fake_free(struct fake *f)
{
    for (size_t i = 0; i < f->ncalls; i++) {
        struct fake_call *c = &f->calls[i];
        free(c->sender);
        for (size_t k = 0; k < c->nrcpts; k++)
            free(c->rcpts[k]);
        free(c->rcpts);
        free(c->envid);
        free(c->data);
    }
}

/* ------------------------------------------------------------- sessions */

static char spool_dir[] = "/tmp/test_smtpd.XXXXXX";

static int group_setup(void **state)
{
    (void)state;
    return mkdtemp(spool_dir) == NULL ? -1 : 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return rmdir(spool_dir);
}

struct session {
    char *out; /* everything the engine wrote, NUL-terminated */
    size_t out_len;
    enum outcome rc;
    struct result r;
};

static int temp_file(void)
{
    char path[] = "/tmp/test_smtpd_io.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    return fd;
}

static char *slurp(int fd, size_t *len)
{
    if (lseek(fd, 0, SEEK_SET) != 0)
        assert_int_equal(errno, ESPIPE); /* a pipe: read what is in it */
    size_t cap = 4096, n = 0;
    char *b = mem_alloc(cap + 1);
    ssize_t got;
    while ((got = read(fd, b + n, cap - n)) > 0) {
        n += (size_t)got;
        if (n == cap) {
            cap *= 2;
            b = mem_resize(b, cap + 1, 1);
        }
    }
    b[n] = '\0';
    *len = n;
    return b;
}

/* Runs a whole conversation whose client input is in_fd (read from offset 0). */
static void run_fd(int in_fd, struct fake *f, off_t max_size, struct session *s)
{
    int out = temp_file();
    struct smtpd_settings set = {
        .hostname = "test.example",
        .spool_dir = spool_dir,
        .max_size = max_size,
        .timeout = 5,
    };
    struct smtpd_hooks hooks = {.deliver = fake_deliver, .arg = f};
    assert_int_equal(lseek(in_fd, 0, SEEK_SET), 0);
    s->rc = smtpd_serve(in_fd, out, &set, &hooks, &s->r);
    s->out = slurp(out, &s->out_len);
    close(out);
}

/* Runs a conversation whose whole client input is the string in (all at once: pipelined). */
static void run(const char *in, struct fake *f, struct session *s)
{
    int fd = temp_file();
    size_t len = strlen(in);
    assert_int_equal(write(fd, in, len), (ssize_t)len);
    run_fd(fd, f, 0, s);
    close(fd);
}

/*
 * The reply codes of the session, one per reply (the last line of a
 * multi-line reply), separated by spaces: "220 250 221".
 */
static char *codes(const struct session *s)
{
    char *c = mem_alloc(s->out_len + 1);
    size_t n = 0;
    const char *p = s->out;
    while (*p != '\0') {
        const char *eol = strstr(p, "\r\n");
        assert_non_null(eol);
        assert_true(eol - p >= 3);
        if (eol - p == 3 || p[3] == ' ') {
            if (n > 0)
                c[n++] = ' ';
            memcpy(c + n, p, 3);
            n += 3;
        } else {
            assert_int_equal(p[3], '-');
        }
        p = eol + 2;
    }
    c[n] = '\0';
    return c;
}

static void assert_codes(const struct session *s, const char *want)
{
    char *got = codes(s);
    if (strcmp(got, want) != 0)
        print_error("replies were:\n%s\n", s->out);
    assert_string_equal(got, want);
    free(got);
}

static void session_free(struct session *s)
{
    free(s->out);
}

#define HELLO    "EHLO client.example\r\n"
#define ENVELOPE HELLO "MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.net>\r\n"

/* ------------------------------------------------------------- the tests */

static void test_greeting_and_quit(void **state)
{
    (void)state;
    struct fake f = {0};
    struct session s;
    run("QUIT\r\n", &f, &s);
    assert_string_equal(s.out, "220 test.example ESMTP postie\r\n221 2.0.0 Bye\r\n");
    assert_int_equal(s.rc, OUTCOME_OK);
    assert_int_equal(f.ncalls, 0);
    session_free(&s);
}

static void test_ehlo_capabilities(void **state)
{
    (void)state;
    struct fake f = {0};
    struct session s;
    run("ehlo client.example\r\nQUIT\r\n", &f, &s);
    assert_string_equal(s.out, "220 test.example ESMTP postie\r\n"
                               "250-test.example\r\n"
                               "250-PIPELINING\r\n"
                               "250-SIZE 536870912\r\n"
                               "250-8BITMIME\r\n"
                               "250-DSN\r\n"
                               "250 ENHANCEDSTATUSCODES\r\n"
                               "221 2.0.0 Bye\r\n");
    assert_null(strstr(s.out, "AUTH"));
    assert_null(strstr(s.out, "STARTTLS"));
    session_free(&s);
}

static void test_helo(void **state)
{
    (void)state;
    struct fake f = {0};
    struct session s;
    run("HELO client.example\r\nMAIL FROM:<a@x.example> BODY=8BITMIME\r\n"
        "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example> NOTIFY=NEVER\r\n"
        "RCPT TO:<b@y.example>\r\nQUIT\r\n",
        &f, &s);
    assert_codes(&s, "220 250 555 250 555 250 221");
    assert_non_null(strstr(s.out, "250 test.example\r\n"));
    session_free(&s);
}

static void test_full_transaction(void **state)
{
    (void)state;
    struct fake f = {.keep_data = true, .queued = true};
    struct session s;
    run(ENVELOPE "RCPT TO:<carol@example.net>\r\nDATA\r\n"
                 "From: alice@example.org\r\nTo: bob@example.net\r\nBcc: carol@example.net\r\n"
                 "Subject: hi\r\n\r\nbody line\r\n.\r\nQUIT\r\n",
        &f, &s);
    assert_codes(&s, "220 250 250 250 250 354 250 221");
    assert_non_null(strstr(s.out, "250 2.1.0 Ok\r\n"));
    assert_non_null(strstr(s.out, "250 2.1.5 Ok\r\n"));
    assert_non_null(strstr(s.out, "354 End data with <CR><LF>.<CR><LF>\r\n"));
    assert_non_null(strstr(s.out, "250 2.0.0 Ok: queued as ID1\r\n"));
    assert_int_equal(s.rc, OUTCOME_OK);
    assert_int_equal(f.ncalls, 1);
    struct fake_call *c = &f.calls[0];
    assert_string_equal(c->sender, "alice@example.org");
    assert_int_equal(c->nrcpts, 2);
    assert_string_equal(c->rcpts[0], "bob@example.net");
    assert_string_equal(c->rcpts[1], "carol@example.net");
    assert_string_equal(c->data, "From: alice@example.org\r\nTo: bob@example.net\r\n"
                                 "Bcc: carol@example.net\r\nSubject: hi\r\n\r\nbody line\r\n");
    assert_int_equal(c->size, (off_t)c->data_len);
    assert_int_equal(c->body, OPTS_BODY_UNSET);
    assert_int_equal(c->ret, OPTS_RET_UNSET);
    assert_null(c->envid);
    assert_int_equal(c->notify, 0);
    fake_free(&f);
    session_free(&s);
}

static void test_delivered_reply(void **state)
{
    (void)state;
    struct fake f = {0};
    struct session s;
    run(ENVELOPE "DATA\r\nSubject: x\r\n\r\ny\r\n.\r\nQUIT\r\n", &f, &s);
    assert_non_null(strstr(s.out, "250 2.0.0 Ok: delivered as ID1\r\n"));
    fake_free(&f);
    session_free(&s);
}

static void test_dot_unstuffing(void **state)
{
    (void)state;
    struct fake f = {.keep_data = true};
    struct session s;
    run(ENVELOPE "DATA\r\n"
                 "Subject: dots\r\n\r\n"
                 "..\r\n"
                 "..leading\r\n"
                 "...\r\n"
                 "mid.dle.\r\n"
                 ". space\r\n"
                 ".\rcr\r\n"
                 "\r\n"
                 ".\r\n"
                 "QUIT\r\n",
        &f, &s);
    assert_codes(&s, "220 250 250 250 354 250 221");
    assert_int_equal(f.ncalls, 1);
    assert_string_equal(f.calls[0].data, "Subject: dots\r\n\r\n"
                                         ".\r\n"
                                         ".leading\r\n"
                                         "..\r\n"
                                         "mid.dle.\r\n"
                                         " space\r\n"
                                         "\rcr\r\n"
                                         "\r\n");
    fake_free(&f);
    session_free(&s);
}

static void test_empty_message_and_lf_only(void **state)
{
    (void)state;
    struct fake f = {.keep_data = true};
    struct session s;
    /* bare LF line ends are accepted for commands and DATA alike */
    run("EHLO c\nMAIL FROM:<>\nRCPT TO:<root>\nDATA\n.\nMAIL FROM:<a@b.example>\n"
        "RCPT TO:<c@d.example>\nDATA\nline\n..x\n.\nQUIT\n",
        &f, &s);
    assert_codes(&s, "220 250 250 250 354 250 250 250 354 250 221");
    assert_int_equal(f.ncalls, 2);
    assert_string_equal(f.calls[0].sender, "");
    assert_string_equal(f.calls[0].rcpts[0], "root");
    assert_int_equal(f.calls[0].data_len, 0);
    assert_string_equal(f.calls[1].data, "line\n.x\n");
    fake_free(&f);
    session_free(&s);
}

static void test_several_messages(void **state)
{
    (void)state;
    struct fake f = {.keep_data = true, .queued = true};
    struct session s;
    run(HELLO "MAIL FROM:<a@one.example>\r\nRCPT TO:<x@one.example>\r\nDATA\r\n"
              "Subject: 1\r\n\r\none\r\n.\r\n"
              "MAIL FROM:<b@two.example>\r\nRCPT TO:<y@two.example>\r\n"
              "RCPT TO:<z@two.example>\r\nDATA\r\nSubject: 2\r\n\r\ntwo\r\n.\r\n"
              "QUIT\r\n",
        &f, &s);
    assert_codes(&s, "220 250 250 250 354 250 250 250 250 354 250 221");
    assert_non_null(strstr(s.out, "queued as ID1\r\n"));
    assert_non_null(strstr(s.out, "queued as ID2\r\n"));
    assert_int_equal(f.ncalls, 2);
    assert_string_equal(f.calls[0].sender, "a@one.example");
    assert_int_equal(f.calls[0].nrcpts, 1);
    assert_string_equal(f.calls[0].data, "Subject: 1\r\n\r\none\r\n");
    assert_string_equal(f.calls[1].sender, "b@two.example");
    assert_int_equal(f.calls[1].nrcpts, 2);
    assert_string_equal(f.calls[1].rcpts[1], "z@two.example");
    assert_string_equal(f.calls[1].data, "Subject: 2\r\n\r\ntwo\r\n");
    fake_free(&f);
    session_free(&s);
}

static void test_rset(void **state)
{
    (void)state;
    struct fake f = {.keep_data = true};
    struct session s;
    run(ENVELOPE "RSET\r\nRCPT TO:<b@x.example>\r\nDATA\r\nRSET extra\r\n"
                 "MAIL FROM:<new@x.example>\r\nRCPT TO:<c@x.example>\r\nDATA\r\nhi\r\n.\r\n"
                 "QUIT\r\n",
        &f, &s);
    assert_codes(&s, "220 250 250 250 250 503 503 501 250 250 354 250 221");
    assert_int_equal(f.ncalls, 1);
    assert_string_equal(f.calls[0].sender, "new@x.example");
    assert_int_equal(f.calls[0].nrcpts, 1);
    assert_string_equal(f.calls[0].rcpts[0], "c@x.example");
    fake_free(&f);
    session_free(&s);
}

static void test_noop_help_vrfy(void **state)
{
    (void)state;
    struct fake f = {0};
    struct session s;
    run("NOOP\r\nHELP\r\nVRFY root\r\nVRFY\r\nnoop with args\r\nQUIT\r\n", &f, &s);
    assert_codes(&s, "220 250 214 252 501 250 221");
    assert_non_null(strstr(s.out, "214-2.0.0 "));
    assert_non_null(strstr(s.out, "252 2.5.2 "));
    session_free(&s);
}

static void test_bad_sequence(void **state)
{
    (void)state;
    struct fake f = {0};
    struct session s;
    run("MAIL FROM:<a@x.example>\r\n" /* before EHLO */
        "EHLO c\r\n"
        "RCPT TO:<b@x.example>\r\n" /* before MAIL */
        "DATA\r\n"                  /* before MAIL */
        "MAIL FROM:<a@x.example>\r\n"
        "MAIL FROM:<a@x.example>\r\n" /* nested */
        "DATA\r\n"                    /* no RCPT */
        "RCPT TO:<bad address@x.example>\r\n"
        "DATA\r\n" /* every RCPT failed */
        "QUIT\r\n",
        &f, &s);
    assert_codes(&s, "220 503 250 503 503 250 503 503 501 554 221");
    assert_non_null(strstr(s.out, "503 5.5.1 Error: send HELO/EHLO first\r\n"));
    assert_non_null(strstr(s.out, "503 5.5.1 Error: need RCPT command\r\n"));
    assert_non_null(strstr(s.out, "554 5.5.1 Error: no valid recipients\r\n"));
    assert_int_equal(f.ncalls, 0);
    session_free(&s);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    struct fake f = {0};
    struct session s;
    run("EHLO\r\n"
        "EHLO c\r\n"
        "MAIL FROM:a@x.example\r\n"
        "MAIL TO:<a@x.example>\r\n"
        "MAIL FROM:<a@x.example\r\n"
        "MAIL FROM:<a@x.example>junk\r\n"
        "MAIL FROM:<a<b@x.example>\r\n"
        "MAIL FROM:<\xc3\xa9@x.example>\r\n"
        "MAIL FROM:<a@x.example> SIZE=abc\r\n"
        "MAIL FROM:<a@x.example> RET=NONE\r\n"
        "MAIL FROM:<a@x.example> ENVID=a+zz\r\n"
        "MAIL FROM:<a@x.example> ENVID=a+0Ab\r\n"
        "MAIL FROM:<a@x.example> BODY=7BIT BODY=7BIT\r\n"
        "MAIL FROM:<\"unbalanced@x.example>\r\n"
        "MAIL FROM:< a@x.example>\r\n"
        "MAIL FROM: <a@x.example>\r\n"
        "QUIT\r\n",
        &f, &s);
    assert_codes(&s, "220 501 250 501 501 501 501 501 501 501 501 501 501 501 501 501 250 221");
    assert_non_null(strstr(s.out, "501 5.5.4 Syntax: EHLO hostname\r\n"));
    assert_non_null(strstr(s.out, "501 5.1.7 Bad sender address syntax: invalid address"));
    assert_non_null(strstr(s.out, "(SMTPUTF8 is not supported)\r\n"));
    session_free(&s);

    run(HELLO "MAIL FROM:<a@x.example>\r\n"
              "RCPT TO:<>\r\n"
              "RCPT TO:<b@>\r\n"
              "RCPT TO:<b@x..example>\r\n"
              "RCPT TO:<@x.example>\r\n"
              "RCPT TO:<b@x.example> NOTIFY=NEVER,SUCCESS\r\n"
              "RCPT TO:<b@x.example> NOTIFY=SOMETIMES\r\n"
              "RCPT TO:<b@x.example> ORCPT=rfc822\r\n"
              "RCPT TO:<b@x.example> NOTIFY=DELAY NOTIFY=DELAY\r\n"
              "RCPT TO:<\"john doe\"@x.example> ORCPT=rfc822;john+20doe@x.example\r\n"
              "RCPT TO:<b@[192.0.2.1]>\r\n"
              "DATA now\r\n"
              "QUIT\r\n",
        &f, &s);
    assert_codes(&s, "220 250 250 501 501 501 501 501 501 501 501 250 250 501 221");
    assert_non_null(strstr(s.out, "501 5.1.3 Bad recipient address syntax: empty address\r\n"));
    session_free(&s);
}

static void test_unknown_and_unimplemented(void **state)
{
    (void)state;
    struct fake f = {0};
    struct session s;
    run("FROB\r\n\r\nEXPN staff\r\nSTARTTLS\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"
        "BDAT 10 LAST\r\nQUIT\r\n",
        &f, &s);
    assert_codes(&s, "220 500 500 502 502 502 502 221");
    assert_non_null(strstr(s.out, "500 5.5.2 Error: command not recognized\r\n"));
    assert_non_null(strstr(s.out, "502 5.5.1 Error: command not implemented\r\n"));
    session_free(&s);

    const char nul[] = "NO\0OP\r\nQUIT\r\n";
    int fd = temp_file();
    assert_int_equal(write(fd, nul, sizeof nul - 1), (ssize_t)(sizeof nul - 1));
    run_fd(fd, &f, 0, &s);
    close(fd);
    assert_codes(&s, "220 500 221");
    assert_non_null(strstr(s.out, "500 5.5.2 Error: NUL in command line\r\n"));
    session_free(&s);
}

static void test_line_length_limits(void **state)
{
    (void)state;
    struct fake f = {0};
    struct session s;
    /* 512 octets with CRLF is the longest command line; 513 is too long */
    char *ok = mem_alloc(600), *bad = mem_alloc(600);
    memset(ok, 'x', 512);
    memcpy(ok, "NOOP ", 5);
    memcpy(ok + 510, "\r\n", 3);
    memset(bad, 'x', 513);
    memcpy(bad, "NOOP ", 5);
    memcpy(bad + 511, "\r\n", 3);
    assert_int_equal(strlen(ok), 512);
    assert_int_equal(strlen(bad), 513);
    /* MAIL and RCPT may be longer with extension parameters (RFC 1870, 3461) */
    char rcpt[1100];
    snprintf(rcpt, sizeof rcpt, "RCPT TO:<b@x.example> ORCPT=rfc822;%0600d\r\n", 7);
    char *in = mem_printf("%s%sEHLO c\r\nMAIL FROM:<a@x.example>\r\n%sQUIT\r\n", ok, bad, rcpt);
    run(in, &f, &s);
    assert_codes(&s, "220 250 500 250 250 501 221");
    assert_non_null(strstr(s.out, "500 5.5.2 Error: line too long\r\n"));
    /* the ORCPT of 607 octets is within RCPT's limit but over RFC 3461's 500 */
    session_free(&s);
    free(in);

    char rcpt2[1100];
    snprintf(rcpt2, sizeof rcpt2, "RCPT TO:<b@x.example> ORCPT=rfc822;%0490d\r\n", 7);
    in = mem_printf("EHLO c\r\nMAIL FROM:<a@x.example>\r\n%sQUIT\r\n", rcpt2);
    assert_true(strlen(rcpt2) > 512);
    run(in, &f, &s);
    assert_codes(&s, "220 250 250 250 221");
    session_free(&s);
    free(in);
    free(ok);
    free(bad);
}

static void test_huge_command_line_bounded(void **state)
{
    (void)state;
    struct fake f = {0};
    struct session s;
    int fd = temp_file();
    char chunk[65536];
    memset(chunk, 'A', sizeof chunk);
    for (int i = 0; i < 64; i++) /* 4 MiB without a line end */
        assert_int_equal(write(fd, chunk, sizeof chunk), (ssize_t)sizeof chunk);
    const char *tail = "\r\nNOOP\r\nQUIT\r\n";
    assert_int_equal(write(fd, tail, strlen(tail)), (ssize_t)strlen(tail));
    run_fd(fd, &f, 0, &s);
    close(fd);
    assert_codes(&s, "220 500 250 221");
    session_free(&s);
}

static void test_pipelining(void **state)
{
    (void)state;
    /* a pipelining client sends everything in one write, DATA last in its group */
    struct fake f = {.keep_data = true, .queued = true};
    struct session s;
    int sv[2], out[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(pipe(out), 0);
    const char *in = "EHLO c\r\nMAIL FROM:<a@x.example> SIZE=20\r\nRCPT TO:<b@x.example>\r\n"
                     "RCPT TO:<bad>@x.example>\r\nRCPT TO:<c@x.example>\r\nDATA\r\n"
                     "Subject: p\r\n\r\nbody\r\n.\r\nMAIL FROM:<d@x.example>\r\n"
                     "RCPT TO:<e@x.example>\r\nRSET\r\nNOOP\r\nQUIT\r\n";
    assert_int_equal(write(sv[0], in, strlen(in)), (ssize_t)strlen(in));
    shutdown(sv[0], SHUT_WR);
    struct smtpd_settings set = {.hostname = "h", .spool_dir = spool_dir, .timeout = 5};
    struct smtpd_hooks hooks = {.deliver = fake_deliver, .arg = &f};
    s.rc = smtpd_serve(sv[1], out[1], &set, &hooks, &s.r);
    close(out[1]);
    s.out = slurp(out[0], &s.out_len);
    close(out[0]);
    close(sv[0]);
    close(sv[1]);
    assert_int_equal(s.rc, OUTCOME_OK);
    assert_codes(&s, "220 250 250 250 501 250 354 250 250 250 250 250 221");
    assert_int_equal(f.ncalls, 1);
    assert_int_equal(f.calls[0].nrcpts, 2);
    assert_string_equal(f.calls[0].data, "Subject: p\r\n\r\nbody\r\n");
    fake_free(&f);
    session_free(&s);
}

static void test_vanish_mid_data(void **state)
{
    (void)state;
    struct fake f = {0};
    struct session s;
    run(ENVELOPE "DATA\r\nSubject: half\r\n\r\nthe client dies here", &f, &s);
    assert_int_equal(f.ncalls, 0);
    assert_int_equal(s.rc, OUTCOME_IOERR);
    assert_string_equal(s.r.text, ""); /* quiet */
    assert_codes(&s, "220 250 250 250 354");
    session_free(&s);

    /* the same just after "." without its line end */
    run(ENVELOPE "DATA\r\nSubject: half\r\n\r\nbody\r\n.", &f, &s);
    assert_int_equal(f.ncalls, 0);
    assert_int_equal(s.rc, OUTCOME_IOERR);
    session_free(&s);
}

static void test_vanish_between_commands(void **state)
{
    (void)state;
    struct fake f = {0};
    struct session s;
    /* in an open transaction: a failure */
    run(ENVELOPE, &f, &s);
    assert_int_equal(s.rc, OUTCOME_IOERR);
    session_free(&s);
    /* after a finished message: fine, nothing was lost */
    run(ENVELOPE "DATA\r\nx\r\n.\r\n", &f, &s);
    assert_int_equal(s.rc, OUTCOME_OK);
    assert_int_equal(f.ncalls, 1);
    fake_free(&f);
    session_free(&s);
}

static long max_rss_kib(void)
{
    struct rusage ru;
    assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
    return ru.ru_maxrss;
}

static void test_huge_data_line_bounded(void **state)
{
    (void)state;
    struct fake f = {0};
    struct session s;
    int fd = temp_file();
    const char *head = ENVELOPE "DATA\r\nSubject: long\r\n\r\n.";
    assert_int_equal(write(fd, head, strlen(head)), (ssize_t)strlen(head));
    char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    chunk[0] = 'y';
    for (int i = 0; i < 256; i++) /* one 16 MiB line */
        assert_int_equal(write(fd, chunk, sizeof chunk), (ssize_t)sizeof chunk);
    const char *tail = "z\r\n.\r\nQUIT\r\n";
    assert_int_equal(write(fd, tail, strlen(tail)), (ssize_t)strlen(tail));
    long before = max_rss_kib();
    run_fd(fd, &f, 0, &s);
    long after = max_rss_kib();
    close(fd);
    assert_codes(&s, "220 250 250 250 354 250 221");
    assert_int_equal(f.ncalls, 1);
    /* "Subject: long\r\n\r\n" + the line (its leading dot removed) + "z\r\n" */
    assert_int_equal(f.calls[0].data_len, 17 + 256 * 65536 + 3);
    assert_int_equal(f.calls[0].size, (off_t)f.calls[0].data_len);
    assert_int_equal(f.calls[0].first, 'S');
    assert_int_equal(f.calls[0].last, '\n');
    assert_true(after - before < 4096);
    fake_free(&f);
    session_free(&s);
}

static void test_size_limit(void **state)
{
    (void)state;
    struct fake f = {0};
    struct session s;
    int fd = temp_file();
    const char *in = ENVELOPE "DATA\r\n0123456789012345678901234567890123456789\r\n.\r\n"
                              "MAIL FROM:<a@x.example> SIZE=41\r\n"
                              "MAIL FROM:<a@x.example> SIZE=40\r\nRCPT TO:<b@x.example>\r\n"
                              "DATA\r\n01234567890123456789\r\n.\r\nQUIT\r\n";
    assert_int_equal(write(fd, in, strlen(in)), (ssize_t)strlen(in));
    run_fd(fd, &f, 40, &s);
    close(fd);
    assert_codes(&s, "220 250 250 250 354 552 552 250 250 354 250 221");
    assert_non_null(strstr(s.out, "250-SIZE 40\r\n"));
    assert_non_null(strstr(s.out, "552 5.3.4 Message size exceeds the limit of 40 octets\r\n"));
    assert_int_equal(f.ncalls, 1);
    assert_int_equal(f.calls[0].data_len, 22);
    fake_free(&f);
    session_free(&s);
}

static void test_mail_parameters(void **state)
{
    (void)state;
    struct fake f = {0};
    struct session s;
    run(HELLO "MAIL FROM:<a@x.example> body=8bitmime SIZE=100 RET=HDRS ENVID=QQ+2B+3Dx\r\n"
              "RCPT TO:<b@x.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+40x.example\r\n"
              "RCPT TO:<c@x.example> NOTIFY=failure,success\r\n"
              "RCPT TO:<d@x.example> NOTIFY=NEVER\r\n"
              "RCPT TO:<e@x.example>\r\n"
              "RCPT TO:<@relay.example,@other.example:f@x.example> notify=Success,Failure\r\n"
              "DATA\r\nx\r\n.\r\n"
              "MAIL FROM:<a@x.example> BODY=BINARYMIME\r\n"
              "MAIL FROM:<a@x.example> SMTPUTF8\r\n"
              "MAIL FROM:<a@x.example> AUTH=<>\r\n"
              "MAIL FROM:<a@x.example> BODY=7BIT\r\n"
              "RCPT TO:<b@x.example> FOO=bar\r\n"
              "RCPT TO:<b@x.example> NOTIFY=DELAY\r\n"
              "DATA\r\nx\r\n.\r\n"
              "QUIT\r\n",
        &f, &s);
    assert_codes(&s, "220 250 250 250 250 452 452 250 354 250 555 555 555 250 555 250 354 250 221");
    assert_non_null(strstr(s.out, "555 5.5.4 Unsupported parameter SMTPUTF8\r\n"));
    assert_non_null(strstr(s.out, "452 4.5.3 "));
    assert_int_equal(f.ncalls, 2);
    struct fake_call *c = &f.calls[0];
    assert_int_equal(c->body, OPTS_BODY_8BITMIME);
    assert_int_equal(c->ret, OPTS_RET_HDRS);
    assert_string_equal(c->envid, "QQ+=x");
    assert_int_equal(c->notify, OPTS_NOTIFY_SUCCESS | OPTS_NOTIFY_FAILURE);
    assert_int_equal(c->nrcpts, 3);
    assert_string_equal(c->rcpts[2], "f@x.example");
    c = &f.calls[1];
    assert_int_equal(c->body, OPTS_BODY_7BIT);
    assert_int_equal(c->ret, OPTS_RET_UNSET);
    assert_null(c->envid);
    assert_int_equal(c->notify, OPTS_NOTIFY_DELAY);
    fake_free(&f);
    session_free(&s);
}

static void test_too_many_recipients(void **state)
{
    (void)state;
    struct fake f = {0};
    struct session s;
    size_t cap = 64 * (SMTPD_MAX_RCPTS + 10);
    char *in = mem_alloc(cap);
    size_t n = (size_t)snprintf(in, cap, "%s", HELLO "MAIL FROM:<a@x.example>\r\n");
    for (int i = 0; i <= SMTPD_MAX_RCPTS; i++)
        n += (size_t)snprintf(in + n, cap - n, "RCPT TO:<r%d@x.example>\r\n", i);
    snprintf(in + n, cap - n, "DATA\r\nx\r\n.\r\nQUIT\r\n");
    run(in, &f, &s);
    free(in);
    assert_non_null(strstr(s.out, "250 2.1.5 Ok\r\n452 4.5.3 Too many recipients\r\n354 "));
    assert_int_equal(f.ncalls, 1);
    assert_int_equal(f.calls[0].nrcpts, SMTPD_MAX_RCPTS);
    fake_free(&f);
    session_free(&s);
}

static void test_delivery_failures(void **state)
{
    (void)state;
    struct fake f = {
        .outcome = {OUTCOME_TEMPFAIL, OUTCOME_UNAVAILABLE, OUTCOME_NOUSER, OUTCOME_OK},
        .text = {"cannot connect to the smarthost; the queue is off, message not queued",
                 "smarthost rejected the message: 554 5.7.1 spam\r\n250 forged",
                 "smarthost rejected some recipients: 1 of 2 recipients rejected"},
        .queued = true,
    };
    struct session s;
    const char *msg = "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@x.example>\r\nDATA\r\nx\r\n.\r\n";
    char *in = mem_printf(HELLO "%s%s%s%sQUIT\r\n", msg, msg, msg, msg);
    run(in, &f, &s);
    free(in);
    assert_codes(&s, "220 250 250 250 354 451 250 250 354 554 250 250 354 554 250 250 354 250 "
                     "221");
    assert_non_null(strstr(s.out, "451 4.4.0 cannot connect to the smarthost; the queue is off, "
                                  "message not queued\r\n"));
    /* server text can never forge a second reply line */
    assert_non_null(strstr(s.out, "554 5.0.0 smarthost rejected the message: 554 5.7.1 spam??250 "
                                  "forged\r\n"));
    assert_non_null(strstr(s.out, "554 5.1.1 smarthost rejected some recipients"));
    assert_non_null(strstr(s.out, "250 2.0.0 Ok: queued as ID4\r\n"));
    assert_int_equal(f.ncalls, 4);
    assert_int_equal(s.rc, OUTCOME_OK);
    fake_free(&f);
    session_free(&s);
}

static void test_reply_for(void **state)
{
    (void)state;
    const char *enh;
    assert_int_equal(smtpd_reply_for(OUTCOME_TEMPFAIL, &enh), 451);
    assert_string_equal(enh, "4.4.0");
    assert_int_equal(smtpd_reply_for(OUTCOME_CANTCREAT, &enh), 452);
    assert_int_equal(smtpd_reply_for(OUTCOME_CONFIG, &enh), 451);
    assert_int_equal(smtpd_reply_for(OUTCOME_NOPERM, &enh), 451);
    assert_int_equal(smtpd_reply_for(OUTCOME_DATAERR, &enh), 554);
    assert_string_equal(enh, "5.6.0");
    assert_int_equal(smtpd_reply_for(OUTCOME_UNAVAILABLE, &enh), 554);
    assert_int_equal(smtpd_reply_for(OUTCOME_NOUSER, &enh), 554);
    assert_int_equal(smtpd_reply_for((enum outcome)99, &enh), 451);
}

static void test_xtext(void **state)
{
    (void)state;
    char *d = smtpd_xtext_decode("a+2Bb+3D");
    assert_string_equal(d, "a+b=");
    free(d);
    assert_null(smtpd_xtext_decode("a+2"));
    assert_null(smtpd_xtext_decode("a+2b"));
    assert_null(smtpd_xtext_decode("a=b"));
    assert_null(smtpd_xtext_decode("a b"));
    d = smtpd_xtext_decode("");
    assert_string_equal(d, "");
    free(d);
}

static void test_too_many_errors(void **state)
{
    (void)state;
    struct fake f = {0};
    struct session s;
    char in[2048] = "";
    for (int i = 0; i < 30; i++)
        strcat(in, "BOGUS\r\n");
    run(in, &f, &s);
    assert_int_equal(s.rc, OUTCOME_PROTOCOL);
    assert_non_null(strstr(s.out, "421 4.7.0 test.example Error: too many errors\r\n"));
    char *c = codes(&s);
    assert_int_equal(strlen(c), 4 * 22 - 1); /* greeting, 20 errors, 421 */
    free(c);
    session_free(&s);
}

/* An interactive client on a socketpair: replies must arrive before the engine waits. */
struct server_thread {
    int fd;
    struct fake *f;
    int timeout;
    enum outcome rc;
    struct result r;
};

static void *server_main(void *arg)
{
    struct server_thread *t = arg;
    struct smtpd_settings set = {.hostname = "h", .spool_dir = spool_dir, .timeout = t->timeout};
    struct smtpd_hooks hooks = {.deliver = fake_deliver, .arg = t->f};
    t->rc = smtpd_serve(t->fd, t->fd, &set, &hooks, &t->r);
    close(t->fd);
    return NULL;
}

/* Reads one whole reply (up to a line "ddd ...\r\n"); returns its last line. */
static char *read_reply(int fd, char *buf, size_t len)
{
    size_t n = 0;
    for (;;) {
        assert_true(n + 1 < len);
        ssize_t got = read(fd, buf + n, 1);
        assert_int_equal(got, 1);
        n++;
        buf[n] = '\0';
        if (n >= 2 && buf[n - 2] == '\r' && buf[n - 1] == '\n') {
            char *last = buf + n - 2;
            while (last > buf && !(last[-1] == '\n'))
                last--;
            if (strlen(last) >= 4 && last[3] == ' ')
                return last;
        }
    }
}

static void say(int fd, const char *line)
{
    assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
}

static void test_interactive(void **state)
{
    (void)state;
    struct fake f = {.keep_data = true, .queued = true};
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct server_thread t = {.fd = sv[1], .f = &f, .timeout = 10};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, server_main, &t), 0);
    char buf[4096];
    assert_true(strncmp(read_reply(sv[0], buf, sizeof buf), "220 ", 4) == 0);
    say(sv[0], "EHLO me\r\n");
    assert_string_equal(read_reply(sv[0], buf, sizeof buf), "250 ENHANCEDSTATUSCODES\r\n");
    say(sv[0], "MAIL FROM:<a@x.example>\r\n");
    assert_string_equal(read_reply(sv[0], buf, sizeof buf), "250 2.1.0 Ok\r\n");
    say(sv[0], "RCPT TO:<b@x.example>\r\n");
    assert_string_equal(read_reply(sv[0], buf, sizeof buf), "250 2.1.5 Ok\r\n");
    say(sv[0], "DATA\r\n");
    assert_true(strncmp(read_reply(sv[0], buf, sizeof buf), "354 ", 4) == 0);
    say(sv[0], "Subject: i\r\n\r\n");
    say(sv[0], "..one\r\n");
    say(sv[0], ".\r\n");
    assert_string_equal(read_reply(sv[0], buf, sizeof buf), "250 2.0.0 Ok: queued as ID1\r\n");
    say(sv[0], "QUIT\r\n");
    assert_string_equal(read_reply(sv[0], buf, sizeof buf), "221 2.0.0 Bye\r\n");
    assert_int_equal(pthread_join(th, NULL), 0);
    close(sv[0]);
    assert_int_equal(t.rc, OUTCOME_OK);
    assert_int_equal(f.ncalls, 1);
    assert_string_equal(f.calls[0].data, "Subject: i\r\n\r\n.one\r\n");
    fake_free(&f);
}

static void test_timeout(void **state)
{
    (void)state;
    struct fake f = {0};
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct server_thread t = {.fd = sv[1], .f = &f, .timeout = 1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, server_main, &t), 0);
    char buf[4096];
    read_reply(sv[0], buf, sizeof buf);
    say(sv[0], "EHLO me\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@x.example>\r\nDATA\r\n");
    assert_true(strncmp(read_reply(sv[0], buf, sizeof buf), "250 ", 4) == 0);
    assert_true(strncmp(read_reply(sv[0], buf, sizeof buf), "250 ", 4) == 0);
    assert_true(strncmp(read_reply(sv[0], buf, sizeof buf), "250 ", 4) == 0);
    assert_true(strncmp(read_reply(sv[0], buf, sizeof buf), "354 ", 4) == 0);
    say(sv[0], "Subject: stalled\r\n");
    /* then silence: the engine gives up, says so and delivers nothing */
    assert_string_equal(read_reply(sv[0], buf, sizeof buf),
                        "421 4.4.2 h Error: timeout exceeded\r\n");
    assert_int_equal(pthread_join(th, NULL), 0);
    close(sv[0]);
    assert_int_equal(t.rc, OUTCOME_IOERR);
    assert_non_null(strstr(t.r.text, "not accepted"));
    assert_int_equal(f.ncalls, 0);
}

static void test_client_stops_reading(void **state)
{
    (void)state;
    /* the reply channel is closed: the engine stops, nothing is delivered */
    struct fake f = {0};
    int in[2], out[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    close(out[0]);
    signal(SIGPIPE, SIG_IGN);
    const char *cmds = ENVELOPE "DATA\r\nx\r\n.\r\nQUIT\r\n";
    assert_int_equal(write(in[1], cmds, strlen(cmds)), (ssize_t)strlen(cmds));
    close(in[1]);
    struct smtpd_settings set = {.hostname = "h", .spool_dir = spool_dir, .timeout = 5};
    struct smtpd_hooks hooks = {.deliver = fake_deliver, .arg = &f};
    struct result r;
    enum outcome rc = smtpd_serve(in[0], out[1], &set, &hooks, &r);
    close(in[0]);
    close(out[1]);
    assert_int_equal(rc, OUTCOME_IOERR);
    assert_int_equal(f.ncalls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greeting_and_quit),
        cmocka_unit_test(test_ehlo_capabilities),
        cmocka_unit_test(test_helo),
        cmocka_unit_test(test_full_transaction),
        cmocka_unit_test(test_delivered_reply),
        cmocka_unit_test(test_dot_unstuffing),
        cmocka_unit_test(test_empty_message_and_lf_only),
        cmocka_unit_test(test_several_messages),
        cmocka_unit_test(test_rset),
        cmocka_unit_test(test_noop_help_vrfy),
        cmocka_unit_test(test_bad_sequence),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_unknown_and_unimplemented),
        cmocka_unit_test(test_line_length_limits),
        cmocka_unit_test(test_huge_command_line_bounded),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_vanish_mid_data),
        cmocka_unit_test(test_vanish_between_commands),
        cmocka_unit_test(test_huge_data_line_bounded),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_mail_parameters),
        cmocka_unit_test(test_too_many_recipients),
        cmocka_unit_test(test_delivery_failures),
        cmocka_unit_test(test_reply_for),
        cmocka_unit_test(test_xtext),
        cmocka_unit_test(test_too_many_errors),
        cmocka_unit_test(test_interactive),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_client_stops_reading),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown) == 0 ? 0 : 1;
}
