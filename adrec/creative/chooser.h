// The server's creative choice (adrec serve --creatives): each answered ad with variants gets one
// picked by the bandit for this viewer, and the impressions and clicks that come back with the
// variant's `creative_id` teach it. Thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "adrec/core/status.h"
#include "adrec/creative/bandit.h"
#include "adrec/creative/context.h"
#include "adrec/creative/variants.h"
#include "adrec/data/dataset.h"

namespace adrec::creative {

class CreativeChooser {
 public:
  // Keeps its own copy of the catalogue's user table and scenes (the context). InvalidArgument
  // names a variant of an ad the catalogue does not have, or an unknown policy.
  // `user_vectors` (BundleUserVectors), when given, join LinUCB's context.
  static StatusOr<std::unique_ptr<CreativeChooser>> Create(const data::Dataset& catalogue,
                                                           std::vector<CreativeVariant> variants, std::string_view policy,
                                                           BanditOptions bandit = {}, const ContextOptions& context = {},
                                                           std::pair<std::vector<float>, uint32_t> user_vectors = {});
  // The variant to show for the ad, or nullptr when it has none. `pctr`: the ranker's estimate.
  const CreativeVariant* Choose(std::string_view ad_id, std::optional<uint32_t> user, uint8_t scene, double pctr);
  // An event that names a variant: an impression counts a trial, a click turns it into a success.
  // False for a creative ID it does not know (the event is still stored; nothing is learned).
  bool Feedback(std::string_view creative_id, std::optional<uint32_t> user, uint8_t scene, bool click);
  nlohmann::ordered_json Stats() const;

 private:
  CreativeChooser() = default;
  data::Dataset context_data_;  // the users, their table and the scenes the encoder reads
  std::optional<ContextEncoder> encoder_;
  std::vector<CreativeVariant> variants_;
  std::unordered_map<std::string, std::vector<uint32_t>> by_ad_;
  std::unordered_map<std::string, uint32_t> by_id_;
  mutable std::mutex mu_;
  std::unique_ptr<CreativePolicy> policy_;
  uint64_t impressions_ = 0, clicks_ = 0, unknown_ = 0;
};

}  // namespace adrec::creative
