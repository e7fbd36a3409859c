/*
 * fuzz_input.c - libFuzzer target: the input normalizer (src/input.c), then
 * the header parser on what it produced (the real pipeline order).
 *
 * The first input byte chooses the parameters (bit 0: -i, bit 1: a small
 * header cap, bits 2-7: a spill threshold); the rest is the message, fed
 * through a memfd.  Oracles: the body spool is canonical CRLF with no NUL;
 * body_len is what was written; without -i no body line is a lone "."; the
 * header block is CRLF lines with no empty line and no NUL, and
 * header_parse() accepts it.  Differential: the same input read a block at a
 * time with every block flushed (input_step), its body spilling from one
 * memfd to another past the threshold, gives the same result and body; and
 * so does a body held in the reader's block (input_params.open) while it fits.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "header.h"
#include "input.h"
#include "result.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_input_spill(void *arg, struct result *r)
{
    (void)arg;
    (void)r;
    int fd = memfd_create("fuzz-spill", 0);
    if (fd < 0)
        abort();
    return fd;
}

static char *fuzz_input_slurp(int fd, off_t len)
{
    char *b = malloc((size_t)len + 1);
    if (b == NULL || pread(fd, b, (size_t)len, 0) != len)
        abort();
    return b;
}

/*
 * input_open/input_step with flush and a spill, against input_read's res and
 * body.  With hold (input_params.open) the body starts without a descriptor:
 * while it fits in one block nothing is written and it is taken at the end;
 * a larger one is opened once and flushed from then on.
 */
static void fuzz_input_steps(int in, const struct input_params *base, off_t spill_at, bool hold,
                             const struct input_result *want, const char *want_body)
{
    struct input_params p = *base;
    p.spill_at = spill_at;
    p.spill = fuzz_input_spill;
    int body = -1;
    if (hold)
        p.open = fuzz_input_spill;
    else if ((body = memfd_create("fuzz-body2", 0)) < 0)
        abort();
    lseek(in, 0, SEEK_SET);
    struct input_result res;
    struct result r;
    result_clear(&r);
    struct input *s = input_open(in, &body, &p, &res, &r);
    bool done = false;
    while (!done) {
        if (input_step(s, true, &done) != OUTCOME_OK)
            abort(); /* input_read() succeeded on the same input */
        if (body >= 0 ? lseek(body, 0, SEEK_END) != res.body_len : !done && res.body_len != 0)
            abort(); /* flushed: everything read is in the spool; held: nothing yet */
    }
    char *held = input_take_body(s);
    input_close(s);
    if ((held != NULL) != (body < 0))
        abort(); /* taken exactly when there is no spool */
    if (res.body_len != want->body_len || res.longest_line != want->longest_line ||
        res.body_8bit != want->body_8bit || res.body_utf8 != want->body_utf8 ||
        res.nul_removed != want->nul_removed || res.headers_len != want->headers_len ||
        res.separator != want->separator || res.dot_ended != want->dot_ended)
        abort();
    if (res.headers_len > 0 && memcmp(res.headers, want->headers, res.headers_len) != 0)
        abort();
    char *b = held != NULL ? held : fuzz_input_slurp(body, res.body_len);
    if (memcmp(b, want_body, (size_t)res.body_len) != 0)
        abort();
    free(b);
    input_result_free(&res);
    if (body >= 0)
        close(body);
}

static void fuzz_input_check_crlf(const char *s, size_t len, bool body, bool ignore_dots)
{
    size_t line = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\0')
            abort();
        if (s[i] == '\r') {
            if (i + 1 >= len || s[i + 1] != '\n')
                abort();
            if (!body && line == 0)
                abort(); /* empty line inside the header block */
            if (body && !ignore_dots && line == 1 && s[i - 1] == '.')
                abort(); /* a lone dot should have ended the input */
            line = 0;
            i++;
        } else if (s[i] == '\n') {
            abort();
        } else {
            line++;
        }
    }
    if (line != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct input_params p = {.ignore_dots = data[0] & 1, .header_max = (data[0] & 2) ? 512 : 0};
    off_t spill_at = (off_t)(data[0] >> 2) * 61;
    data++;
    size--;

    int in = memfd_create("fuzz-input", 0);
    int body = memfd_create("fuzz-body", 0);
    if (in < 0 || body < 0)
        abort();
    if (size > 0 && write(in, data, size) != (ssize_t)size)
        abort();
    lseek(in, 0, SEEK_SET);

    struct input_result res;
    struct result r;
    result_clear(&r);
    memset(&res, 0, sizeof res);
    if (input_read(in, &body, &p, &res, &r) == OUTCOME_OK) {
        off_t end = lseek(body, 0, SEEK_END);
        if (end != res.body_len)
            abort();
        char *b = fuzz_input_slurp(body, end);
        fuzz_input_check_crlf(b, (size_t)end, true, p.ignore_dots);
        fuzz_input_steps(in, &p, spill_at, false, &res, b);
        fuzz_input_steps(in, &p, spill_at, true, &res, b);
        free(b);
        /* input.h promises "" for no headers; NULL with length 0 (after a lone
         * mbox "From " line) is tolerated: header_parse() accepts it */
        if (res.headers == NULL ? res.headers_len != 0 : strlen(res.headers) != res.headers_len)
            abort();
        if (res.headers != NULL)
            fuzz_input_check_crlf(res.headers, res.headers_len, false, true);
        struct header_block h = {0};
        result_clear(&r);
        if (header_parse(res.headers, res.headers_len, &h, &r) != OUTCOME_OK)
            abort(); /* input.c's header block must suit header.c */
        header_free(&h);
        input_result_free(&res);
    } else if (r.text[0] == '\0' || strpbrk(r.text, "\r\n") != NULL) {
        abort();
    }
    close(in);
    close(body);
    return 0;
}
