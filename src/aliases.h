/*
 * aliases.h - the aliases(5) file: "name: addr, addr", comments, continuation
 * lines, chains and loop detection.  postie delivers nothing locally, so
 * ":include:", "|command" and "/file" targets are refused with a warning.
 */
#ifndef POSTIE_ALIASES_H
#define POSTIE_ALIASES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "result.h"

struct aliases;

/*
 * Loads path.  A missing file is not an error when optional is true (the
 * default /etc/aliases); *out is then an empty table.  Syntax errors are
 * "path:line: message" with OUTCOME_CONFIG.
 */
enum outcome aliases_load(const char *path, bool optional, struct aliases **out, struct result *r);

/*
 * Expands a bare local name (no '@') through chains to its final targets,
 * appended to *list (mem_resize'd, entries mem_strdup'd).  A name with no
 * alias expands to itself.  A loop is OUTCOME_DATAERR naming the alias.
 */
enum outcome aliases_expand(const struct aliases *a, const char *name, char ***list, size_t *n,
                            struct result *r);

/*
 * newaliases / -bi: checks path, printing every problem as
 * "path:line: message" on err; *entries gets the number of aliases.
 * OUTCOME_OK when the file is clean, OUTCOME_DATAERR when it has errors,
 * OUTCOME_NOINPUT when it cannot be read.
 */
enum outcome aliases_check(const char *path, FILE *err, size_t *entries, struct result *r);

void aliases_free(struct aliases *a);

#endif
