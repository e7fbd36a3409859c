/*
 * test_addr.c - the RFC 5322 address-list parser against the corpus in
 * tests/data/addr/ (one case per file: the text, a line "=>", then one line
 * per expected mailbox "addr<TAB>display<TAB>group" with "-" for none, or
 * "error"), plus validation, qualification and comparison.
 */
#include "testlib.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "mem.h"

static char *read_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *text = mem_alloc((size_t)size + 1);
    assert_int_equal(fread(text, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    return text;
}

/* Runs one corpus file; returns the number of failures (printed). */
static int run_case(const char *dir, const char *name)
{
    char *path = mem_printf("%s/%s", dir, name);
    char *text = read_file(path);
    char *arrow = strstr(text, "\n=>\n");
    assert_non_null(arrow);
    *arrow = '\0';
    /* the input's own line breaks are header folding: make them CRLF */
    char *input = mem_alloc(2 * strlen(text) + 1);
    size_t k = 0;
    for (const char *c = text; *c != '\0'; c++) {
        if (*c == '\n')
            input[k++] = '\r';
        input[k++] = *c;
    }
    char *expect = arrow + 4;
    struct addr_list l;
    struct result r;
    enum outcome o = addr_parse_list(input, &l, &r);
    int fail = 0;
    if (strcmp(expect, "error\n") == 0) {
        if (o != OUTCOME_DATAERR) {
            fprintf(stderr, "%s: expected a parse error, got %zu addresses\n", name, l.n);
            fail = 1;
        } else if (strstr(r.text, "cannot parse address list") == NULL) {
            fprintf(stderr, "%s: message \"%s\"\n", name, r.text);
            fail = 1;
        }
    } else if (o != OUTCOME_OK) {
        fprintf(stderr, "%s: unexpected error: %s\n", name, r.text);
        fail = 1;
    } else {
        char *got = NULL;
        size_t glen = 0;
        FILE *mem = open_memstream(&got, &glen);
        for (size_t i = 0; i < l.n; i++)
            fprintf(mem, "%s\t%s\t%s\n", l.v[i].addr, l.v[i].display ? l.v[i].display : "-",
                    l.v[i].group ? l.v[i].group : "-");
        fclose(mem);
        if (strcmp(got, expect) != 0) {
            fprintf(stderr, "%s:\n  expected:\n%s  got:\n%s", name, expect, got);
            fail = 1;
        }
        free(got);
        addr_list_free(&l);
    }
    free(input);
    free(text);
    free(path);
    return fail;
}

static void test_corpus(void **state)
{
    (void)state;
    const char *src = getenv("POSTIE_SRCDIR");
    assert_non_null(src);
    char *dir = mem_printf("%s/tests/data/addr", src);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    int cases = 0, failures = 0;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 4, ".txt") != 0)
            continue;
        cases++;
        failures += run_case(dir, de->d_name);
    }
    closedir(d);
    free(dir);
    assert_true(cases >= 30);
    assert_int_equal(failures, 0);
}

static void check_valid(const char *a)
{
    struct result r;
    if (addr_validate(a, &r) != OUTCOME_OK)
        fail_msg("%s should be valid: %s", a, r.text);
}

static void check_invalid(const char *a, const char *why)
{
    struct result r;
    assert_int_equal(addr_validate(a, &r), OUTCOME_DATAERR);
    if (strstr(r.text, why) == NULL)
        fail_msg("%s: expected \"%s\" in \"%s\"", a, why, r.text);
    assert_null(strchr(r.text, '\n'));
    assert_null(strchr(r.text, '\r'));
}

static void test_validate(void **state)
{
    (void)state;
    check_valid("a@example.com");
    check_valid("\"john doe\"@example.com");
    check_valid("u@[192.0.2.1]");
    check_valid("root");
    check_invalid("a@x\r\nRCPT TO:<b@y>", "line break");
    check_invalid("a>\r\nNOOP <x", "'<' or '>'");
    check_invalid("a@x>", "'<' or '>'");
    check_invalid("<a@x", "'<' or '>'");
    check_invalid("a b@x", "whitespace");
    check_invalid("a\tb@x", "whitespace");
    check_invalid("j\xc3\xb6rg@x.example", "SMTPUTF8");
    check_invalid("a\x01@x", "control character");
    check_invalid("\"unbalanced@x", "unbalanced quote");
    check_invalid("", "empty");
    check_invalid("@x", "empty local part");
    check_invalid("a@", "empty domain");
    check_invalid("a@b@c.example", "bad character in the domain");
    check_invalid("\"jo\\<\"@x.example", "'<' or '>'");
    check_invalid("\"a\\\tb\"@x.example", "whitespace");
    check_invalid("\"a\\\r\"@x.example", "line break");
    check_invalid("a@x..example", "empty label");
    check_invalid("a@x.example.", "empty label");
    check_invalid("a@\"x\".example", "misplaced quote");
    check_invalid("a@[1.2.3.4", "bad domain literal");
    check_valid("a@[IPv6:2001:db8::1]");
    check_valid("a@my_host.example");
    check_valid("\"a@b\"@x.example");
    char local[70];
    memset(local, 'a', 65);
    strcpy(local + 65, "@x");
    check_invalid(local, "local part longer than 64");
    char longaddr[300];
    memset(longaddr, 'b', sizeof longaddr);
    memcpy(longaddr, "a@", 2);
    for (size_t i = 50; i < sizeof longaddr; i += 50)
        longaddr[i] = '.'; /* labels within 63 octets */
    longaddr[255] = '\0';
    check_invalid(longaddr, "longer than 254");
    longaddr[254] = '\0';
    check_valid(longaddr);
}

static void test_qualify(void **state)
{
    (void)state;
    char *q = addr_qualify("root", "box.example");
    assert_string_equal(q, "root@box.example");
    free(q);
    q = addr_qualify("a@x", "box.example");
    assert_string_equal(q, "a@x");
    free(q);
    q = addr_qualify("\"a@b\"", "box.example");
    assert_string_equal(q, "\"a@b\"@box.example");
    free(q);
    assert_true(addr_is_bare("\"a@b\""));
    assert_false(addr_is_bare("\"a@b\"@c"));
}

static void test_qualify_list(void **state)
{
    (void)state;
    char *v = addr_qualify_list("root (Cron Daemon)", "box.example");
    assert_string_equal(v, "root@box.example (Cron Daemon)");
    free(v);
    v = addr_qualify_list("Admin <root>, b@x.example, pi", "box.example");
    assert_string_equal(v, "Admin <root@box.example>, b@x.example, pi@box.example");
    free(v);
    assert_null(addr_qualify_list("a@x.example, B <b@y.example>", "box.example"));
    assert_null(addr_qualify_list("a@x.example b", "box.example"));
    assert_null(addr_qualify_list("undisclosed-recipients:;", "box.example"));
}

static void test_equal(void **state)
{
    (void)state;
    assert_true(addr_equal("a@EXAMPLE.com", "a@example.COM"));
    assert_false(addr_equal("A@example.com", "a@example.com"));
    assert_false(addr_equal("a@x", "a"));
    assert_true(addr_equal("root", "root"));
}

static void test_error_names_text(void **state)
{
    (void)state;
    struct addr_list l;
    struct result r;
    assert_int_equal(addr_parse_list("Bob <bob@x.example", &l, &r), OUTCOME_DATAERR);
    assert_non_null(strstr(r.text, "Bob <bob@x.example"));
    assert_int_equal(l.n, 0);
    assert_int_equal(addr_parse_list("a@x\x01y", &l, &r), OUTCOME_DATAERR);
    assert_non_null(strstr(r.text, "control character"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),  cmocka_unit_test(test_validate),
        cmocka_unit_test(test_qualify), cmocka_unit_test(test_qualify_list),
        cmocka_unit_test(test_equal),   cmocka_unit_test(test_error_names_text),
    };
    return TESTLIB_RUN(tests);
}
