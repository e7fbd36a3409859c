/*
 * fuzz_opts.c - libFuzzer target: the sendmail command line (opts_parse).
 *
 * The input is split at NUL bytes into argv (at most 64 arguments; the first
 * is argv[0], so personalities are fuzzed too).  Beyond memory safety it
 * checks the argument-injection contract of DESIGN section 2: whatever was
 * accepted as a sender or recipient holds no CR, LF, '<' or '>'.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"
#include "result.h"

#define FUZZ_MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_opts_check_address(const char *s)
{
    if (s != NULL && strpbrk(s, "\r\n<>") != NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';

    char *argv[FUZZ_MAX_ARGS + 1];
    int argc = 0;
    size_t start = 0;
    for (size_t i = 0; i <= size && argc < FUZZ_MAX_ARGS; i++) {
        if (buf[i] == '\0') {
            argv[argc++] = buf + start;
            start = i + 1;
        }
    }
    argv[argc] = NULL;

    struct opts o;
    struct result r;
    result_clear(&r);
    memset(&o, 0, sizeof o);
    if (opts_parse(argc, argv, &o, &r) == OUTCOME_OK) {
        if (o.mode == OPTS_MODE_SEND || o.mode == OPTS_MODE_VERIFY) {
            fuzz_opts_check_address(o.sender);
            for (size_t i = 0; i < o.nargs; i++)
                fuzz_opts_check_address(o.args[i]);
        }
    } else if (r.text[0] == '\0' || strchr(r.text, '\n') != NULL) {
        abort();
    }
    opts_free(&o);
    free(buf);
    return 0;
}
