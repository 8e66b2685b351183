// Entry points of the modes. Each prints its JSON result on stdout and returns the
// process exit status (0 even when connections failed: the JSON counts them).
#pragma once

#include "options.h"

namespace loadgen {

int runEcho(const Options& o);
int runRamp(const Options& o);
int runIdle(const Options& o);
int runFanout(const Options& o);

}  // namespace loadgen
