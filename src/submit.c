#include "config.h"
#include "submit.h"
enum outcome submit_run(const struct submit_params *p, int in_fd, struct submit_report *rep, struct result *r) { return result_set(r, OUTCOME_SOFTWARE, "not yet"); }
enum outcome submit_verify(const struct submit_params *p, FILE *out, struct result *r) { return OUTCOME_OK; }
