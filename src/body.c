#include "config.h"
#include "body.h"
