// Summary statistics of a dataset: what `adrec stats` prints.
#pragma once

#include <nlohmann/json.hpp>

#include "adrec/data/dataset.h"

namespace adrec::data {

// Top-level keys: users, items, events; then events_per_action, events_per_scene,
// ctr_per_scene (clicks / impressions, scenes with impressions only), sequence_length
// percentiles (events per user), sparsity (1 - distinct user-item pairs / (users × items)),
// time_range (unix seconds and ISO 8601), items_with_text, taxonomy_nodes, malformed_rows.
nlohmann::ordered_json ComputeStats(const Dataset& ds);

}  // namespace adrec::data
