#include "kimi_hints.h"
