/*
 * main.c - postie, a sendmail-compatible relay client.
 *
 * Drives the pipeline of DESIGN section 1:
 *   argv -> opts -> conf -> (input -> header/addr -> envelope) -> relay/queue
 *   -> result -> exit status
 * and picks the personality from argv[0] (sendmail, mailq, newaliases).
 * This is the only file that exits.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include <confuse.h>
#include <openssl/opensslv.h>
#include <openssl/crypto.h>

#include "aliases.h"
#include "conf.h"
#include "log.h"
#include "mem.h"
#include "opts.h"
#include "privs.h"
#include "queue.h"
#include "relay.h"
#include "result.h"
#include "smtpd.h"
#include "submit.h"

static void main_out_of_memory(size_t wanted)
{
    log_error("out of memory (%zu bytes)", wanted);
    _exit(EX_OSERR);
}

/* Reports a failed stage and returns its exit status. */
static int main_fail(const struct result *r)
{
    if (r->text[0] != '\0')
        log_error("%s", r->text);
    return result_exit_code(r->outcome);
}

static int main_version(void)
{
    printf("postie %s\n", PACKAGE_VERSION);
    printf("libESMTP %s\n", relay_library_version());
#ifdef POSTIE_STATIC_LIBCONFUSE
    printf("libConfuse %s (linked statically)\n", confuse_version);
#else
    printf("libConfuse %s\n", confuse_version);
#endif
    printf("%s\n", OpenSSL_version(OPENSSL_VERSION));
    printf("configuration: %s/postie.conf\n", SYSCONFDIR);
    return EX_OK;
}

/*
 * After a delivery worked the smarthost is evidently reachable: when queued
 * mail is due, flush it in a detached grandchild so the caller is not kept
 * waiting.
 */
static void main_flush_detached(const struct conf *conf)
{
    if (conf->queue_dir == NULL || conf->queue_dir[0] == '\0')
        return;
    struct result r;
    struct queue *q;
    if (queue_open(conf->queue_dir, &q, &r) != OUTCOME_OK)
        return;
    bool due = queue_has_due(q);
    queue_close(q);
    if (!due)
        return;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return;
    if (pid > 0) {
        waitpid(pid, NULL, 0);
        return;
    }
    if (setsid() < 0 || fork() != 0)
        _exit(EX_OK);
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        if (fd > STDERR_FILENO)
            close(fd);
    }
    struct queue_flush_stats st = {0};
    if (queue_open(conf->queue_dir, &q, &r) == OUTCOME_OK) {
        queue_flush(q, conf, true, NULL, &st, &r);
        queue_close(q);
    }
    _exit(EX_OK);
}

static int main_queue(const struct opts *o, const struct conf *conf)
{
    struct result r;
    result_clear(&r);
    if (conf->queue_dir == NULL || conf->queue_dir[0] == '\0') {
        if (o->mode == OPTS_MODE_LIST) {
            printf("Mail queue is empty (the queue is disabled)\n");
            return EX_OK;
        }
        result_set(&r, OUTCOME_CONFIG, "the queue is disabled (queue_dir is empty)");
        return main_fail(&r);
    }
    struct queue *q;
    if (queue_open(conf->queue_dir, &q, &r) != OUTCOME_OK)
        return main_fail(&r);
    enum outcome rc = OUTCOME_OK;
    if (o->mode == OPTS_MODE_LIST) {
        rc = queue_list(q, stdout, &r);
    } else if (o->mode == OPTS_MODE_FLUSH) {
        struct queue_flush_stats st = {0};
        rc = queue_flush(q, conf, o->flush_due_only, o->queue_filter, &st, &r);
        if (rc == OUTCOME_OK)
            log_debug("queue run: %zu tried, %zu delivered, %zu deferred, %zu bounced", st.tried,
                      st.delivered, st.deferred, st.bounced);
    } else {
        for (size_t i = 0; i < o->nargs && rc == OUTCOME_OK; i++)
            rc = queue_delete(q, o->args[i], &r);
    }
    queue_close(q);
    return rc == OUTCOME_OK ? EX_OK : main_fail(&r);
}

static int main_aliases(const struct conf *conf)
{
    struct result r;
    result_clear(&r);
    if (conf->aliases == NULL || conf->aliases[0] == '\0') {
        printf("no aliases file is configured\n");
        return EX_OK;
    }
    size_t entries = 0;
    enum outcome rc = aliases_check(conf->aliases, stderr, &entries, &r);
    if (rc != OUTCOME_OK)
        return main_fail(&r);
    printf("%s: %zu aliases\n", conf->aliases, entries);
    return EX_OK;
}

int main(int argc, char **argv)
{
    mem_set_failure_handler(main_out_of_memory);
    signal(SIGPIPE, SIG_IGN);
    privs_init();
    privs_sanitize_env();

    char *progdup = mem_strdup(argc > 0 && argv[0] != NULL ? argv[0] : "postie");
    const char *prog = basename(progdup);
    log_init(prog, false, false);

    struct opts o;
    struct result r;
    result_clear(&r);
    if (opts_parse(argc, argv, &o, &r) != OUTCOME_OK) {
        log_error("%s (see '%s --help')", r.text, prog);
        opts_free(&o);
        return result_exit_code(r.outcome);
    }
    if (o.mode == OPTS_MODE_HELP || o.mode == OPTS_MODE_VERSION) {
        int status = EX_OK;
        if (o.mode == OPTS_MODE_HELP)
            fputs(opts_help_text(), stdout);
        else
            status = main_version();
        opts_free(&o);
        free(progdup);
        return status;
    }
    log_init(prog, o.verbose, false);

    /* Setgid, the queue holds everybody's mail: only root removes any of it. */
    if (o.mode == OPTS_MODE_DELETE && privs_elevated() && getuid() != 0) {
        log_error("--delete: only root may remove queued messages");
        return EX_NOPERM;
    }

    /* Whatever the user names is opened without the setgid group. */
    if (o.config != NULL && privs_drop(&r) != OUTCOME_OK)
        return main_fail(&r);

    /* The configuration may hold a password: no core dumps from here on. */
    if (privs_no_dumps(&r) != OUTCOME_OK)
        return main_fail(&r);
    struct conf conf;
    if (conf_load(o.config, &conf, &r) != OUTCOME_OK)
        return main_fail(&r);
    log_set_syslog(conf.syslog);

    struct submit_params sp = {.opts = &o, .conf = &conf, .user = NULL};
    struct submit_report rep = {0};
    int status = EX_OK;
    switch (o.mode) {
    case OPTS_MODE_SEND:
        status = result_exit_code(submit_run(&sp, STDIN_FILENO, &rep, &r));
        if (status != EX_OK && r.text[0] != '\0')
            log_error("%s", r.text);
        else if (status == EX_OK && r.text[0] != '\0')
            log_warn("%s", r.text);
        if (rep.flush_wanted)
            main_flush_detached(&conf);
        break;
    case OPTS_MODE_VERIFY:
        status = result_exit_code(submit_verify(&sp, stdout, &r));
        if (status != EX_OK && r.text[0] != '\0')
            log_error("%s", r.text);
        break;
    case OPTS_MODE_SMTP:
        status = result_exit_code(smtpd_run(&sp, STDIN_FILENO, STDOUT_FILENO, &r));
        if (status != EX_OK && r.text[0] != '\0')
            log_error("%s", r.text);
        main_flush_detached(&conf);
        break;
    case OPTS_MODE_LIST:
    case OPTS_MODE_FLUSH:
    case OPTS_MODE_DELETE:
        status = main_queue(&o, &conf);
        break;
    case OPTS_MODE_ALIASES:
        status = main_aliases(&conf);
        break;
    case OPTS_MODE_HELP:
    case OPTS_MODE_VERSION:
        break;
    }
    conf_free(&conf);
    opts_free(&o);
    free(progdup);
    if (fflush(stdout) != 0 && status == EX_OK)
        status = EX_IOERR;
    return status;
}
