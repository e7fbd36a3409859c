/*
 * test_input.c - input_read(): line ends, the lone dot, the mbox From line,
 * the header/body split, NUL octets, the header cap, 8-bit and long-line
 * tracking, bounded memory on a large body, and the spill from a memory
 * file to a real one.
 */
#include "testlib.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "input.h"
#include "mem.h"
#include "message.h"

struct run {
    enum outcome o;
    struct input_result in;
    struct result r;
    char *body;
    size_t body_len;
    char *rest; /* what was left unread on the input */
};

/* Writes data to a temporary file and returns it rewound (a pipe could block). */
static int data_fd(const char *data, size_t len)
{
    struct result r;
    int fd = message_spool_open(NULL, &r);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

static char *fd_slurp(int fd, off_t from, size_t *len)
{
    off_t end = lseek(fd, 0, SEEK_END);
    size_t n = (size_t)(end - from);
    char *buf = mem_alloc(n + 1);
    assert_int_equal(pread(fd, buf, n, from), (ssize_t)n);
    *len = n;
    return buf;
}

static void run_input(struct run *x, const char *data, size_t len, bool ignore_dots,
                      size_t header_max)
{
    memset(x, 0, sizeof *x);
    int in = data_fd(data, len);
    struct result r;
    int body = message_spool_open(NULL, &r);
    assert_true(body >= 0);
    struct input_params p = {.ignore_dots = ignore_dots, .header_max = header_max};
    x->o = input_read(in, &body, &p, &x->in, &x->r);
    x->body = fd_slurp(body, 0, &x->body_len);
    off_t pos = lseek(in, 0, SEEK_CUR);
    size_t rl;
    x->rest = fd_slurp(in, pos, &rl);
    close(in);
    close(body);
}

static void run_free(struct run *x)
{
    input_result_free(&x->in);
    free(x->body);
    free(x->rest);
}

#define RUN(x, s, dots) run_input((x), (s), sizeof(s) - 1, (dots), 0)

static void test_crlf_kept(void **state)
{
    (void)state;
    struct run x;
    RUN(&x, "To: a@x\r\nSubject: hi\r\n\r\nline 1\r\nline 2\r\n", false);
    assert_int_equal(x.o, OUTCOME_OK);
    assert_string_equal(x.in.headers, "To: a@x\r\nSubject: hi\r\n");
    assert_true(x.in.separator);
    assert_string_equal(x.body, "line 1\r\nline 2\r\n");
    assert_int_equal(x.in.body_len, 16);
    run_free(&x);
}

static void test_bare_lf_and_lone_cr(void **state)
{
    (void)state;
    struct run x;
    RUN(&x, "To: a@x\nSubject: hi\r\rline 1\rline 2\nline 3\r\n\n", false);
    assert_int_equal(x.o, OUTCOME_OK);
    assert_string_equal(x.in.headers, "To: a@x\r\nSubject: hi\r\n");
    assert_string_equal(x.body, "line 1\r\nline 2\r\nline 3\r\n\r\n");
    run_free(&x);
}

static void test_missing_final_newline(void **state)
{
    (void)state;
    struct run x;
    RUN(&x, "To: a@x\n\nno newline", false);
    assert_string_equal(x.body, "no newline\r\n");
    run_free(&x);
    RUN(&x, "To: a@x", false);
    assert_int_equal(x.o, OUTCOME_OK);
    assert_string_equal(x.in.headers, "To: a@x\r\n");
    assert_false(x.in.separator);
    assert_string_equal(x.body, "");
    run_free(&x);
}

static void test_lone_dot_ends_input(void **state)
{
    (void)state;
    struct run x;
    RUN(&x, "To: a@x\n\nbefore\n.\nafter\n", false);
    assert_int_equal(x.o, OUTCOME_OK);
    assert_string_equal(x.body, "before\r\n");
    assert_true(x.in.dot_ended);
    assert_null(strstr(x.body, "after"));
    run_free(&x);
    RUN(&x, "To: a@x\r\n\r\nbefore\r\n.\r\nafter\r\n", false);
    assert_string_equal(x.body, "before\r\n");
    run_free(&x);
    /* a dot line in the header block ends it too */
    RUN(&x, "To: a@x\n.\nSubject: x\n", false);
    assert_string_equal(x.in.headers, "To: a@x\r\n");
    assert_string_equal(x.body, "");
    run_free(&x);
    /* a final dot without a newline */
    RUN(&x, "To: a@x\n\nbody\n.", false);
    assert_string_equal(x.body, "body\r\n");
    run_free(&x);
}

static void test_lone_dot_with_i_is_text(void **state)
{
    (void)state;
    struct run x;
    RUN(&x, "To: a@x\n\nbefore\n.\nafter\n..\n.x\n", true);
    assert_string_equal(x.body, "before\r\n.\r\nafter\r\n..\r\n.x\r\n");
    assert_false(x.in.dot_ended);
    run_free(&x);
    /* not pre-stuffed without -i either */
    RUN(&x, "To: a@x\n\n..\n.x\n. \n", false);
    assert_string_equal(x.body, "..\r\n.x\r\n. \r\n");
    run_free(&x);
}

static void test_mbox_from_dropped(void **state)
{
    (void)state;
    struct run x;
    RUN(&x, "From root@x Sat Nov 28 19:00:00 2026\nTo: a@x\n\nbody\n", false);
    assert_int_equal(x.o, OUTCOME_OK);
    assert_true(x.in.mbox_from);
    assert_string_equal(x.in.headers, "To: a@x\r\n");
    run_free(&x);
    /* a lone "From " line without a line end */
    RUN(&x, "From ", false);
    assert_int_equal(x.o, OUTCOME_OK);
    assert_true(x.in.mbox_from);
    assert_int_equal(x.in.headers_len, 0);
    assert_string_equal(x.in.headers, "");
    run_free(&x);
    /* only on the first line; "From:" is a field */
    RUN(&x, "From: a@x\nTo: b@x\n\nbody\n", false);
    assert_false(x.in.mbox_from);
    assert_string_equal(x.in.headers, "From: a@x\r\nTo: b@x\r\n");
    run_free(&x);
}

static void test_no_separator(void **state)
{
    (void)state;
    struct run x;
    RUN(&x, "To: a@x\nSubject: hi\nthis is the body\nKey: value\n", false);
    assert_int_equal(x.o, OUTCOME_OK);
    assert_false(x.in.separator);
    assert_string_equal(x.in.headers, "To: a@x\r\nSubject: hi\r\n");
    assert_string_equal(x.body, "this is the body\r\nKey: value\r\n");
    run_free(&x);
    /* no header at all */
    RUN(&x, "hello world\n", false);
    assert_string_equal(x.in.headers, "");
    assert_string_equal(x.body, "hello world\r\n");
    run_free(&x);
    /* a continuation with no field before it is body */
    RUN(&x, " indented\n", false);
    assert_string_equal(x.body, " indented\r\n");
    run_free(&x);
}

static void test_folded_header(void **state)
{
    (void)state;
    struct run x;
    RUN(&x, "Subject: a\n  b\n\tc\nTo : x@y\n\nbody\n", false);
    assert_string_equal(x.in.headers, "Subject: a\r\n  b\r\n\tc\r\nTo : x@y\r\n");
    run_free(&x);
}

static void test_nul_in_header_refused(void **state)
{
    (void)state;
    struct run x;
    RUN(&x, "Subject: a\0b\n\nbody\n", false);
    assert_int_equal(x.o, OUTCOME_DATAERR);
    assert_non_null(strstr(x.r.text, "NUL"));
    run_free(&x);
}

static void test_nul_in_body_removed(void **state)
{
    (void)state;
    struct run x;
    RUN(&x, "To: a@x\n\na\0b\0\nc\n", false);
    assert_int_equal(x.o, OUTCOME_OK);
    assert_int_equal(x.in.nul_removed, 2);
    assert_int_equal(x.body_len, 7);
    assert_memory_equal(x.body, "ab\r\nc\r\n", 7);
    run_free(&x);
}

static void test_header_cap(void **state)
{
    (void)state;
    struct run x;
    size_t n = 2 * 1024 * 1024;
    char *big = mem_alloc(n + 32);
    memcpy(big, "Subject: ", 9);
    memset(big + 9, 'x', n);
    memcpy(big + 9 + n, "\n\nbody\n", 7);
    run_input(&x, big, n + 16, false, 0);
    assert_int_equal(x.o, OUTCOME_DATAERR);
    assert_non_null(strstr(x.r.text, "header block exceeds 1048576 octets"));
    run_free(&x);
    /* a 2 MB first line that is not a field is body, not header */
    big[7] = ' ';
    big[8] = 'y';
    run_input(&x, big, n + 16, false, 0);
    assert_int_equal(x.o, OUTCOME_OK);
    assert_int_equal(x.in.longest_line, n + 9);
    run_free(&x);
    free(big);
}

static void test_eightbit_and_longest(void **state)
{
    (void)state;
    struct run x;
    RUN(&x, "Subject: caf\xc3\xa9\n\nplain\nlonger line\n", false);
    assert_true(x.in.header_8bit);
    assert_false(x.in.body_8bit);
    assert_true(x.in.body_utf8);
    assert_int_equal(x.in.longest_line, 11);
    run_free(&x);
    RUN(&x, "To: a@x\n\ncaf\xc3\xa9\n", false);
    assert_false(x.in.header_8bit);
    assert_true(x.in.body_8bit);
    assert_true(x.in.body_utf8);
    run_free(&x);
    RUN(&x, "To: a@x\n\ncaf\xe9\n", false);
    assert_true(x.in.body_8bit);
    assert_false(x.in.body_utf8);
    run_free(&x);
    /* a lead octet followed by ASCII, then a stray continuation octet */
    RUN(&x,
        "To: a@x\n\nx\xc3"
        "Ab\xa9\n",
        false);
    assert_true(x.in.body_8bit);
    assert_false(x.in.body_utf8);
    run_free(&x);
}

/* Line after line through the fast path: LF and CRLF ends, a dot line, an
 * empty line, longest line counted. */
static void test_plain_lines(void **state)
{
    (void)state;
    struct run x;
    RUN(&x, "To: a@x\n\none\r\ntwo two\n\n.dot\nlast line is longest\r\n", true);
    assert_int_equal(x.o, OUTCOME_OK);
    const char want[] = "one\r\ntwo two\r\n\r\n.dot\r\nlast line is longest\r\n";
    assert_int_equal(x.body_len, sizeof want - 1);
    assert_memory_equal(x.body, want, sizeof want - 1);
    assert_int_equal(x.in.longest_line, 20);
    assert_false(x.in.body_8bit);
    assert_true(x.in.body_utf8);
    run_free(&x);
}

/* A CRLF split across two reads is still one line end. */
static void test_crlf_across_reads(void **state)
{
    (void)state;
    size_t n = 65536 + 16;
    char *data = mem_alloc(n + 1);
    memcpy(data, "To: a@x\r\n\r\n", 11);
    memset(data + 11, 'x', n - 11);
    data[65535] = '\r';
    data[65536] = '\n';
    memcpy(data + n - 5, "y\0z\xc3\xa9", 5);
    struct run x;
    run_input(&x, data, n, false, 0);
    assert_int_equal(x.o, OUTCOME_OK);
    assert_int_equal(x.body_len, (off_t)(n - 11 + 2 - 1));
    assert_memory_equal(x.body + 65535 - 11, "\r\nxx", 4);
    assert_memory_equal(x.body + x.body_len - 6, "yz\xc3\xa9\r\n", 6);
    assert_int_equal(x.in.nul_removed, 1);
    assert_true(x.in.body_8bit);
    assert_true(x.in.body_utf8);
    assert_int_equal(x.in.longest_line, 65535 - 11);
    run_free(&x);
    free(data);
}

/* 64 MB of body through a pipe: the process must not grow with it. */
static void test_bounded_memory(void **state)
{
    (void)state;
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        char line[1000];
        memset(line, 'a', sizeof line - 1);
        line[sizeof line - 1] = '\n';
        if (write(pfd[1], "To: a@x\n\n", 9) != 9)
            _exit(1);
        for (int i = 0; i < 64 * 1024; i++) {
            if (write(pfd[1], line, sizeof line) != (ssize_t)sizeof line)
                _exit(1);
        }
        _exit(0);
    }
    close(pfd[1]);
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    struct result r;
    int body = message_spool_open(NULL, &r);
    struct input_params p = {0};
    struct input_result in;
    assert_int_equal(input_read(pfd[0], &body, &p, &in, &r), OUTCOME_OK);
    getrusage(RUSAGE_SELF, &after);
    close(pfd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(in.body_len, (off_t)64 * 1024 * 1001);
    /* max RSS may not grow by more than 4 MB while reading 64 MB */
    assert_true(after.ru_maxrss - before.ru_maxrss < 4096);
    input_result_free(&in);
    close(body);
}

/* What the spill hook saw; it opens a spool file, or fails like a full disk. */
struct spill_probe {
    int calls;
    bool fail;
    int fd;
};

static int spill_hook(void *arg, struct result *r)
{
    struct spill_probe *sp = arg;
    sp->calls++;
    if (sp->fail) {
        result_set(r, OUTCOME_CANTCREAT, "cannot create a spool file in /nowhere: No space left");
        return -1;
    }
    sp->fd = message_spool_open(NULL, r);
    return sp->fd;
}

/* Runs text through input_read() with a spill at spill_at; returns the body. */
static char *run_spill(const char *text, size_t len, off_t spill_at, struct spill_probe *sp,
                       int *first_fd, int *last_fd, enum outcome *o, struct result *r)
{
    int in = data_fd(text, len);
    int body = message_spool_open(NULL, r);
    assert_true(body >= 0);
    *first_fd = body;
    struct input_params p = {
        .ignore_dots = true, .spill_at = spill_at, .spill = spill_hook, .spill_arg = sp};
    struct input_result res;
    *o = input_read(in, &body, &p, &res, r);
    close(in);
    *last_fd = body;
    if (*o != OUTCOME_OK)
        return NULL;
    size_t n;
    char *b = fd_slurp(body, 0, &n);
    assert_int_equal((off_t)n, res.body_len);
    input_result_free(&res);
    return b;
}

static void test_spill_not_needed(void **state)
{
    (void)state;
    struct spill_probe sp = {.fd = -1};
    struct result r;
    enum outcome o;
    int first, last;
    const char text[] = "Subject: s\n\nsmall body\n";
    char *b = run_spill(text, sizeof text - 1, 1000, &sp, &first, &last, &o, &r);
    assert_int_equal(o, OUTCOME_OK);
    assert_int_equal(sp.calls, 0);
    assert_int_equal(last, first);
    assert_string_equal(b, "small body\r\n");
    free(b);
    close(last);
}

static void test_spill_moves_the_body(void **state)
{
    (void)state;
    /* 3,000 LF lines of different lengths: 40 KiB read in two blocks, so the
     * spill happens at a flush after 32 KiB, with more to come */
    size_t cap = 200000, len = 0;
    char *text = mem_alloc(cap);
    char *want = mem_alloc(cap);
    size_t wlen = 0;
    len += (size_t)sprintf(text, "Subject: s\n\n");
    for (int i = 0; i < 3000; i++) {
        int n = sprintf(text + len, "line %d %.*s\n", i, i % 17, "abcdefghijklmnopq");
        memcpy(want + wlen, text + len, (size_t)n - 1);
        wlen += (size_t)n - 1;
        want[wlen++] = '\r';
        want[wlen++] = '\n';
        len += (size_t)n;
    }
    want[wlen] = '\0';
    struct spill_probe sp = {.fd = -1};
    struct result r;
    enum outcome o;
    int first, last;
    char *b = run_spill(text, len, 1000, &sp, &first, &last, &o, &r);
    assert_int_equal(o, OUTCOME_OK);
    assert_int_equal(sp.calls, 1);
    assert_int_equal(last, sp.fd);
    assert_true(last != first);
    assert_int_equal(fcntl(first, F_GETFD), -1); /* the memory file is closed */
    assert_string_equal(b, want);
    free(b);
    free(text);
    free(want);
    close(last);
}

static void test_spill_failure(void **state)
{
    (void)state;
    char text[4000];
    memset(text, 'x', sizeof text);
    for (size_t i = 79; i < sizeof text; i += 80)
        text[i] = '\n';
    struct spill_probe sp = {.fail = true, .fd = -1};
    struct result r;
    enum outcome o;
    int first, last;
    assert_null(run_spill(text, sizeof text, 100, &sp, &first, &last, &o, &r));
    assert_int_equal(o, OUTCOME_CANTCREAT);
    assert_string_equal(r.text, "cannot create a spool file in /nowhere: No space left");
    assert_int_equal(last, first); /* still the caller's to close */
    assert_int_equal(close(last), 0);
}

/* input_step() with flush: every body octet read so far is in the spool;
 * stepping gives what input_read() gives; body_read counts input octets. */
static void test_steps(void **state)
{
    (void)state;
    size_t len = 0, cap = 300000;
    char *text = mem_alloc(cap);
    len += (size_t)sprintf(text, "Subject: s\r\n\r\n");
    for (int i = 0; len + 100 < cap; i++)
        len += (size_t)sprintf(text + len, "%s%d %.*s\r\n", i % 50 == 0 ? "." : "", i, i % 60,
                               "The quick brown fox jumps over the lazy dog 0123456789 xyz");
    int in = data_fd(text, len);
    struct result r;
    int body = message_spool_open(NULL, &r);
    struct input_params p = {.ignore_dots = true};
    struct input_result res;
    struct input *s = input_open(in, &body, &p, &res, &r);
    bool done = false;
    int steps = 0;
    while (!done) {
        assert_int_equal(input_step(s, true, &done), OUTCOME_OK);
        steps++;
        assert_true(input_in_body(s));
        assert_int_equal(lseek(body, 0, SEEK_END), res.body_len);
        /* CRLF input: every body octet read is one written */
        assert_int_equal(res.body_read, res.body_len);
    }
    /* ended: further steps say so and read nothing */
    assert_int_equal(input_step(s, true, &done), OUTCOME_OK);
    assert_true(done);
    input_close(s);
    assert_true(steps > 5);
    size_t n;
    char *b = fd_slurp(body, 0, &n);
    struct run x;
    run_input(&x, text, len, true, 0);
    assert_int_equal(n, x.body_len);
    assert_memory_equal(b, x.body, n);
    assert_int_equal(res.longest_line, x.in.longest_line);
    run_free(&x);
    input_result_free(&res);
    free(b);
    free(text);
    close(in);
    close(body);
}

/* input_params.open: the body is stepped through with flush (as while
 * streaming); it is held, with no descriptor, while it fits in one block,
 * and opened once when it outgrows it.  Returns the body; *held tells
 * whether it came from input_take_body(). */
static char *run_hold(const char *text, size_t len, struct spill_probe *sp, bool *held,
                      off_t *body_len, enum outcome *o, struct result *r)
{
    int in = data_fd(text, len);
    int body = -1;
    struct input_params p = {.ignore_dots = true, .open = spill_hook, .spill_arg = sp};
    struct input_result res;
    struct input *s = input_open(in, &body, &p, &res, r);
    bool done = false;
    *o = OUTCOME_OK;
    while (*o == OUTCOME_OK && !done) {
        *o = input_step(s, true, &done);
        /* not a block yet: nothing written, nothing opened */
        if (*o == OUTCOME_OK && !done && body < 0)
            assert_int_equal(res.body_len, 0);
    }
    char *b = NULL;
    *held = false;
    if (*o == OUTCOME_OK) {
        b = input_take_body(s);
        *held = b != NULL;
        if (b == NULL) {
            size_t n;
            b = fd_slurp(body, 0, &n);
            assert_int_equal((off_t)n, res.body_len);
            close(body);
        } else {
            assert_int_equal(body, -1);
            /* taken once */
            assert_null(input_take_body(s));
        }
        *body_len = res.body_len;
    }
    input_close(s);
    input_result_free(&res);
    close(in);
    return b;
}

static void test_hold_small_body(void **state)
{
    (void)state;
    struct spill_probe sp = {.fd = -1};
    struct result r;
    enum outcome o;
    bool held;
    off_t n;
    const char text[] = "Subject: s\n\nsmall body\n.\n";
    char *b = run_hold(text, sizeof text - 1, &sp, &held, &n, &o, &r);
    assert_int_equal(o, OUTCOME_OK);
    assert_true(held);
    assert_int_equal(sp.calls, 0);
    assert_int_equal(n, 15);
    assert_memory_equal(b, "small body\r\n.\r\n", 15);
    free(b);
}

static void test_hold_outgrown(void **state)
{
    (void)state;
    size_t len = 0, cap = 100000;
    char *text = mem_alloc(cap);
    len += (size_t)sprintf(text, "Subject: s\r\n\r\n");
    while (len + 100 < cap)
        len += (size_t)sprintf(text + len, "line %zu of the body\r\n", len);
    struct spill_probe sp = {.fd = -1};
    struct result r;
    enum outcome o;
    bool held;
    off_t n;
    char *b = run_hold(text, len, &sp, &held, &n, &o, &r);
    assert_int_equal(o, OUTCOME_OK);
    assert_false(held);
    assert_int_equal(sp.calls, 1);
    assert_int_equal(n, (off_t)(len - 14));
    assert_memory_equal(b, text + 14, len - 14);
    free(b);

    /* a descriptor that cannot be had fails the input, named */
    sp = (struct spill_probe){.fd = -1, .fail = true};
    assert_null(run_hold(text, len, &sp, &held, &n, &o, &r));
    assert_int_equal(o, OUTCOME_CANTCREAT);
    assert_int_equal(sp.calls, 1);
    assert_non_null(strstr(r.text, "No space left"));
    free(text);
}

/* A read error ends the input; later steps return it again. */
static void test_step_error_sticks(void **state)
{
    (void)state;
    struct result r;
    int body = message_spool_open(NULL, &r);
    struct input_params p = {0};
    struct input_result res;
    int wronly = open("/dev/null", O_WRONLY);
    struct input *s = input_open(wronly, &body, &p, &res, &r);
    bool done = true;
    assert_int_equal(input_step(s, true, &done), OUTCOME_IOERR);
    assert_false(done);
    assert_string_equal(r.text, "cannot read the message: Bad file descriptor");
    result_clear(&r);
    assert_int_equal(input_step(s, true, &done), OUTCOME_IOERR);
    assert_false(done);
    input_close(s);
    input_result_free(&res);
    close(wronly);
    close(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crlf_kept),
        cmocka_unit_test(test_bare_lf_and_lone_cr),
        cmocka_unit_test(test_missing_final_newline),
        cmocka_unit_test(test_lone_dot_ends_input),
        cmocka_unit_test(test_lone_dot_with_i_is_text),
        cmocka_unit_test(test_mbox_from_dropped),
        cmocka_unit_test(test_no_separator),
        cmocka_unit_test(test_folded_header),
        cmocka_unit_test(test_nul_in_header_refused),
        cmocka_unit_test(test_nul_in_body_removed),
        cmocka_unit_test(test_header_cap),
        cmocka_unit_test(test_eightbit_and_longest),
        cmocka_unit_test(test_plain_lines),
        cmocka_unit_test(test_crlf_across_reads),
        cmocka_unit_test(test_bounded_memory),
        cmocka_unit_test(test_spill_not_needed),
        cmocka_unit_test(test_spill_moves_the_body),
        cmocka_unit_test(test_spill_failure),
        cmocka_unit_test(test_steps),
        cmocka_unit_test(test_step_error_sticks),
        cmocka_unit_test(test_hold_small_body),
        cmocka_unit_test(test_hold_outgrown),
    };
    return TESTLIB_RUN(tests);
}
