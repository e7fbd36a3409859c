/* addr.h - see message.h; contract written with the implementation. */
#ifndef POSTIE_ADDR_H
#define POSTIE_ADDR_H
#include "result.h"
#endif
