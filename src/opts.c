#include "config.h"
#include "opts.h"
#include <string.h>
enum outcome opts_parse(int argc, char **argv, struct opts *o, struct result *r) { memset(o, 0, sizeof *o); if (argc > 1 && strcmp(argv[1], "--help") == 0) o->mode = OPTS_MODE_HELP; if (argc > 1 && strcmp(argv[1], "--version") == 0) o->mode = OPTS_MODE_VERSION; return OUTCOME_OK; }
const char *opts_help_text(void) { return "usage: postie [options] [recipient...]\n"; }
