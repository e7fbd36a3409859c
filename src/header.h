/* header.h - see message.h; contract written with the implementation. */
#ifndef POSTIE_HEADER_H
#define POSTIE_HEADER_H
#include "result.h"
#endif
