#include "config.h"
#include "header.h"
