/* input.h - see message.h; contract written with the implementation. */
#ifndef POSTIE_INPUT_H
#define POSTIE_INPUT_H
#include "result.h"
#endif
