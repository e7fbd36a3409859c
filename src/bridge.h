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
 * chain and the configured name or IP literal, with SNI.  It then listens on
 * an ephemeral 127.0.0.1 port, accepts exactly one connection that belongs
 * to this process, and relays bytes between it and the smarthost in a
 * thread.  libESMTP talks plaintext SMTP to that port; after STARTTLS it is
 * given a fresh 220 greeting, so it re-sends EHLO as RFC 3207 requires.
 */
#ifndef POSTIE_BRIDGE_H
#define POSTIE_BRIDGE_H

#include <stdbool.h>

#include "conf.h"
#include "result.h"

struct bridge;

/*
 * Connects to the account's smarthost and sets up TLS as configured.
 * On success *out is running and *local_server is "127.0.0.1:PORT" for
 * smtp_set_server().  On failure returns the failure kind (and the reply
 * or reason in r's text); nothing is left open.  ehlo_name is the name sent
 * in postie's own EHLO (STARTTLS mode).
 */
enum result_failure bridge_open(const struct conf_account *a, const char *ehlo_name,
                                struct bridge **out, char *local_server, size_t len,
                                struct result *r);

/* true when the link to the smarthost is encrypted and verified. */
bool bridge_is_secure(const struct bridge *b);

/* Stops the relay thread and closes both sides. */
void bridge_close(struct bridge *b);

#endif
