#include "config.h"
#include "smtpd.h"
enum outcome smtpd_run(const struct submit_params *base, int in_fd, int out_fd, struct result *r) { return result_set(r, OUTCOME_USAGE, "-bs is not supported yet"); }
