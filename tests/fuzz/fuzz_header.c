/*
 * fuzz_header.c - libFuzzer target: header block parse, the edits postie
 * makes (strip Bcc, merge To/Cc, keep one Message-ID, set From) and
 * rendering (src/header.c).
 *
 * Oracles: a rendered block is CRLF lines only, no line over
 * HEADER_LINE_MAX, no Bcc field left after removing it; header_mailbox()
 * never produces a line break whatever -F holds.
 *
 * The header block comes from input_read() on the fuzz input, as in the real
 * pipeline, so every finding is reachable from a message on stdin; the raw
 * input is also used as -F text.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "header.h"
#include "input.h"
#include "result.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_header_check_rendered(const char *s, size_t len)
{
    size_t line = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\r') {
            if (i + 1 >= len || s[i + 1] != '\n')
                abort(); /* bare CR */
            if (line > HEADER_LINE_MAX)
                abort();
            /* a field line (not a continuation) named Bcc must be gone */
            size_t start = i - line;
            if (line >= 4 && strncasecmp(s + start, "bcc:", 4) == 0)
                abort();
            line = 0;
            i++;
        } else if (s[i] == '\n' || s[i] == '\0') {
            abort(); /* bare LF or NUL */
        } else {
            line++;
        }
    }
    if (line != 0)
        abort(); /* last line without CRLF */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';

    /* -F text straight from the input: never a line break in From */
    char *from = header_mailbox(buf, "a@example.org");
    if (from == NULL || strpbrk(from, "\r\n") != NULL)
        abort();

    int in = memfd_create("fuzz-header", 0);
    int body = memfd_create("fuzz-body", 0);
    if (in < 0 || body < 0 || (size > 0 && write(in, data, size) != (ssize_t)size))
        abort();
    lseek(in, 0, SEEK_SET);
    struct input_params ip = {.ignore_dots = true, .header_max = 0};
    struct input_result in_res;
    memset(&in_res, 0, sizeof in_res);
    struct result ir;
    result_clear(&ir);
    enum outcome io = input_read(in, &body, &ip, &in_res, &ir);
    close(in);
    close(body);
    if (io != OUTCOME_OK) {
        free(from);
        free(buf);
        return 0;
    }

    struct header_block h = {0};
    struct result r;
    result_clear(&r);
    if (header_parse(in_res.headers, in_res.headers_len, &h, &r) == OUTCOME_OK) {
        header_count(&h, "To");
        header_remove(&h, "Bcc");
        header_remove(&h, "Resent-Bcc");
        header_merge(&h, "To");
        header_merge(&h, "Cc");
        header_keep_first(&h, "Message-ID");
        if (header_find(&h, "From", 0) == h.n)
            header_set(&h, "From", from);
        if (header_find(&h, "Date", 0) == h.n)
            header_add(&h, "Date", "Sat, 28 Nov 2026 19:49:53 +0000");
        size_t subj = header_find(&h, "Subject", 0);
        if (subj < h.n)
            header_replace(&h, subj, h.v[subj].value);
        header_is_8bit(&h);
        char *out = NULL;
        size_t len = 0;
        result_clear(&r);
        if (header_render(&h, &out, &len, &r) == OUTCOME_OK) {
            fuzz_header_check_rendered(out, len);
            /* what we render must parse again */
            struct header_block h2 = {0};
            result_clear(&r);
            if (header_parse(out, len, &h2, &r) != OUTCOME_OK)
                abort();
            header_free(&h2);
            free(out);
        } else if (r.text[0] == '\0') {
            abort();
        }
    } else if (h.n != 0 || r.text[0] == '\0' || strpbrk(r.text, "\r\n") != NULL) {
        abort();
    }
    header_free(&h);
    input_result_free(&in_res);
    free(from);
    free(buf);
    return 0;
}
