/*
 * mem.h - allocation that cannot return NULL.
 *
 * postie is a short-lived process; running out of memory is handled in one
 * place: the failure handler, which main.c installs (it logs and exits with
 * EX_OSERR).  Without a handler the process aborts.  No stage calls exit().
 */
#ifndef POSTIE_MEM_H
#define POSTIE_MEM_H

#include <stddef.h>

typedef void (*mem_failure_fn)(size_t wanted);

void mem_set_failure_handler(mem_failure_fn fn);

void *mem_alloc(size_t n);                        /* zeroed */
void *mem_array(size_t n, size_t size);           /* zeroed, overflow-checked */
void *mem_resize(void *p, size_t n, size_t size); /* overflow-checked realloc */
char *mem_strdup(const char *s);
char *mem_strndup(const char *s, size_t n);
char *mem_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* a, sep and b in one new string ("local" '@' "domain"): no format parsing. */
char *mem_join(const char *a, char sep, const char *b);

/* Overwrites n bytes at p with zeros in a way the compiler keeps (secrets). */
void mem_wipe(void *p, size_t n);

/* mem_wipe()s a NUL-terminated secret and frees it; NULL is fine. */
void mem_free_secret(char *s);

#endif
