/*
 * test_header.c - header block parse, edits, rendering and the generated
 * Date, Message-ID and From values.
 */
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

#include "header.h"
#include "mem.h"

static void parse(struct header_block *h, const char *block)
{
    struct result r;
    assert_int_equal(header_parse(block, strlen(block), h, &r), OUTCOME_OK);
}

static char *render(const struct header_block *h)
{
    char *out;
    size_t len;
    struct result r;
    assert_int_equal(header_render(h, &out, &len, &r), OUTCOME_OK);
    assert_int_equal(strlen(out), len);
    return out;
}

static void test_parse_fields(void **state)
{
    (void)state;
    struct header_block h;
    parse(&h, "To: a@x\r\nSubject: one\r\n two\r\n\tthree\r\nto : b@y\r\nX-Empty:\r\n");
    assert_int_equal(h.n, 4);
    assert_string_equal(h.v[1].name, "Subject");
    assert_string_equal(h.v[1].value, "one two\tthree");
    assert_string_equal(h.v[1].raw, "Subject: one\r\n two\r\n\tthree\r\n");
    assert_string_equal(h.v[2].name, "to");
    assert_string_equal(h.v[2].value, "b@y");
    assert_string_equal(h.v[3].value, "");
    assert_int_equal(header_find(&h, "TO", 0), 0);
    assert_int_equal(header_find(&h, "To", 1), 2);
    assert_int_equal(header_count(&h, "to"), 2);
    char *out = render(&h);
    assert_string_equal(out,
                        "To: a@x\r\nSubject: one\r\n two\r\n\tthree\r\nto : b@y\r\nX-Empty:\r\n");
    free(out);
    header_free(&h);
}

static void test_parse_rejects_garbage(void **state)
{
    (void)state;
    struct header_block h;
    struct result r;
    const char *b = "To: a@x\r\nnot a header\r\n";
    assert_int_equal(header_parse(b, strlen(b), &h, &r), OUTCOME_DATAERR);
    assert_int_equal(h.n, 0);
}

static void test_remove_bcc_with_continuations(void **state)
{
    (void)state;
    struct header_block h;
    parse(&h, "To: a@x\r\nBcc: secret@x,\r\n  other@y\r\nSubject: s\r\nBCC: third@z\r\n"
              "Resent-Bcc: r@x\r\n\tr2@x\r\n");
    assert_int_equal(header_remove(&h, "Bcc"), 2);
    assert_int_equal(header_remove(&h, "Resent-Bcc"), 1);
    char *out = render(&h);
    assert_string_equal(out, "To: a@x\r\nSubject: s\r\n");
    free(out);
    header_free(&h);
}

static void test_merge_to(void **state)
{
    (void)state;
    struct header_block h;
    parse(&h, "To: a@x\r\nSubject: s\r\nTo: b@y,\r\n c@z\r\nCc: d@x\r\n");
    assert_true(header_merge(&h, "To"));
    assert_false(header_merge(&h, "Cc"));
    char *out = render(&h);
    assert_string_equal(out, "To: a@x, b@y, c@z\r\nSubject: s\r\nCc: d@x\r\n");
    free(out);
    header_free(&h);
}

static void test_keep_first(void **state)
{
    (void)state;
    struct header_block h;
    parse(&h, "Date: one\r\nX: y\r\nDate: two\r\n");
    assert_int_equal(header_keep_first(&h, "date"), 1);
    char *out = render(&h);
    assert_string_equal(out, "Date: one\r\nX: y\r\n");
    free(out);
    header_free(&h);
}

static void test_generated_fields_fold_at_78(void **state)
{
    (void)state;
    struct header_block h = {0};
    char value[600] = "";
    for (int i = 0; i < 20; i++)
        strcat(value, i ? ", someone@example.com" : "someone@example.com");
    header_add(&h, "To", value);
    char *out = render(&h);
    for (char *line = out; *line != '\0';) {
        char *end = strstr(line, "\r\n");
        assert_non_null(end);
        assert_true(end - line <= 78);
        line = end + 2;
    }
    assert_string_equal(h.v[0].value, value);
    free(out);
    header_free(&h);
}

static void test_long_line_folded_at_whitespace(void **state)
{
    (void)state;
    struct header_block h;
    char *block = mem_alloc(3000);
    strcpy(block, "Subject:");
    for (int i = 0; i < 200; i++)
        strcat(block, " word");
    strcat(block, "\r\n");
    parse(&h, block);
    char *out = render(&h);
    size_t lines = 0;
    for (char *line = out; *line != '\0'; lines++) {
        char *end = strstr(line, "\r\n");
        assert_true(end - line <= 998);
        line = end + 2;
    }
    assert_int_equal(lines, 2);
    free(out);
    header_free(&h);
    free(block);
}

static void test_unfoldable_line_refused(void **state)
{
    (void)state;
    struct header_block h;
    char *block = mem_alloc(3000);
    strcpy(block, "X-Long: ");
    memset(block + 8, 'x', 1500);
    strcpy(block + 1508, "\r\n");
    parse(&h, block);
    char *out;
    size_t len;
    struct result r;
    assert_int_equal(header_render(&h, &out, &len, &r), OUTCOME_DATAERR);
    assert_non_null(strstr(r.text, "header X-Long"));
    assert_null(out);
    header_free(&h);
    free(block);
}

/* "Name :" with the only whitespace before the colon: never cut there */
static void test_no_fold_before_colon(void **state)
{
    (void)state;
    struct header_block h;
    char *block = mem_alloc(3000);
    strcpy(block, "X-Long :");
    memset(block + 8, 'x', 1500);
    strcpy(block + 1508, "\r\n");
    parse(&h, block);
    char *out;
    size_t len;
    struct result r;
    assert_int_equal(header_render(&h, &out, &len, &r), OUTCOME_DATAERR);
    header_free(&h);
    /* the WSP right after the colon is a last resort */
    memcpy(block, "Subject: ", 9);
    memset(block + 9, 'x', 990);
    strcpy(block + 999, " tail\r\n");
    parse(&h, block);
    out = render(&h);
    if (strncmp(out, "Subject:\r\n xxx", 14) != 0)
        fail_msg("got %.40s", out);
    free(out);
    header_free(&h);
    free(block);
    /* generated: a long name and a value without spaces stay on one line */
    struct header_block g = {0};
    header_add(&g, "X-A-Rather-Long-Field-Name-For-Folding",
               "0123456789012345678901234567890123456789012345678901234567890123456789");
    out = render(&g);
    assert_non_null(strstr(out, "Name-For-Folding: 0123"));
    free(out);
    header_free(&g);
}

static void test_date_format(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    char *d = header_date(1795895393); /* 2026-11-28 19:49:53 UTC */
    assert_string_equal(d, "Sat, 28 Nov 2026 19:49:53 +0000");
    free(d);
    setenv("TZ", "EST5", 1);
    d = header_date(1795895393);
    assert_string_equal(d, "Sat, 28 Nov 2026 14:49:53 -0500");
    free(d);
    setenv("TZ", "IST-5:30", 1);
    d = header_date(1795895393);
    assert_string_equal(d, "Sun, 29 Nov 2026 01:19:53 +0530");
    free(d);
    unsetenv("TZ");
}

static void test_message_id(void **state)
{
    (void)state;
    char *a = header_message_id("box.example");
    char *b = header_message_id("box.example");
    assert_int_equal(strlen(a), 1 + 32 + 1 + 11 + 1);
    assert_true(a[0] == '<' && a[strlen(a) - 1] == '>');
    assert_non_null(strstr(a, "@box.example>"));
    assert_string_not_equal(a, b);
    free(a);
    free(b);
}

static void test_mailbox(void **state)
{
    (void)state;
    struct {
        const char *name, *want;
    } cases[] = {
        {NULL, "root@example.com"},
        {"", "root@example.com"},
        {"CronDaemon", "CronDaemon <root@example.com>"},
        {"Cron Daemon", "Cron Daemon <root@example.com>"},
        {"Doe, John", "\"Doe, John\" <root@example.com>"},
        {"a \"b\" \\c", "\"a \\\"b\\\" \\\\c\" <root@example.com>"},
        {"Evil\r\nBcc: victim@x", "\"Evil  Bcc: victim@x\" <root@example.com>"},
        {"J\xc3\xb6rg", "=?UTF-8?B?SsO2cmc=?= <root@example.com>"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *m = header_mailbox(cases[i].name, "root@example.com");
        assert_string_equal(m, cases[i].want);
        free(m);
    }
    /* a From line generated from a hostile -F stays one field */
    struct header_block h = {0};
    char *m = header_mailbox("x\nBcc: y@z", "root@example.com");
    header_add(&h, "From", m);
    free(m);
    char *out = render(&h);
    assert_null(strstr(out, "\r\nBcc"));
    free(out);
    header_free(&h);
}

static void test_set_and_replace(void **state)
{
    (void)state;
    struct header_block h;
    parse(&h, "Content-Transfer-Encoding: 8bit\r\nX: 1\r\ncontent-transfer-encoding: 7bit\r\n");
    header_set(&h, "Content-Transfer-Encoding", "quoted-printable");
    char *out = render(&h);
    assert_string_equal(out, "Content-Transfer-Encoding: quoted-printable\r\nX: 1\r\n");
    free(out);
    header_replace(&h, 1, "2");
    out = render(&h);
    assert_string_equal(out, "Content-Transfer-Encoding: quoted-printable\r\nX: 2\r\n");
    free(out);
    assert_false(header_is_8bit(&h));
    header_add(&h, "Subject", "caf\xc3\xa9");
    assert_true(header_is_8bit(&h));
    header_free(&h);
}

static void test_insert(void **state)
{
    (void)state;
    struct header_block h;
    parse(&h, "A: 1\r\nB: 2\r\n");
    header_insert(&h, 1, "Resent-Date", "x");
    header_insert(&h, 0, "First", "0");
    header_insert(&h, 99, "Last", "9"); /* past the end: appended */
    char *out = render(&h);
    assert_string_equal(out, "First: 0\r\nA: 1\r\nResent-Date: x\r\nB: 2\r\nLast: 9\r\n");
    free(out);
    header_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_parse_rejects_garbage),
        cmocka_unit_test(test_remove_bcc_with_continuations),
        cmocka_unit_test(test_merge_to),
        cmocka_unit_test(test_keep_first),
        cmocka_unit_test(test_generated_fields_fold_at_78),
        cmocka_unit_test(test_long_line_folded_at_whitespace),
        cmocka_unit_test(test_unfoldable_line_refused),
        cmocka_unit_test(test_no_fold_before_colon),
        cmocka_unit_test(test_date_format),
        cmocka_unit_test(test_message_id),
        cmocka_unit_test(test_mailbox),
        cmocka_unit_test(test_set_and_replace),
        cmocka_unit_test(test_insert),
    };
    return TESTLIB_RUN(tests);
}
