/*
 * test_envelope.c - envelope sender and recipients: argv, -t (To/Cc/Bcc or
 * Resent-*), -bs, aliases, qualification, de-duplication and the errors.
 */
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "header.h"
#include "mem.h"

struct fixture {
    struct opts o;
    struct conf c;
    struct conf_account acc;
    struct aliases *al;
    struct header_block h;
    struct envelope_params p;
    struct envelope e;
    struct result r;
};

static struct fixture *fx_new(const char *headers, char **args, size_t nargs, bool extract)
{
    struct fixture *f = mem_alloc(sizeof *f);
    f->c.qualify_domain = "box.example";
    f->c.hostname = "host.box.example";
    f->acc.name = "default";
    f->c.accounts = &f->acc;
    f->c.naccounts = 1;
    f->o.extract = extract;
    f->o.args = args;
    f->o.nargs = nargs;
    const char *src = getenv("POSTIE_SRCDIR");
    assert_non_null(src);
    char *path = mem_printf("%s/tests/data/aliases/chains-and-continuations.aliases", src);
    assert_int_equal(aliases_load(path, false, &f->al, &f->r), OUTCOME_OK);
    free(path);
    if (headers != NULL)
        assert_int_equal(header_parse(headers, strlen(headers), &f->h, &f->r), OUTCOME_OK);
    f->p = (struct envelope_params){
        .opts = &f->o, .conf = &f->c, .aliases = f->al, .user = "alice", .headers = &f->h};
    return f;
}

static void fx_free(struct fixture *f)
{
    envelope_free(&f->e);
    aliases_free(f->al);
    header_free(&f->h);
    free(f);
}

static enum outcome fx_build(struct fixture *f)
{
    return envelope_build(&f->p, &f->e, &f->r);
}

static void expect_rcpts(struct fixture *f, const char *want)
{
    char got[1024] = "";
    for (size_t i = 0; i < f->e.nrcpts; i++) {
        if (i > 0)
            strcat(got, " ");
        strcat(got, f->e.rcpts[i]);
    }
    assert_string_equal(got, want);
}

static void test_argv_recipients(void **state)
{
    (void)state;
    /* Debian cron: MAILTO="a, b" split on whitespace gives "a," and "b" */
    char *args[] = {"x@example.org,", "Y@EXAMPLE.ORG", "pi", "Bob <b@example.net>",
                    "y@example.org"};
    struct fixture *f =
        fx_new("To: ignored@example.com\r\nBcc: hidden@example.com\r\n", args, 5, false);
    assert_int_equal(fx_build(f), OUTCOME_OK);
    expect_rcpts(f, "x@example.org Y@EXAMPLE.ORG pi@box.example b@example.net y@example.org");
    assert_string_equal(f->e.sender, "alice@box.example");
    fx_free(f);
}

static void test_aliases_and_local_domains(void **state)
{
    (void)state;
    char *args[] = {"root", "postmaster@box.example", "root@localhost",
                    "team", "www@host.box.example",   "unknown@box.example"};
    struct fixture *f = fx_new(NULL, args, 6, false);
    assert_int_equal(fx_build(f), OUTCOME_OK);
    expect_rcpts(f, "admin@example.com alice@example.com bob@example.net web1@example.com "
                    "web2@example.com web3@example.com unknown@box.example");
    fx_free(f);
}

static void test_extract_to_cc_bcc_plus_argv(void **state)
{
    (void)state;
    char *args[] = {"extra@example.com"};
    struct fixture *f = fx_new("From: me@example.com\r\n"
                               "To: A <a@example.com>, undisclosed:;\r\n"
                               "Subject: to: subject@example.com\r\n"
                               "X-Original-To: xot@example.com\r\n"
                               "Cc: c@example.com,\r\n d@example.com\r\n"
                               "bcc: secret@example.com\r\n"
                               "Reply-To: reply@example.com\r\n",
                               args, 1, true);
    assert_int_equal(fx_build(f), OUTCOME_OK);
    expect_rcpts(f, "a@example.com c@example.com d@example.com secret@example.com "
                    "extra@example.com");
    fx_free(f);
}

static void test_extract_resent_only(void **state)
{
    (void)state;
    struct fixture *f = fx_new("To: old@example.com\r\nCc: oldcc@example.com\r\n"
                               "Resent-To: new@example.com\r\nResent-Bcc: nb@example.com\r\n",
                               NULL, 0, true);
    assert_int_equal(fx_build(f), OUTCOME_OK);
    expect_rcpts(f, "new@example.com nb@example.com");
    fx_free(f);
}

static void test_extract_group_and_bare(void **state)
{
    (void)state;
    struct fixture *f = fx_new("To: Team: a@example.com, root;, pi (Raspberry)\r\n", NULL, 0, true);
    assert_int_equal(fx_build(f), OUTCOME_OK);
    expect_rcpts(f, "a@example.com admin@example.com pi@box.example");
    fx_free(f);
}

static void test_no_recipients(void **state)
{
    (void)state;
    struct fixture *f = fx_new("To: undisclosed-recipients:;\r\nSubject: x\r\n", NULL, 0, true);
    assert_int_equal(fx_build(f), OUTCOME_DATAERR);
    assert_string_equal(f->r.text, "no recipients");
    fx_free(f);
    f = fx_new("To: a@example.com\r\n", NULL, 0, false);
    assert_int_equal(fx_build(f), OUTCOME_DATAERR);
    assert_non_null(strstr(f->r.text, "no recipients"));
    fx_free(f);
}

static void test_bad_header_address(void **state)
{
    (void)state;
    struct fixture *f =
        fx_new("To: ok@example.com\r\nCc: Broken <b@example.com\r\n", NULL, 0, true);
    assert_int_equal(fx_build(f), OUTCOME_DATAERR);
    assert_non_null(strstr(f->r.text, "header Cc"));
    assert_non_null(strstr(f->r.text, "Broken <b@example.com"));
    fx_free(f);
    f = fx_new("To: j\xc3\xb6rg@example.com\r\n", NULL, 0, true);
    assert_int_equal(fx_build(f), OUTCOME_DATAERR);
    assert_non_null(strstr(f->r.text, "header To: invalid address"));
    fx_free(f);
}

static void test_bad_argv_address(void **state)
{
    (void)state;
    char *args[] = {"a@example.com>\r\nRCPT TO:<b@example.com"};
    struct fixture *f = fx_new(NULL, args, 1, false);
    assert_int_equal(fx_build(f), OUTCOME_USAGE);
    assert_non_null(strstr(f->r.text, "recipient argument"));
    fx_free(f);
    char *args2[] = {"a b@example.com"};
    f = fx_new(NULL, args2, 1, false);
    assert_int_equal(fx_build(f), OUTCOME_USAGE);
    fx_free(f);
}

static void test_sender(void **state)
{
    (void)state;
    char *args[] = {"x@example.com"};
    struct {
        const char *f, *from, *want;
        enum outcome o;
    } cases[] = {
        {NULL, NULL, "alice@box.example", OUTCOME_OK},
        {NULL, "cron@example.com", "cron@example.com", OUTCOME_OK},
        {"", "cron@example.com", "", OUTCOME_OK},
        {"<>", NULL, "", OUTCOME_OK},
        {"root", NULL, "root@box.example", OUTCOME_OK},
        {"<u@example.com>", NULL, "u@example.com", OUTCOME_OK},
        {"Name <u@example.com>", NULL, "u@example.com", OUTCOME_OK},
        {"a@x, b@y", NULL, NULL, OUTCOME_USAGE},
        {"u@example.com\r\nX", NULL, NULL, OUTCOME_USAGE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fixture *f = fx_new(NULL, args, 1, false);
        f->o.sender = cases[i].f;
        f->acc.from = (char *)cases[i].from;
        assert_int_equal(fx_build(f), cases[i].o);
        if (cases[i].want != NULL)
            assert_string_equal(f->e.sender, cases[i].want);
        fx_free(f);
    }
}

static void test_smtp_mode(void **state)
{
    (void)state;
    char *args[] = {"argv@example.com"};
    char *rcpts[] = {"r1@example.com", "root", "r1@EXAMPLE.com"};
    struct fixture *f = fx_new("To: hdr@example.com\r\n", args, 1, true);
    f->p.smtp = true;
    f->p.smtp_sender = "s@example.com";
    f->p.smtp_rcpts = rcpts;
    f->p.smtp_nrcpts = 3;
    assert_int_equal(fx_build(f), OUTCOME_OK);
    expect_rcpts(f, "r1@example.com admin@example.com");
    assert_string_equal(f->e.sender, "s@example.com");
    fx_free(f);
}

static void test_qualify_headers(void **state)
{
    (void)state;
    struct fixture *f = fx_new("From: root (Cron Daemon)\r\nTo: pi, b@example.com\r\n"
                               "Cc: Admin <admin>\r\nSubject: root\r\nReply-To: broken <\r\n",
                               NULL, 0, false);
    envelope_qualify_headers(&f->h, "box.example");
    char *out;
    size_t len;
    assert_int_equal(header_render(&f->h, &out, &len, &f->r), OUTCOME_OK);
    assert_string_equal(out, "From: root@box.example (Cron Daemon)\r\n"
                             "To: pi@box.example, b@example.com\r\n"
                             "Cc: Admin <admin@box.example>\r\nSubject: root\r\n"
                             "Reply-To: broken <\r\n");
    free(out);
    fx_free(f);
}

/* Many recipients, each given twice with the domain in another case. */
static void test_dedup_many(void **state)
{
    (void)state;
    struct fixture *f = fx_new(NULL, NULL, 0, false);
    size_t n = 20000;
    for (size_t pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            char a[64];
            snprintf(a, sizeof a, "u%zx@%s.example", i, pass ? "HOST" : "host");
            assert_int_equal(envelope_add(&f->p, &f->e, a, "x", OUTCOME_DATAERR, &f->r),
                             OUTCOME_OK);
        }
    }
    assert_int_equal(f->e.nrcpts, n);
    assert_string_equal(f->e.rcpts[n - 1], "u4e1f@host.example");
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argv_recipients),
        cmocka_unit_test(test_aliases_and_local_domains),
        cmocka_unit_test(test_extract_to_cc_bcc_plus_argv),
        cmocka_unit_test(test_extract_resent_only),
        cmocka_unit_test(test_extract_group_and_bare),
        cmocka_unit_test(test_no_recipients),
        cmocka_unit_test(test_bad_header_address),
        cmocka_unit_test(test_bad_argv_address),
        cmocka_unit_test(test_sender),
        cmocka_unit_test(test_smtp_mode),
        cmocka_unit_test(test_qualify_headers),
        cmocka_unit_test(test_dedup_many),
    };
    return TESTLIB_RUN(tests);
}
