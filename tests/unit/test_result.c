/*
 * test_result.c - the outcome table and the delivery mapping of DESIGN
 * section 6.
 */
#include "testlib.h"

#include <string.h>
#include <sysexits.h>

#include "result.h"

static void test_exit_codes_follow_sysexits(void **state)
{
    (void)state;
    assert_int_equal(result_exit_code(OUTCOME_OK), 0);
    assert_int_equal(result_exit_code(OUTCOME_USAGE), EX_USAGE);
    assert_int_equal(result_exit_code(OUTCOME_DATAERR), EX_DATAERR);
    assert_int_equal(result_exit_code(OUTCOME_NOINPUT), EX_NOINPUT);
    assert_int_equal(result_exit_code(OUTCOME_NOUSER), EX_NOUSER);
    assert_int_equal(result_exit_code(OUTCOME_UNAVAILABLE), EX_UNAVAILABLE);
    assert_int_equal(result_exit_code(OUTCOME_SOFTWARE), EX_SOFTWARE);
    assert_int_equal(result_exit_code(OUTCOME_OSERR), EX_OSERR);
    assert_int_equal(result_exit_code(OUTCOME_CANTCREAT), EX_CANTCREAT);
    assert_int_equal(result_exit_code(OUTCOME_IOERR), EX_IOERR);
    assert_int_equal(result_exit_code(OUTCOME_TEMPFAIL), EX_TEMPFAIL);
    assert_int_equal(result_exit_code(OUTCOME_PROTOCOL), EX_PROTOCOL);
    assert_int_equal(result_exit_code(OUTCOME_NOPERM), EX_NOPERM);
    assert_int_equal(result_exit_code(OUTCOME_CONFIG), EX_CONFIG);
    assert_int_equal(result_exit_code((enum outcome)99), EX_SOFTWARE);
    assert_string_equal(result_name(OUTCOME_TEMPFAIL), "EX_TEMPFAIL");
}

static void test_set_returns_outcome_and_formats(void **state)
{
    (void)state;
    struct result r;
    assert_int_equal(result_set(&r, OUTCOME_CONFIG, "%s:%d: %s", "f.conf", 3, "bad"),
                     OUTCOME_CONFIG);
    assert_int_equal(r.outcome, OUTCOME_CONFIG);
    assert_string_equal(r.text, "f.conf:3: bad");
    assert_int_equal(result_set(NULL, OUTCOME_USAGE, "ignored"), OUTCOME_USAGE);
    result_clear(&r);
    assert_int_equal(r.outcome, OUTCOME_OK);
    assert_string_equal(r.text, "");
}

static void test_set_cannot_forge_a_second_line(void **state)
{
    (void)state;
    struct result r;
    result_set(&r, OUTCOME_PROTOCOL, "server said %s", "550 no\r\npostie: delivered");
    assert_null(strchr(r.text, '\n'));
    assert_null(strchr(r.text, '\r'));
    assert_string_equal(r.text, "server said 550 no??postie: delivered");
}

static void test_set_truncates_long_text(void **state)
{
    (void)state;
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    struct result r;
    result_set(&r, OUTCOME_DATAERR, "%s", big);
    assert_int_equal(strlen(r.text), RESULT_TEXT_MAX - 1);
}

static void test_delivered_is_ok(void **state)
{
    (void)state;
    assert_int_equal(result_delivery(RESULT_FAIL_NONE, false, false), OUTCOME_OK);
}

static void test_temporary_failures_queued_are_ok(void **state)
{
    (void)state;
    const enum result_failure temp[] = {
        RESULT_FAIL_RESOLVE,       RESULT_FAIL_CONNECT,  RESULT_FAIL_TIMEOUT,
        RESULT_FAIL_TLS,           RESULT_FAIL_CERT,     RESULT_FAIL_STARTTLS,
        RESULT_FAIL_AUTH_REJECTED, RESULT_FAIL_GREETING, RESULT_FAIL_TEMP_REPLY,
        RESULT_FAIL_DROPPED,       RESULT_FAIL_PROTOCOL, RESULT_FAIL_LOCAL,
    };
    for (size_t i = 0; i < sizeof temp / sizeof temp[0]; i++) {
        assert_true(result_failure_is_temporary(temp[i]));
        assert_int_equal(result_delivery(temp[i], true, false), OUTCOME_OK);
    }
}

static void test_temporary_failures_unqueued(void **state)
{
    (void)state;
    assert_int_equal(result_delivery(RESULT_FAIL_CONNECT, false, false), OUTCOME_TEMPFAIL);
    assert_int_equal(result_delivery(RESULT_FAIL_TIMEOUT, false, false), OUTCOME_TEMPFAIL);
    assert_int_equal(result_delivery(RESULT_FAIL_CERT, false, false), OUTCOME_TEMPFAIL);
    assert_int_equal(result_delivery(RESULT_FAIL_TEMP_REPLY, false, false), OUTCOME_TEMPFAIL);
    assert_int_equal(result_delivery(RESULT_FAIL_AUTH_REJECTED, false, false), OUTCOME_NOPERM);
    assert_int_equal(result_delivery(RESULT_FAIL_AUTH_CLEARTEXT, false, false), OUTCOME_NOPERM);
    assert_int_equal(result_delivery(RESULT_FAIL_PROTOCOL, false, false), OUTCOME_PROTOCOL);
}

static void test_permanent_failures(void **state)
{
    (void)state;
    assert_false(result_failure_is_temporary(RESULT_FAIL_PERM_REPLY));
    assert_false(result_failure_is_temporary(RESULT_FAIL_SOME_RCPTS));
    assert_int_equal(result_delivery(RESULT_FAIL_PERM_REPLY, false, false), OUTCOME_UNAVAILABLE);
    /* Queueing does not turn a permanent refusal into success... */
    assert_int_equal(result_delivery(RESULT_FAIL_PERM_REPLY, true, false), OUTCOME_UNAVAILABLE);
    assert_int_equal(result_delivery(RESULT_FAIL_SOME_RCPTS, true, false), OUTCOME_NOUSER);
    /* ...but a DSN mailed back (-oem) does. */
    assert_int_equal(result_delivery(RESULT_FAIL_SOME_RCPTS, false, true), OUTCOME_OK);
    assert_int_equal(result_delivery(RESULT_FAIL_PERM_REPLY, false, true), OUTCOME_OK);
}

static void test_failure_texts(void **state)
{
    (void)state;
    assert_string_equal(result_failure_text(RESULT_FAIL_CONNECT),
                        "cannot connect to the smarthost");
    assert_string_equal(result_failure_text((enum result_failure)999), "unknown failure");
    assert_false(result_failure_is_temporary((enum result_failure)999));
    assert_int_equal(result_delivery((enum result_failure)999, true, true), OUTCOME_SOFTWARE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_codes_follow_sysexits),
        cmocka_unit_test(test_set_returns_outcome_and_formats),
        cmocka_unit_test(test_set_cannot_forge_a_second_line),
        cmocka_unit_test(test_set_truncates_long_text),
        cmocka_unit_test(test_delivered_is_ok),
        cmocka_unit_test(test_temporary_failures_queued_are_ok),
        cmocka_unit_test(test_temporary_failures_unqueued),
        cmocka_unit_test(test_permanent_failures),
        cmocka_unit_test(test_failure_texts),
    };
    return TESTLIB_RUN(tests);
}
