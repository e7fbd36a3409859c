/* envelope.h - see message.h; contract written with the implementation. */
#ifndef POSTIE_ENVELOPE_H
#define POSTIE_ENVELOPE_H
#include "result.h"
#endif
