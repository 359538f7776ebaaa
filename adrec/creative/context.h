// The bandit's view of a viewer (bandit.h): a segment from a few user columns and the one-hot
// features of the user columns and the scene, read from the catalogue's user table.
#pragma once

#include <filesystem>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include "adrec/core/status.h"
#include "adrec/creative/bandit.h"
#include "adrec/data/dataset.h"

namespace adrec::creative {

// The user embedding of a ranking bundle (the table of its field with source "user"), one
// L2-normalised row per user of `catalogue`: [users × k] and k. InvalidArgument when the bundle
// has no user field or was trained on another dataset.
StatusOr<std::pair<std::vector<float>, uint32_t>> BundleUserVectors(const std::filesystem::path& bundle,
                                                                    const data::Dataset& catalogue);

struct ContextOptions {
  std::vector<std::string> segment_columns = {"age", "gender"};            // categorical user columns
  std::vector<std::string> feature_columns = {"age", "gender", "device"};  // LinUCB's, with the scene
};

class ContextEncoder {
 public:
  // InvalidArgument names a column the user table lacks or that is not categorical.
  static StatusOr<ContextEncoder> Create(const data::Dataset& catalogue, const ContextOptions& options);
  // An unknown user (nullopt) is the missing value of every column: segment and features exist.
  BanditContext Encode(std::optional<uint32_t> user, uint8_t scene) const;
  // LinUCB's context also takes each user's vector (row u of `vectors`, k floats each; zeros for
  // an unknown user): the user embedding of a ranker (BundleUserVectors). Grows dim() by k.
  // InvalidArgument when the rows do not match the catalogue's users.
  Status SetUserVectors(std::vector<float> vectors, uint32_t k);
  uint32_t dim() const { return dim_; }            // LinUCB's feature count, bias included
  uint32_t segments() const { return segments_; }  // distinct segment values

 private:
  struct Col {
    const data::Column* column;
    uint32_t size, offset;  // vocabulary size; first feature index (features) or radix (segments)
  };
  std::vector<Col> segment_, feature_;
  std::vector<float> user_vectors_;
  uint32_t k_ = 0, users_ = 0;
  uint32_t dim_ = 1, segments_ = 1, scene_offset_ = 0, scenes_ = 1;
};

}  // namespace adrec::creative
