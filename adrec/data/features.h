// The feature pipeline of the ranking models, by stage: the spec (feature_spec.h), the samples
// and their labels (samples.h), batches (batch.h) and the batch stream (batch_stream.h). This
// header includes them all for code that uses the whole pipeline.
#pragma once

#include "adrec/data/batch.h"
#include "adrec/data/batch_stream.h"
#include "adrec/data/feature_spec.h"
#include "adrec/data/samples.h"
