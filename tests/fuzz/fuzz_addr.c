/*
 * fuzz_addr.c - libFuzzer target: the RFC 5322 address-list parser and the
 * wire-address rules (src/addr.c).
 *
 * Oracles beyond memory safety: whatever addr_validate() accepts is
 * printable ASCII without '<', '>' and no longer than ADDR_MAX (it becomes a
 * MAIL FROM / RCPT TO argument); qualification keeps the address valid and
 * makes it non-bare; addr_equal() is reflexive.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "result.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_addr_check_wire(const char *a)
{
    struct result r;
    result_clear(&r);
    if (addr_validate(a, &r) != OUTCOME_OK) {
        if (r.text[0] == '\0' || strpbrk(r.text, "\r\n") != NULL)
            abort();
        return;
    }
    size_t len = strlen(a);
    if (len > ADDR_MAX)
        abort();
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c < 0x20 || c >= 0x7f || c == '<' || c == '>')
            abort();
    }
    if (!addr_equal(a, a))
        abort();
    char *q = addr_qualify(a, "example.org");
    if (q == NULL || addr_is_bare(q))
        abort();
    free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0'; /* the parser sees C strings: stop at the first NUL */

    fuzz_addr_check_wire(text);

    struct addr_list l = {0};
    struct result r;
    result_clear(&r);
    if (addr_parse_list(text, &l, &r) == OUTCOME_OK) {
        for (size_t i = 0; i < l.n; i++) {
            if (l.v[i].addr == NULL)
                abort();
            if (l.v[i].bare != addr_is_bare(l.v[i].addr))
                abort();
            fuzz_addr_check_wire(l.v[i].addr);
            if (i > 0)
                addr_equal(l.v[i - 1].addr, l.v[i].addr);
        }
    } else if (l.n != 0 || r.text[0] == '\0' || strpbrk(r.text, "\r\n") != NULL) {
        abort();
    }
    addr_list_free(&l);

    char *q = addr_qualify_list(text, "example.org");
    if (q != NULL) {
        /* the rewritten value parses and holds no bare name any more */
        struct addr_list l2 = {0};
        result_clear(&r);
        if (addr_parse_list(q, &l2, &r) != OUTCOME_OK)
            abort();
        for (size_t i = 0; i < l2.n; i++)
            if (l2.v[i].bare)
                abort();
        addr_list_free(&l2);
        free(q);
    }
    free(text);
    return 0;
}
