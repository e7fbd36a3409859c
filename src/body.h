/* body.h - see message.h; contract written with the implementation. */
#ifndef POSTIE_BODY_H
#define POSTIE_BODY_H
#include "result.h"
#endif
