/*
 * input.h - reads one message from a file descriptor in one pass with fixed
 * buffers: the header block into memory, the body in canonical CRLF form
 * into a spool file (DESIGN section 4).  Memory does not grow with the size
 * of the body.
 *
 * Rules:
 *   - LF, CRLF and lone CR line ends all become CRLF; a missing final line
 *     end is supplied.
 *   - Without ignore_dots (-i/-oi), a line holding only "." ends the input
 *     (what follows is not read); with it, that line is ordinary text.
 *     Nothing is dot-stuffed here (libESMTP does it on the wire).
 *   - A leading mbox "From " line (the very first line, "From " followed by
 *     anything but a colon) is dropped.
 *   - The header block ends at the first empty line (not kept).  A line that
 *     is neither a field ("name:" with a name of printable ASCII other than
 *     ':', optionally followed by whitespace before the colon) nor a
 *     continuation (SP/HT after a field) starts the body, as in Postfix; then
 *     there was no separator line and that line is the first body line.
 *   - A header block larger than header_max is OUTCOME_DATAERR.
 *   - NUL octets: in a header field, OUTCOME_DATAERR; in the body they are
 *     removed and counted in nul_removed (the caller warns).
 *   - Read errors are OUTCOME_IOERR, spool write errors OUTCOME_CANTCREAT.
 */
#ifndef POSTIE_INPUT_H
#define POSTIE_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "result.h"

/* Default cap on the header block. */
#define INPUT_HEADER_MAX (1024 * 1024)

struct input_params {
    bool ignore_dots;  /* -i / -oi */
    size_t header_max; /* 0: INPUT_HEADER_MAX */
    /*
     * Optional, for a body that starts in memory (a memfd): once the body
     * would pass spill_at octets, spill() opens the file it goes on in
     * (-1 with r set when it cannot); what was written so far is copied
     * there and the first descriptor closed.
     */
    off_t spill_at;
    int (*spill)(void *arg, struct result *r);
    void *spill_arg; /* for spill() and open() */
    /*
     * Optional: the body stays in the reader's memory while it fits in one
     * block (INPUT_CHUNK octets), and *body_fd starts at -1.  Only a body
     * that outgrows the block gets a descriptor: open() gives it (-1 with r
     * set when it cannot), and it goes on as above.  A body that ended
     * inside the block is taken with input_take_body().
     */
    int (*open)(void *arg, struct result *r);
};

struct input_result {
    char *headers; /* header block: CRLF lines, no empty line; "" when none */
    size_t headers_len;
    bool separator;      /* an empty line ended the header block */
    off_t body_len;      /* octets written to body_fd (at the end: or held, see open) */
    off_t body_read;     /* input octets read as body (of a first body line
                            without separator, those after the octet that
                            showed it is no field) */
    size_t nul_removed;  /* NUL octets dropped from the body */
    bool header_8bit;    /* octets >= 0x80 in the header block */
    bool body_8bit;      /* octets >= 0x80 in the body */
    bool body_utf8;      /* the body is valid UTF-8 (true for pure ASCII) */
    size_t longest_line; /* longest body line in octets, without CRLF */
    bool mbox_from;      /* a leading "From " line was dropped */
    bool dot_ended;      /* input ended at a lone "." line */
};

/*
 * Reads in_fd to its end (or the lone dot) and writes the canonical body to
 * *body_fd at its current offset (*body_fd changes when the body spills, see
 * spill above).  out is filled on OUTCOME_OK; on failure it holds nothing
 * that needs freeing.
 */
enum outcome input_read(int in_fd, int *body_fd, const struct input_params *p,
                        struct input_result *out, struct result *r);

/*
 * The same, a block at a time, for a caller that sends the body while it is
 * still being read.  input_open() starts (out and *body_fd as above; the
 * input reads in_fd and writes the spool only in input_step()).
 * input_step() reads once from in_fd (it may block) and processes what came;
 * *done is set once the input has ended and everything is in the spool.
 * With flush, every body octet read so far is in the spool when it returns
 * (out->body_len counts them), unless the body is still held (open); without,
 * up to one block may wait in memory.
 * An error ends the input: later steps return it again.  input_close() frees
 * the reader, not out.
 */
struct input;
struct input *input_open(int in_fd, int *body_fd, const struct input_params *p,
                         struct input_result *out, struct result *r);
enum outcome input_step(struct input *s, bool flush, bool *done);
/* Steps (without flush) to the end of the input, or to the first error. */
enum outcome input_rest(struct input *s);
/* The header block is complete: what is read now is body. */
bool input_in_body(const struct input *s);
/*
 * Once the input has ended with its body held in memory (input_params.open,
 * and *body_fd still -1): hands over the block that holds the body's
 * out->body_len octets, for the caller to free.  NULL when the body is in
 * *body_fd (or the input has not ended).
 */
char *input_take_body(struct input *s);
void input_close(struct input *s);

void input_result_free(struct input_result *in);

#endif
