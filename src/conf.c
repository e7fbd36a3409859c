#include "config.h"
#include "conf.h"
#include <string.h>
enum outcome conf_load(const char *p, struct conf *c, struct result *r) { memset(c, 0, sizeof *c); return OUTCOME_OK; }
enum outcome conf_parse_file(const char *name, FILE *fp, struct conf *c, struct result *r) { memset(c, 0, sizeof *c); return OUTCOME_OK; }
const struct conf_account *conf_account_for(const struct conf *c, const char *s) { return c->naccounts ? &c->accounts[0] : NULL; }
enum outcome conf_password(const struct conf_account *a, char **out, struct result *r) { *out = NULL; return OUTCOME_OK; }
long conf_parse_duration(const char *s) { return -1; }
void conf_free(struct conf *c) { (void)c; }
