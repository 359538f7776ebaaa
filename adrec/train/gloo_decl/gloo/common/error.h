// See gloo/context.h: declarations only, for ProcessGroupGloo.hpp.
#pragma once
#include <gloo/context.h>
