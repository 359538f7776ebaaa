// The two towers of a two-tower model run over the catalogue and over samples, as flat float
// arrays: what the retrieval index, the in-training retrieval evaluation and `adrec index` read.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "adrec/data/features.h"
#include "adrec/models/two_tower.h"
#include "adrec/train/ranking_model.h"

namespace adrec::train {

// The item tower's target-t slice for every item of the catalogue: [num_items × dim], row =
// dense item ID. No gradients; the model is left in eval mode. `l2_normalize`: unit rows (a
// model trained on cosine similarities).
std::vector<float> CatalogueVectors(RankingModel& m, models::TwoTowerModel& towers, const data::Dataset& ds, int t,
                                    size_t batch_size, bool l2_normalize);
// The query tower's target-t slice for samples.events[order]: [order.size() × dim].
std::vector<float> QueryTowerVectors(RankingModel& m, models::TwoTowerModel& towers, const data::Dataset& ds,
                                     const data::SampleSet& samples, std::span<const uint64_t> order, int t,
                                     size_t batch_size, bool l2_normalize);

// Indices [0, n) when n <= max, else a seeded sample of max of them, ascending: the queries
// a retrieval evaluation ranks.
std::vector<uint64_t> SeededSubset(size_t n, size_t max, uint64_t seed);

// Whether a bundle's towers compare by cosine (manifest "retrieval"."l2_normalize").
bool RetrievalNormalizes(const nlohmann::json& manifest);

}  // namespace adrec::train
