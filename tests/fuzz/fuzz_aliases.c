/*
 * fuzz_aliases.c - libFuzzer target: the aliases(5) parser, expansion
 * (chains, loops) and the newaliases check.
 *
 * aliases_load() takes a path, so the input is put in a memfd and named
 * through /proc/self/fd.  The names expanded are a few fixed ones plus every
 * name the input defines (up to 32), so chains and loops the fuzzer builds
 * are followed.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "aliases.h"
#include "result.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_aliases_expand(const struct aliases *a, const char *name)
{
    char **list = NULL;
    size_t n = 0;
    struct result r;
    result_clear(&r);
    aliases_expand(a, name, &list, &n, &r);
    for (size_t i = 0; i < n; i++) {
        if (list[i] == NULL || strpbrk(list[i], "\r\n") != NULL)
            abort(); /* targets become RCPT TO arguments */
        free(list[i]);
    }
    free(list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-aliases", 0);
    if (fd < 0)
        return 0;
    if (size > 0 && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);

    struct aliases *a = NULL;
    struct result r;
    result_clear(&r);
    if (aliases_load(path, false, &a, &r) == OUTCOME_OK && a != NULL) {
        fuzz_aliases_expand(a, "root");
        fuzz_aliases_expand(a, "postmaster");
        fuzz_aliases_expand(a, "");
        /* every "name:" at a line start */
        char *buf = malloc(size + 1);
        if (buf != NULL) {
            memcpy(buf, data, size);
            buf[size] = '\0';
            int count = 0;
            for (char *line = buf; line != NULL && count < 32; count++) {
                char *next = strchr(line, '\n');
                if (next != NULL)
                    *next++ = '\0';
                char *colon = strchr(line, ':');
                if (colon != NULL) {
                    *colon = '\0';
                    fuzz_aliases_expand(a, line);
                }
                line = next;
            }
            free(buf);
        }
        aliases_free(a);
    }

    FILE *err = fopen("/dev/null", "w");
    if (err != NULL) {
        size_t entries = 0;
        result_clear(&r);
        aliases_check(path, err, &entries, &r);
        fclose(err);
    }
    close(fd);
    return 0;
}
