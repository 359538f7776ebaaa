// The data a ranking model trains on, prepared one way for `adrec train` and `adrec features`
// (so the arrays features writes are the batches train builds): the dataset, its split (read
// from a split directory or made from the config's options), the feature spec bound to the
// dataset with its normalisation fitted on the train part, and the samples of each part.
#pragma once

#include <filesystem>

#include "adrec/core/status.h"
#include "adrec/data/dataset.h"
#include "adrec/data/features.h"
#include "adrec/data/split.h"

namespace adrec::data {

struct RankingDataOptions {
  std::filesystem::path data;       // dataset directory
  std::filesystem::path split_dir;  // a split from `adrec split`; empty = make `split`
  SplitOptions split;
};

struct RankingData {
  Dataset ds;
  Split split;
  FeatureSpec spec;  // bound to ds, normalisation fitted on the train samples
  SampleSet train, valid, test;
};

// FailedPrecondition naming the dataset and the sample actions when the train part has no
// sample; the errors of reading, splitting and binding otherwise.
StatusOr<RankingData> PrepareRankingData(FeatureSpec spec, const RankingDataOptions& options);

}  // namespace adrec::data
