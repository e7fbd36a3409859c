/*
 * bridge.c - the connection to the smarthost, owned by postie; see bridge.h.
 *
 * bridge_open() does everything that must not be left to libESMTP 1.1.0:
 * the connect (non-blocking, with a timeout, every getaddrinfo address in
 * turn), implicit TLS or the EHLO/STARTTLS exchange, and the TLS handshake
 * with our own SSL_CTX (TLS >= 1.2, verify-peer, host or IP pinned, SNI).
 * It then arms the handoff: libESMTP is told to connect to 127.0.0.1 port 0,
 * an address no connect() can reach, and this file's connect() (which the
 * dynamic linker binds libESMTP to, before the C library's) takes that one
 * call: it records libESMTP's socket and returns success without touching
 * the network.  bridge_attach() then dup3()s the smarthost socket onto it
 * (plaintext), or one end of a socketpair whose other end a thread relays to
 * the smarthost through TLS (and, for -bv, holds back DATA) until either
 * side closes or nothing moves for longer than the safety limit.
 */
#include "config.h"

#include "bridge.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "mem.h"

#define BRIDGE_BUF_L2R   (16 * 1024) /* libESMTP -> smarthost (it writes 2-8 KiB at a time) */
#define BRIDGE_BUF_R2L   (4 * 1024)  /* smarthost -> libESMTP (replies) */
#define BRIDGE_REPLY_MAX 8192        /* longest reply read in the STARTTLS exchange */

struct bridge {
    char where[300]; /* "host:port" for messages */
    int timeout_ms;  /* account timeout */
    int idle_ms;     /* the relay thread's safety limit */
    int remote_fd;
    SSL_CTX *ctx;
    SSL *ssl;
    bool secure;
    int client;    /* libESMTP's socket, taken by connect() below; -1 before */
    int local_fd;  /* thread mode: our end of the socketpair libESMTP talks on */
    bool attached; /* bridge_attach() ran */
    bool direct;   /* libESMTP holds the smarthost socket itself (no thread) */
    int stop_pipe[2];
    pthread_t thread;
    bool thread_running;
    bool stopped;
    atomic_bool cut;    /* bridge_cut(): forward nothing more to the server */
    atomic_bool verify; /* bridge_verify_only() */
    /* -bv state, relay thread only */
    bool v_txn;       /* a MAIL FROM was forwarded */
    bool v_held;      /* DATA/BDAT reached: nothing more goes upstream */
    size_t v_cmds;    /* MAIL + RCPT commands forwarded */
    size_t v_replies; /* final reply lines received since MAIL */
    size_t v_tail;    /* an incomplete command line kept at the start of up */
    size_t v_linepos; /* position in the current reply line */
    char v_head[4];   /* first bytes of the current reply line */
    /* pending bytes for libESMTP before anything from the server (STARTTLS greeting) */
    char greeting[600];
    size_t greeting_len;
    /* how the relay ended (written by the thread, read after join) */
    enum bridge_end end;
    char end_why[256];
    unsigned long long bytes_up, bytes_down;
};

/* ------------------------------------------------------------------ helpers */

static long long bridge_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int bridge_remaining(long long deadline)
{
    long long left = deadline - bridge_now_ms();
    if (left < 0)
        return 0;
    return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

/* The OpenSSL error queue as one line (and cleared). */
static void bridge_ssl_errors(char *buf, size_t len)
{
    unsigned long e;
    size_t off = 0;
    buf[0] = '\0';
    while ((e = ERR_get_error()) != 0) {
        char one[256];
        const char *reason = ERR_reason_error_string(e);
        if (reason == NULL) {
            ERR_error_string_n(e, one, sizeof one);
            reason = one;
        }
        if (off < len) {
            int n = snprintf(buf + off, len - off, "%s%s", off ? "; " : "", reason);
            if (n > 0)
                off += (size_t)n;
        }
    }
}

static bool bridge_is_ip_literal(const char *host)
{
    unsigned char tmp[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1;
}

static enum result_failure bridge_fail(struct result *r, enum result_failure f, const char *fmt,
                                       ...) __attribute__((format(printf, 3, 4)));

static enum result_failure bridge_fail(struct result *r, enum result_failure f, const char *fmt,
                                       ...)
{
    va_list ap;
    va_start(ap, fmt);
    result_vset(r, result_delivery(f, false, false), fmt, ap);
    va_end(ap);
    return f;
}

/* ------------------------------------------------------------------ connect */

/* Connects one address with a deadline; returns the fd or -1 with errno set. */
static int bridge_connect_one(const struct addrinfo *ai, int timeout_ms)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return fd;
    if (errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    /* The clock is read only if a signal interrupts the wait (a clock read
     * costs two page faults on a short run). */
    long long deadline = -1;
    int wait_ms = timeout_ms;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int n = poll(&p, 1, wait_ms);
        if (n < 0 && errno == EINTR) {
            if (deadline < 0)
                deadline = bridge_now_ms() + timeout_ms; /* a little late: errs long */
            wait_ms = bridge_remaining(deadline);
            continue;
        }
        if (n <= 0) {
            close(fd);
            errno = n == 0 ? ETIMEDOUT : errno;
            return -1;
        }
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
            err = errno;
        if (err != 0) {
            close(fd);
            errno = err;
            return -1;
        }
        return fd;
    }
}

static enum result_failure bridge_connect(struct bridge *b, const struct conf_account *a,
                                          struct result *r)
{
    char port[16];
    snprintf(port, sizeof port, "%d", a->port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(a->host, port, &hints, &res);
    if (g != 0)
        return bridge_fail(r, RESULT_FAIL_RESOLVE, "%s: cannot resolve %s: %s", b->where, a->host,
                           g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
    int last_err = 0;
    bool all_timeouts = true;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = bridge_connect_one(ai, b->timeout_ms);
        if (fd >= 0) {
            if (a->tls != CONF_TLS_NONE) {
                /* our STARTTLS exchange and the handshake: small writes */
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            }
            b->remote_fd = fd;
            char addr[INET6_ADDRSTRLEN] = "?";
            if (log_verbose()) {
                getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof addr, NULL, 0,
                            NI_NUMERICHOST);
                log_debug("connected to %s (%s)", b->where, addr);
            }
            freeaddrinfo(res);
            return RESULT_FAIL_NONE;
        }
        last_err = errno;
        if (last_err != ETIMEDOUT)
            all_timeouts = false;
        if (log_verbose()) {
            char addr[INET6_ADDRSTRLEN] = "?";
            getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof addr, NULL, 0, NI_NUMERICHOST);
            log_debug("connect to %s (%s): %s", b->where, addr, strerror(last_err));
        }
    }
    freeaddrinfo(res);
    if (all_timeouts)
        return bridge_fail(r, RESULT_FAIL_TIMEOUT, "%s: connect: timed out after %d seconds",
                           b->where, b->timeout_ms / 1000);
    return bridge_fail(r, RESULT_FAIL_CONNECT, "%s: connect: %s", b->where, strerror(last_err));
}

/* ------------------------------------------------------------------ plaintext SMTP (STARTTLS) */

/*
 * Reads one (possibly multi-line) SMTP reply from the plaintext socket into
 * buf, reading byte-wise so nothing after the reply is consumed (after the
 * 220 to STARTTLS the next bytes belong to TLS).  Returns the code, 0 on
 * EOF/garbage, -1 on timeout.
 */
static int bridge_read_reply(struct bridge *b, char *buf, size_t len, size_t *outlen,
                             long long deadline)
{
    size_t n = 0, line_start = 0;
    *outlen = 0;
    for (;;) {
        char c;
        ssize_t got = recv(b->remote_fd, &c, 1, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {.fd = b->remote_fd, .events = POLLIN};
            int pr = poll(&p, 1, bridge_remaining(deadline));
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr <= 0)
                return pr == 0 ? -1 : 0;
            continue;
        }
        if (got <= 0) {
            *outlen = n;
            return 0;
        }
        if (n + 1 >= len)
            return 0; /* reply too long */
        buf[n++] = c;
        buf[n] = '\0';
        if (c != '\n')
            continue;
        /* a complete line buf[line_start..n) */
        const char *l = buf + line_start;
        size_t ll = n - line_start;
        if (ll < 4 || !isdigit((unsigned char)l[0]) || !isdigit((unsigned char)l[1]) ||
            !isdigit((unsigned char)l[2]) || (l[3] != ' ' && l[3] != '-' && l[3] != '\r')) {
            *outlen = n;
            return 0;
        }
        if (l[3] != '-') {
            *outlen = n;
            return (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
        }
        line_start = n;
    }
}

static bool bridge_send_all(struct bridge *b, const char *s, size_t len, long long deadline)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(b->remote_fd, s + off, len - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {.fd = b->remote_fd, .events = POLLOUT};
            if (poll(&p, 1, bridge_remaining(deadline)) <= 0)
                return false;
            continue;
        }
        return false;
    }
    return true;
}

/* The last line of a reply, without CRLF, for messages. */
static void bridge_last_line(const char *buf, size_t len, char *out, size_t outlen)
{
    size_t end = len;
    while (end > 0 && (buf[end - 1] == '\n' || buf[end - 1] == '\r'))
        end--;
    size_t start = end;
    while (start > 0 && buf[start - 1] != '\n')
        start--;
    size_t n = end - start;
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, buf + start, n);
    out[n] = '\0';
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

/* true when an EHLO reply advertises keyword kw. */
static bool bridge_ehlo_has(const char *buf, size_t len, const char *kw)
{
    size_t kl = strlen(kw);
    size_t i = 0;
    bool first = true;
    while (i < len) {
        size_t e = i;
        while (e < len && buf[e] != '\n')
            e++;
        /* line buf[i..e); skip the first line (the server's name) */
        if (!first && e - i >= 4 + kl) {
            const char *w = buf + i + 4;
            char after = (size_t)(w - buf) + kl < len ? w[kl] : '\0';
            if (strncasecmp(w, kw, kl) == 0 &&
                (after == '\r' || after == '\n' || after == ' ' || after == '\0'))
                return true;
        }
        first = false;
        i = e + 1;
    }
    return false;
}

/*
 * Sends cmd (a CRLF-terminated line; verb names it in messages) and reads
 * the reply into reply (*rlen octets, *code as bridge_read_reply()), both
 * shown in the -v transcript.  A send failure or a timeout is returned as
 * the failure; RESULT_FAIL_NONE otherwise, the reply left to the caller.
 */
static enum result_failure bridge_command(struct bridge *b, const char *cmd, const char *verb,
                                          char *reply, size_t size, size_t *rlen, int *code,
                                          struct result *r)
{
    log_transcript("->", cmd, strlen(cmd));
    long long deadline = bridge_now_ms() + b->timeout_ms;
    if (!bridge_send_all(b, cmd, strlen(cmd), deadline))
        return bridge_fail(r, RESULT_FAIL_DROPPED, "%s: sending %s: %s", b->where, verb,
                           strerror(errno));
    *code = bridge_read_reply(b, reply, size, rlen, deadline);
    log_transcript("<-", reply, *rlen);
    if (*code < 0)
        return bridge_fail(r, RESULT_FAIL_TIMEOUT, "%s: no reply to %s within %d seconds", b->where,
                           verb, b->timeout_ms / 1000);
    return RESULT_FAIL_NONE;
}

static enum result_failure bridge_starttls(struct bridge *b, const char *ehlo_name,
                                           struct result *r)
{
    char reply[BRIDGE_REPLY_MAX];
    size_t rlen;
    char line[300];
    long long deadline = bridge_now_ms() + b->timeout_ms;

    int code = bridge_read_reply(b, reply, sizeof reply, &rlen, deadline);
    log_transcript("<-", reply, rlen);
    if (code < 0)
        return bridge_fail(r, RESULT_FAIL_TIMEOUT, "%s: no greeting within %d seconds", b->where,
                           b->timeout_ms / 1000);
    if (code == 0)
        return bridge_fail(
            r, rlen == 0 ? RESULT_FAIL_DROPPED : RESULT_FAIL_PROTOCOL, "%s: %s", b->where,
            rlen == 0 ? "connection closed before the greeting" : "malformed greeting");
    if (code / 100 != 2) {
        bridge_last_line(reply, rlen, line, sizeof line);
        return bridge_fail(r, RESULT_FAIL_GREETING, "%s: greeting: %s", b->where, line);
    }

    char *cmd = mem_printf("EHLO %s\r\n", ehlo_name != NULL ? ehlo_name : "localhost");
    enum result_failure f = bridge_command(b, cmd, "EHLO", reply, sizeof reply, &rlen, &code, r);
    free(cmd);
    if (f != RESULT_FAIL_NONE)
        return f;
    if (code == 0)
        return bridge_fail(r, rlen == 0 ? RESULT_FAIL_DROPPED : RESULT_FAIL_PROTOCOL, "%s: %s",
                           b->where,
                           rlen == 0 ? "connection closed after EHLO" : "malformed EHLO reply");
    if (code / 100 != 2) {
        bridge_last_line(reply, rlen, line, sizeof line);
        return bridge_fail(r, RESULT_FAIL_GREETING, "%s: EHLO: %s", b->where, line);
    }
    if (!bridge_ehlo_has(reply, rlen, "STARTTLS"))
        return bridge_fail(r, RESULT_FAIL_STARTTLS,
                           "%s: the server does not offer STARTTLS (tls = starttls requires it; "
                           "nothing was sent)",
                           b->where);

    f = bridge_command(b, "STARTTLS\r\n", "STARTTLS", reply, sizeof reply, &rlen, &code, r);
    if (f != RESULT_FAIL_NONE)
        return f;
    if (code != 220) {
        bridge_last_line(reply, rlen, line, sizeof line);
        return bridge_fail(r, RESULT_FAIL_STARTTLS, "%s: STARTTLS refused: %s", b->where,
                           rlen ? line : "connection closed");
    }
    /* Nothing may follow the 220 before the handshake (STARTTLS command injection). */
    char extra;
    ssize_t x = recv(b->remote_fd, &extra, 1, MSG_PEEK | MSG_DONTWAIT);
    if (x > 0)
        return bridge_fail(r, RESULT_FAIL_PROTOCOL, "%s: unexpected data after the STARTTLS reply",
                           b->where);
    return RESULT_FAIL_NONE;
}

/* ------------------------------------------------------------------ TLS */

static enum result_failure bridge_tls_context(struct bridge *b, const struct conf_account *a,
                                              struct result *r)
{
    char err[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        bridge_ssl_errors(err, sizeof err);
        return bridge_fail(r, RESULT_FAIL_LOCAL, "%s: cannot create a TLS context: %s", b->where,
                           err);
    }
    b->ctx = ctx;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (a->tls_ca_file != NULL && a->tls_ca_file[0] != '\0') {
        if (SSL_CTX_load_verify_locations(ctx, a->tls_ca_file, NULL) != 1) {
            bridge_ssl_errors(err, sizeof err);
            return bridge_fail(r, RESULT_FAIL_CERT, "tls_ca_file %s: cannot load: %s",
                               a->tls_ca_file, err[0] ? err : "no certificates");
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        bridge_ssl_errors(err, sizeof err);
        return bridge_fail(r, RESULT_FAIL_CERT, "cannot load the system certificate store: %s",
                           err);
    }
    if (a->tls_cert_file != NULL && a->tls_cert_file[0] != '\0') {
        const char *key = a->tls_key_file != NULL && a->tls_key_file[0] != '\0' ? a->tls_key_file
                                                                                : a->tls_cert_file;
        if (SSL_CTX_use_certificate_chain_file(ctx, a->tls_cert_file) != 1) {
            bridge_ssl_errors(err, sizeof err);
            return bridge_fail(r, RESULT_FAIL_TLS, "tls_cert_file %s: %s", a->tls_cert_file, err);
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            bridge_ssl_errors(err, sizeof err);
            return bridge_fail(r, RESULT_FAIL_TLS, "tls_key_file %s: %s", key, err);
        }
    }
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
    if (bridge_is_ip_literal(a->host)) {
        if (X509_VERIFY_PARAM_set1_ip_asc(param, a->host) != 1)
            return bridge_fail(r, RESULT_FAIL_LOCAL, "%s: cannot pin IP address %s", b->where,
                               a->host);
    } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (X509_VERIFY_PARAM_set1_host(param, a->host, 0) != 1)
            return bridge_fail(r, RESULT_FAIL_LOCAL, "%s: cannot pin host name %s", b->where,
                               a->host);
    }
    return RESULT_FAIL_NONE;
}

static enum result_failure bridge_handshake(struct bridge *b, const struct conf_account *a,
                                            struct result *r)
{
    char err[256];
    b->ssl = SSL_new(b->ctx);
    if (b->ssl == NULL || SSL_set_fd(b->ssl, b->remote_fd) != 1) {
        bridge_ssl_errors(err, sizeof err);
        return bridge_fail(r, RESULT_FAIL_LOCAL, "%s: SSL_new: %s", b->where, err);
    }
    if (!bridge_is_ip_literal(a->host))
        SSL_set_tlsext_host_name(b->ssl, a->host);
    SSL_set_connect_state(b->ssl);
    long long deadline = bridge_now_ms() + b->timeout_ms;
    for (;;) {
        ERR_clear_error();
        int rc = SSL_connect(b->ssl);
        if (rc == 1)
            break;
        int e = SSL_get_error(b->ssl, rc);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            struct pollfd p = {.fd = b->remote_fd,
                               .events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT};
            int pr = poll(&p, 1, bridge_remaining(deadline));
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr <= 0)
                return bridge_fail(r, RESULT_FAIL_TIMEOUT,
                                   "%s: TLS handshake timed out after %d seconds", b->where,
                                   b->timeout_ms / 1000);
            continue;
        }
        long vr = SSL_get_verify_result(b->ssl);
        if (vr != X509_V_OK) {
            ERR_clear_error();
            return bridge_fail(r, RESULT_FAIL_CERT, "%s: certificate verify failed: %s", b->where,
                               X509_verify_cert_error_string(vr));
        }
        int sys = errno;
        bridge_ssl_errors(err, sizeof err);
        if (err[0] == '\0')
            snprintf(err, sizeof err, "%s",
                     e == SSL_ERROR_SYSCALL && sys != 0 ? strerror(sys)
                                                        : "connection closed by the server");
        return bridge_fail(r, RESULT_FAIL_TLS, "%s: TLS handshake failed: %s", b->where, err);
    }
    b->secure = true;
    log_debug("%s: %s %s, certificate verified for %s", b->where, SSL_get_version(b->ssl),
              SSL_get_cipher_name(b->ssl), a->host);
    return RESULT_FAIL_NONE;
}

/* ------------------------------------------------------------------ the relay thread */

/* Remote I/O: returns >0 bytes, 0 at EOF, -1 would block (*want = POLLIN/POLLOUT), -2 error. */
static ssize_t bridge_remote_io(struct bridge *b, bool writing, void *buf, size_t len, short *want)
{
    if (b->ssl == NULL) {
        ssize_t n =
            writing ? send(b->remote_fd, buf, len, MSG_NOSIGNAL) : recv(b->remote_fd, buf, len, 0);
        if (n >= 0)
            return n;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            *want = writing ? POLLOUT : POLLIN;
            return -1;
        }
        snprintf(b->end_why, sizeof b->end_why, "%s", strerror(errno));
        return -2;
    }
    ERR_clear_error();
    int n = writing ? SSL_write(b->ssl, buf, (int)len) : SSL_read(b->ssl, buf, (int)len);
    if (n > 0)
        return n;
    int e = SSL_get_error(b->ssl, n);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        *want = POLLIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        *want = POLLOUT;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) {
            if (errno == 0 || errno == ECONNRESET || errno == EPIPE)
                return 0; /* the server just hung up */
            snprintf(b->end_why, sizeof b->end_why, "%s", strerror(errno));
            return -2;
        }
        /* fall through */
    default:
        bridge_ssl_errors(b->end_why, sizeof b->end_why);
        /* An EOF without close_notify is how many servers hang up. */
        if (strstr(b->end_why, "unexpected eof") != NULL)
            return 0;
        return -2;
    }
}

static bool bridge_verb_is(const char *line, size_t len, const char *verb)
{
    size_t n = strlen(verb);
    return len >= n && strncasecmp(line, verb, n) == 0;
}

/*
 * -bv, upstream: buf[0..len) holds what libESMTP wrote (after a kept partial
 * line).  Returns how many bytes may be forwarded: whole command lines up to
 * the first DATA/BDAT after MAIL.  A trailing partial line is kept in
 * b->v_tail for the next read; everything from DATA/BDAT on is dropped.
 */
static size_t bridge_verify_upstream(struct bridge *b, char *buf, size_t len)
{
    b->v_tail = 0;
    if (b->v_held)
        return 0;
    size_t start = 0;
    while (start < len) {
        char *nl = memchr(buf + start, '\n', len - start);
        if (nl == NULL)
            break;
        size_t end = (size_t)(nl - buf) + 1;
        const char *l = buf + start;
        size_t ll = end - start;
        if (bridge_verb_is(l, ll, "MAIL ")) {
            b->v_txn = true;
            b->v_cmds = 1;
            b->v_replies = 0;
        } else if (b->v_txn && bridge_verb_is(l, ll, "RCPT ")) {
            b->v_cmds++;
        } else if (b->v_txn && (bridge_verb_is(l, ll, "DATA") || bridge_verb_is(l, ll, "BDAT"))) {
            b->v_held = true;
            return start;
        }
        start = end;
    }
    if (start < len && len == BRIDGE_BUF_L2R && start == 0)
        return len; /* a "line" longer than the buffer: not a command of ours */
    b->v_tail = len - start;
    return start;
}

/* -bv, downstream: counts final reply lines ("250 ...") after MAIL. */
static void bridge_verify_downstream(struct bridge *b, const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (c == '\n') {
            if (b->v_linepos >= 3 && (b->v_linepos == 3 || b->v_head[3] != '-'))
                b->v_replies++;
            b->v_linepos = 0;
            continue;
        }
        if (b->v_linepos < sizeof b->v_head)
            b->v_head[b->v_linepos] = c == '\r' ? ' ' : c;
        b->v_linepos++;
    }
}

static void *bridge_thread(void *arg)
{
    struct bridge *b = arg;
    char *up = mem_alloc(BRIDGE_BUF_L2R);   /* local -> remote */
    char *down = mem_alloc(BRIDGE_BUF_R2L); /* remote -> local */
    size_t up_len = 0, up_off = 0, down_len = 0, down_off = 0;
    bool local_eof = false, remote_eof = false;
    short remote_read_want = POLLIN, remote_write_want = POLLOUT;
    bool remote_read_blocked = false, remote_write_blocked = false;
    bool local_read_blocked = false, local_write_blocked = false;
    bool stopping = false;

    if (b->greeting_len > 0) {
        memcpy(down, b->greeting, b->greeting_len);
        down_len = b->greeting_len;
    }
    long long last_activity = bridge_now_ms();

    for (;;) {
        bool progress = false;

        if (b->v_held && b->v_replies >= b->v_cmds && down_len == 0)
            atomic_store(&b->cut, true); /* -bv: every RCPT answered */
        if (atomic_load(&b->cut)) {
            /* Nothing libESMTP wrote after the cut reaches the server; say QUIT. */
            short want;
            bridge_remote_io(b, true, "QUIT\r\n", 6, &want);
            b->end = BRIDGE_END_CUT;
            break;
        }

        /* remote -> down buffer */
        if (down_len == 0 && !remote_eof && !remote_read_blocked) {
            ssize_t n = bridge_remote_io(b, false, down, BRIDGE_BUF_R2L, &remote_read_want);
            if (n > 0) {
                down_len = (size_t)n;
                down_off = 0;
                b->bytes_down += (unsigned long long)n;
                if (b->v_txn)
                    bridge_verify_downstream(b, down, down_len);
                progress = true;
                /* A short read drained the socket: wait in poll() rather than
                 * spend a syscall on EAGAIN (unless TLS still holds bytes). */
                if (down_len < BRIDGE_BUF_R2L && (b->ssl == NULL || !SSL_has_pending(b->ssl))) {
                    remote_read_blocked = true;
                    remote_read_want = POLLIN;
                }
            } else if (n == 0) {
                remote_eof = true;
                progress = true;
            } else if (n == -1) {
                remote_read_blocked = true;
            } else {
                b->end = BRIDGE_END_ERROR;
                break;
            }
        }
        /* down buffer -> local */
        if (down_len > 0 && !local_write_blocked) {
            ssize_t n = send(b->local_fd, down + down_off, down_len - down_off, MSG_NOSIGNAL);
            if (n > 0) {
                down_off += (size_t)n;
                if (down_off == down_len)
                    down_len = down_off = 0;
                progress = true;
            } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                local_write_blocked = true;
            } else {
                b->end = BRIDGE_END_LOCAL_CLOSED; /* libESMTP went away */
                break;
            }
        }
        if (remote_eof && down_len == 0) {
            b->end = BRIDGE_END_REMOTE_CLOSED;
            if (b->bytes_down == 0 && b->greeting_len == 0 && b->ssl != NULL)
                snprintf(b->end_why, sizeof b->end_why,
                         "the server closed the connection right after the TLS handshake, "
                         "before its greeting (a client certificate missing or refused?)");
            break;
        }
        /* local -> up buffer */
        if (up_len == 0 && !local_eof && !local_read_blocked) {
            size_t have = b->v_tail;
            ssize_t n = recv(b->local_fd, up + have, BRIDGE_BUF_L2R - have, 0);
            if (n > 0) {
                if (atomic_load(&b->verify)) {
                    up_len = bridge_verify_upstream(b, up, have + (size_t)n);
                } else {
                    up_len = (size_t)n;
                }
                up_off = 0;
                progress = true;
                if ((size_t)n < BRIDGE_BUF_L2R - have)
                    local_read_blocked = true; /* drained, as above */
            } else if (n == 0) {
                local_eof = true;
                progress = true;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                local_read_blocked = true;
            } else {
                local_eof = true;
            }
        }
        /* up buffer -> remote */
        if (up_len > 0 && !remote_write_blocked && !atomic_load(&b->cut)) {
            ssize_t n = bridge_remote_io(b, true, up + up_off, up_len - up_off, &remote_write_want);
            if (n > 0) {
                up_off += (size_t)n;
                b->bytes_up += (unsigned long long)n;
                if (up_off == up_len) {
                    if (b->v_tail > 0) /* the start of the next command line */
                        memmove(up, up + up_len, b->v_tail);
                    up_len = up_off = 0;
                }
                progress = true;
            } else if (n == -1) {
                remote_write_blocked = true;
            } else {
                if (n == 0)
                    b->end = BRIDGE_END_REMOTE_CLOSED;
                else
                    b->end = BRIDGE_END_ERROR;
                break;
            }
        }
        if (local_eof && up_len == 0) {
            b->end = BRIDGE_END_LOCAL_CLOSED;
            break;
        }
        if (progress) {
            last_activity = bridge_now_ms();
            continue;
        }
        if (stopping) {
            b->end = BRIDGE_END_LOCAL_CLOSED;
            break;
        }

        /* Nothing moved: wait for whatever the blocked operations need. */
        struct pollfd p[3];
        p[0].fd = b->local_fd;
        p[0].events =
            (short)((local_read_blocked ? POLLIN : 0) | (local_write_blocked ? POLLOUT : 0));
        p[1].fd = b->remote_fd;
        p[1].events = (short)((remote_read_blocked ? remote_read_want : 0) |
                              (remote_write_blocked ? remote_write_want : 0));
        p[2].fd = b->stop_pipe[0];
        p[2].events = POLLIN;
        int left = bridge_remaining(last_activity + b->idle_ms);
        if (left == 0) {
            b->end = BRIDGE_END_TIMEOUT;
            snprintf(b->end_why, sizeof b->end_why, "no data moved for %d seconds",
                     b->idle_ms / 1000);
            break;
        }
        int n = poll(p, 3, left);
        if (n < 0 && errno != EINTR) {
            b->end = BRIDGE_END_ERROR;
            snprintf(b->end_why, sizeof b->end_why, "poll: %s", strerror(errno));
            break;
        }
        if (n <= 0)
            continue;
        if (p[2].revents != 0) {
            /* bridge_stop(): move what can still move, then end. */
            stopping = true;
            local_read_blocked = local_write_blocked = false;
            remote_read_blocked = remote_write_blocked = false;
            continue;
        }
        if (p[0].revents != 0)
            local_read_blocked = local_write_blocked = false;
        if (p[1].revents != 0)
            remote_read_blocked = remote_write_blocked = false;
    }

    /* Tell libESMTP it is over (it sees EOF), say goodbye to the server. */
    shutdown(b->local_fd, SHUT_RDWR);
    if (b->ssl != NULL && (b->end == BRIDGE_END_LOCAL_CLOSED || b->end == BRIDGE_END_CUT)) {
        ERR_clear_error();
        SSL_shutdown(b->ssl); /* non-blocking: one close_notify, no wait */
    }
    explicit_bzero(up, BRIDGE_BUF_L2R); /* it carried the AUTH exchange */
    free(up);
    free(down);
    return NULL;
}

/* ------------------------------------------------------------------ public */

/*
 * The handoff.  libESMTP 1.1.0 connects by itself to what smtp_set_server()
 * names; it cannot be given a socket.  So it is given an address that no
 * connect() can reach, 127.0.0.1 port 0, and this connect() - an executable's
 * definition comes first in the dynamic linker's search, so libESMTP's calls
 * land here - takes the one call to that address while a bridge is armed:
 * it records libESMTP's fresh socket and reports success, and
 * bridge_attach() puts the real connection under it.  Every other call goes
 * on to the C library's connect().  Nothing listens, nothing is exchanged on
 * the loopback interface, and if the call ever bypassed this function it
 * would fail (connection refused) instead of reaching anything.
 */
static struct bridge *bridge_armed; /* main thread only: libESMTP connects there */

static bool bridge_is_handoff(const struct sockaddr *sa, socklen_t len)
{
    if (sa == NULL || len < (socklen_t)sizeof(struct sockaddr_in) || sa->sa_family != AF_INET)
        return false;
    struct sockaddr_in sin;
    memcpy(&sin, sa, sizeof sin);
    return sin.sin_port == 0 && sin.sin_addr.s_addr == htonl(INADDR_LOOPBACK);
}

/* glibc declares connect() with a transparent union of pointers under _GNU_SOURCE */
#ifdef __CONST_SOCKADDR_ARG
#define BRIDGE_SOCKADDR_ARG __CONST_SOCKADDR_ARG
#else
#define BRIDGE_SOCKADDR_ARG const struct sockaddr *
#endif

int connect(int fd, BRIDGE_SOCKADDR_ARG addr, socklen_t len)
{
    const struct sockaddr *sa;
    memcpy(&sa, &addr, sizeof sa); /* the pointer itself, in either declaration */
    struct bridge *b = bridge_armed;
    if (b != NULL && bridge_is_handoff(sa, len)) {
        bridge_armed = NULL;
        b->client = fd;
        return 0;
    }
    static int (*next)(int, const struct sockaddr *, socklen_t);
    if (next == NULL) {
        void *f = dlsym(RTLD_NEXT, "connect");
        if (f == NULL) {
            errno = ENOSYS;
            return -1;
        }
        memcpy(&next, &f, sizeof next); /* ISO C has no object-to-function pointer cast */
    }
    return next(fd, sa, len);
}

enum result_failure bridge_open(const struct conf_account *a, const char *ehlo_name,
                                struct bridge **out, char *local_server, size_t len,
                                struct result *r)
{
    *out = NULL;
    struct bridge *b = mem_alloc(sizeof *b);
    b->remote_fd = b->client = b->local_fd = -1;
    b->stop_pipe[0] = b->stop_pipe[1] = -1;
    b->stopped = true; /* nothing to stop until the thread runs */
    atomic_init(&b->cut, false);
    atomic_init(&b->verify, false);
    int t = a->timeout > 0 ? a->timeout : 60;
    if (t > 24 * 3600)
        t = 24 * 3600;
    b->timeout_ms = t * 1000;
    /* The relay thread only guards against a stuck libESMTP: libESMTP's own
     * timeouts (the same value) fire first. */
    b->idle_ms = b->timeout_ms * 2 + 5000;
    if (strchr(a->host, ':') != NULL)
        snprintf(b->where, sizeof b->where, "[%s]:%d", a->host, a->port);
    else
        snprintf(b->where, sizeof b->where, "%s:%d", a->host, a->port);

    enum result_failure f = bridge_connect(b, a, r);
    if (f == RESULT_FAIL_NONE && a->tls != CONF_TLS_NONE)
        f = bridge_tls_context(b, a, r);
    if (f == RESULT_FAIL_NONE && a->tls == CONF_TLS_STARTTLS)
        f = bridge_starttls(b, ehlo_name, r);
    if (f == RESULT_FAIL_NONE && a->tls != CONF_TLS_NONE)
        f = bridge_handshake(b, a, r);
    if (f == RESULT_FAIL_NONE && a->tls == CONF_TLS_STARTTLS) {
        /* libESMTP starts afresh: a new greeting, then its own EHLO (RFC 3207). */
        int n = snprintf(b->greeting, sizeof b->greeting, "220 %.200s ESMTP\r\n", a->host);
        b->greeting_len = (size_t)n;
    }
    if (f != RESULT_FAIL_NONE) {
        bridge_close(b);
        return f;
    }
    snprintf(local_server, len, "127.0.0.1:0");
    bridge_armed = b;
    *out = b;
    return RESULT_FAIL_NONE;
}

bool bridge_is_secure(const struct bridge *b)
{
    return b != NULL && b->secure;
}

void bridge_verify_only(struct bridge *b)
{
    if (b != NULL)
        atomic_store(&b->verify, true);
}

bool bridge_attach(struct bridge *b, char *why, size_t len)
{
    if (b == NULL || b->attached)
        return b != NULL;
    b->attached = true;
    int client = b->client;
    if (client < 0) {
        snprintf(why, len, "libESMTP's connect() did not come through postie's handoff");
        return false;
    }
    int fd = -1;
    if (b->ssl == NULL && b->greeting_len == 0 && !atomic_load(&b->verify)) {
        /* Plaintext: libESMTP gets the smarthost socket itself, no thread.
         * It writes the message in 2 KiB buffers: let the kernel coalesce
         * them into full segments, as for any client (Nagle on again). */
        fd = b->remote_fd;
        b->direct = true;
    } else {
        int sp[2];
        if (pipe2(b->stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0 ||
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp) != 0) {
            snprintf(why, len, "cannot set up the relay: %s", strerror(errno));
            return false;
        }
        fd = sp[0];
        b->local_fd = sp[1];
        if (b->ssl == NULL) {
            /* -bv: the relay forwards libESMTP's commands as they come */
            int one = 1;
            setsockopt(b->remote_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
    }
    /* Both sockets are non-blocking, as sio_attach() made libESMTP's. */
    bool ok = dup3(fd, client, O_CLOEXEC) == client;
    if (!b->direct)
        close(fd);
    if (!ok) {
        snprintf(why, len, "cannot hand the connection to libESMTP: %s", strerror(errno));
        return false;
    }
    if (b->direct)
        return true;
    b->stopped = false;
    int e = pthread_create(&b->thread, NULL, bridge_thread, b);
    if (e != 0) {
        b->stopped = true;
        snprintf(why, len, "pthread_create: %s", strerror(e));
        shutdown(client, SHUT_RDWR);
        return false;
    }
    b->thread_running = true;
    return true;
}

void bridge_cut(struct bridge *b)
{
    if (b == NULL || atomic_exchange(&b->cut, true))
        return;
    if (b->direct) {
        /* libESMTP's thread, before it writes: say QUIT and hang up, so
         * what it was about to write fails and it sees the connection end. */
        ssize_t w = send(b->remote_fd, "QUIT\r\n", 6, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
        shutdown(b->remote_fd, SHUT_RDWR);
        b->end = BRIDGE_END_CUT;
        return;
    }
    if (b->stop_pipe[1] >= 0) {
        ssize_t w = write(b->stop_pipe[1], "c", 1);
        (void)w;
    }
}

void bridge_stop(struct bridge *b)
{
    if (b == NULL || b->stopped)
        return;
    b->stopped = true;
    if (b->stop_pipe[1] >= 0) {
        ssize_t w = write(b->stop_pipe[1], "x", 1);
        (void)w;
    }
    if (b->thread_running) {
        pthread_join(b->thread, NULL);
        b->thread_running = false;
    }
}

enum bridge_end bridge_end_reason(struct bridge *b, char *why, size_t len)
{
    if (b == NULL)
        return BRIDGE_END_NONE;
    bridge_stop(b);
    if (b->direct && b->end == BRIDGE_END_NONE) {
        /* libESMTP is done with the socket: did the server hang up? */
        char c;
        ssize_t n = recv(b->remote_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0) {
            b->end = BRIDGE_END_REMOTE_CLOSED;
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            b->end = BRIDGE_END_ERROR;
            snprintf(b->end_why, sizeof b->end_why, "%s", strerror(errno));
        } else {
            b->end = BRIDGE_END_LOCAL_CLOSED;
        }
    } else if (!b->attached && b->end == BRIDGE_END_NONE) {
        b->end = BRIDGE_END_LOCAL_CLOSED; /* libESMTP never connected */
        if (b->client < 0)
            snprintf(b->end_why, sizeof b->end_why,
                     "libESMTP's connect() did not come through postie's handoff");
    }
    if (why != NULL && len > 0)
        snprintf(why, len, "%s", b->end_why);
    return b->end;
}

void bridge_close(struct bridge *b)
{
    if (b == NULL)
        return;
    bridge_stop(b);
    if (b->ssl != NULL)
        SSL_free(b->ssl);
    if (b->ctx != NULL)
        SSL_CTX_free(b->ctx);
    if (bridge_armed == b)
        bridge_armed = NULL;
    int fds[] = {b->remote_fd, b->local_fd, b->stop_pipe[0], b->stop_pipe[1]};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(b);
}
