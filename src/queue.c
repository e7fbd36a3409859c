#include "config.h"
#include "queue.h"
enum outcome queue_open(const char *dir, struct queue **q, struct result *r) { return result_set(r, OUTCOME_CANTCREAT, "no queue yet"); }
enum outcome queue_store(struct queue *q, const struct message *m, const struct queue_meta *meta, char id[QUEUE_ID_MAX], struct result *r) { return result_set(r, OUTCOME_CANTCREAT, "no queue yet"); }
enum outcome queue_bounce(struct queue *q, const struct conf *c, const struct message *m, const struct relay_rcpt *rcpts, size_t n, bool is_bounce, struct result *r) { return OUTCOME_OK; }
enum outcome queue_list(struct queue *q, FILE *out, struct result *r) { return OUTCOME_OK; }
enum outcome queue_flush(struct queue *q, const struct conf *c, bool due_only, const char *filter, struct queue_flush_stats *st, struct result *r) { return OUTCOME_OK; }
bool queue_has_due(struct queue *q) { return false; }
enum outcome queue_delete(struct queue *q, const char *id, struct result *r) { return OUTCOME_OK; }
void queue_close(struct queue *q) { (void)q; }
