#include "adrec/data/ranking_data.h"

#include "adrec/data/dataset_io.h"

namespace adrec::data {

StatusOr<RankingData> PrepareRankingData(FeatureSpec spec, const RankingDataOptions& o) {
  RankingData d;
  ADREC_ASSIGN_OR_RETURN(d.ds, ReadDataset(o.data));
  if (!o.split_dir.empty()) {
    ADREC_ASSIGN_OR_RETURN(d.split, ReadSplit(o.split_dir, d.ds));
  } else {
    ADREC_ASSIGN_OR_RETURN(d.split, MakeSplit(d.ds, o.split));
  }
  ADREC_RETURN_IF_ERROR(spec.Bind(d.ds));
  ADREC_ASSIGN_OR_RETURN(d.train, MakeSamples(d.ds, spec, &d.split, SplitPart::kTrain));
  ADREC_ASSIGN_OR_RETURN(d.valid, MakeSamples(d.ds, spec, &d.split, SplitPart::kValid));
  ADREC_ASSIGN_OR_RETURN(d.test, MakeSamples(d.ds, spec, &d.split, SplitPart::kTest));
  if (d.train.size() == 0) {
    return FailedPreconditionError(o.data.string() + ": the train part of split '" + d.split.method +
                                   "' has no samples (samples are events of action " +
                                   ActionMaskNames(spec.sample_actions) + ")");
  }
  // Normalisation statistics come from the train part, whichever parts are used.
  spec.FitNormalization(d.ds, d.train.events);
  d.spec = std::move(spec);
  return d;
}

}  // namespace adrec::data
