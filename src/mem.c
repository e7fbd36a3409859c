/*
 * mem.c - allocation that cannot return NULL; see mem.h.
 */
#include "config.h"

#include "mem.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mem_failure_fn mem_failure;

void mem_set_failure_handler(mem_failure_fn fn)
{
    mem_failure = fn;
}

static void *mem_check(void *p, size_t n)
{
    if (p == NULL) {
        if (mem_failure != NULL)
            mem_failure(n);
        abort();
    }
    return p;
}

void *mem_alloc(size_t n)
{
    return mem_check(calloc(1, n == 0 ? 1 : n), n);
}

void *mem_array(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return mem_check(NULL, SIZE_MAX);
    return mem_check(calloc(n == 0 ? 1 : n, size == 0 ? 1 : size), n * size);
}

void *mem_resize(void *p, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return mem_check(NULL, SIZE_MAX);
    size_t total = n * size;
    return mem_check(realloc(p, total == 0 ? 1 : total), total);
}

char *mem_strdup(const char *s)
{
    return mem_strndup(s, strlen(s));
}

char *mem_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = mem_check(malloc(len + 1), len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *mem_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return mem_strdup("");
    char *p = mem_check(malloc((size_t)n + 1), (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void mem_wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n-- > 0)
        *v++ = 0;
}

void mem_free_secret(char *s)
{
    if (s == NULL)
        return;
    mem_wipe(s, strlen(s));
    free(s);
}

char *mem_join(const char *a, char sep, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = mem_resize(NULL, la + lb + 2, 1);
    memcpy(s, a, la);
    s[la] = sep;
    memcpy(s + la + 1, b, lb + 1);
    return s;
}
