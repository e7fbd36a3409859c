/*
 * bridge.h - the connection to the smarthost, owned by postie.
 *
 * libESMTP 1.1.0 cannot do implicit TLS, deadlocks in STARTTLS against
 * TLS 1.3 servers that send session tickets, checks the resolver's
 * canonical name instead of the configured one, knows no IP SANs, sends no
 * SNI and has no connect timeout (shared/docs/libraries.md sections 3, 3a,
 * 5, 9).  So postie opens the connection itself: it connects with its own
 * timeout (names, IPv4 and IPv6 literals), does implicit TLS, or reads the
 * greeting and does EHLO + STARTTLS + the handshake itself, verifying the
 * chain and the configured name or IP literal, with SNI.  libESMTP, which
 * cannot be handed a socket, is told to connect to 127.0.0.1 port 0, an
 * address no connect() reaches; bridge.c's own connect(), which the dynamic
 * linker binds libESMTP to ahead of the C library's, takes that one call and
 * records libESMTP's socket without touching the network.  When libESMTP
 * reports the connection (SMTP_EV_CONNECT, before any byte is read or
 * written), bridge_attach() puts another socket under libESMTP's descriptor
 * with dup3():
 *   - plaintext (tls = "none", not -bv): the smarthost socket itself, so
 *     libESMTP talks to the server directly, with no copy and no thread;
 *   - TLS, or -bv: one end of a socketpair, the other end relayed to the
 *     smarthost (through TLS) by a thread.  After STARTTLS libESMTP is
 *     given a fresh 220 greeting, so it re-sends EHLO as RFC 3207 requires.
 */
#ifndef POSTIE_BRIDGE_H
#define POSTIE_BRIDGE_H

#include <stdbool.h>

#include "conf.h"
#include "result.h"

struct bridge;

/*
 * Connects to the account's smarthost and sets up TLS as configured.
 * On success *out is running, armed for libESMTP's connect(), and
 * *local_server is the address to give smtp_set_server().  On failure
 * returns the failure kind (and the reply or reason in r's text); nothing
 * is left open.  ehlo_name is the name sent in postie's own EHLO (STARTTLS
 * mode).
 */
enum result_failure bridge_open(const struct conf_account *a, const char *ehlo_name,
                                struct bridge **out, char *local_server, size_t len,
                                struct result *r);

/*
 * Called from libESMTP's SMTP_EV_CONNECT event (its connect() to
 * local_server was just taken by the handoff, nothing was exchanged yet):
 * replaces libESMTP's socket as described above.  false (reason in why) when
 * it cannot; the session must then be stopped (bridge_cut()).
 */
bool bridge_attach(struct bridge *b, char *why, size_t len);

/* true when the link to the smarthost is encrypted and verified. */
bool bridge_is_secure(const struct bridge *b);

/* How the relay between libESMTP and the smarthost ended. */
enum bridge_end {
    BRIDGE_END_NONE = 0,      /* still running, or never started */
    BRIDGE_END_LOCAL_CLOSED,  /* libESMTP closed its side (normal end) */
    BRIDGE_END_REMOTE_CLOSED, /* the smarthost closed the connection */
    BRIDGE_END_TIMEOUT,       /* nothing moved for longer than the safety limit */
    BRIDGE_END_ERROR,         /* a socket or TLS error on the smarthost side */
    BRIDGE_END_CUT,           /* bridge_cut() was called */
};

/*
 * Cuts the link: from the moment this returns, nothing libESMTP writes is
 * forwarded to the smarthost; the relay thread sends QUIT and hangs up, so
 * libESMTP sees the connection drop.  relay.c calls it from libESMTP's
 * monitor callback (which runs before libESMTP writes a buffer) when it must
 * not go on, e.g. before a MAIL FROM after a failed AUTH.  Thread-safe.
 */
void bridge_cut(struct bridge *b);

/*
 * -bv: the relay forwards libESMTP's commands only up to the DATA or BDAT
 * that follows the RCPTs (libESMTP pipelines it, and sends the message
 * right after it with CHUNKING); once MAIL and every RCPT are answered it
 * sends QUIT and hangs up, so no message is ever transferred.  Call it
 * before smtp_start_session().
 */
void bridge_verify_only(struct bridge *b);

/*
 * Stops the relay thread, if one runs, after it has moved what it still
 * can.  Call it after smtp_start_session() returned; bridge_close() and
 * bridge_end_reason() call it too.
 */
void bridge_stop(struct bridge *b);

/*
 * How the connection ended (for a session that failed); why (may be NULL)
 * receives a reason for BRIDGE_END_TIMEOUT and BRIDGE_END_ERROR, and for
 * BRIDGE_END_LOCAL_CLOSED when libESMTP's connect() never reached the
 * handoff.  Without a relay thread it looks at the smarthost socket: the
 * server closed it, or it is still open (libESMTP gave up by itself).
 */
enum bridge_end bridge_end_reason(struct bridge *b, char *why, size_t len);

/* Stops the relay thread and closes both sides; NULL is fine. */
void bridge_close(struct bridge *b);

#endif
