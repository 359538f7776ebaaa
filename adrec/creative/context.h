// The bandit's view of a viewer (bandit.h): a segment from a few user columns and the one-hot
// features of the user columns and the scene, read from the catalogue's user table.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "adrec/core/status.h"
#include "adrec/creative/bandit.h"
#include "adrec/data/dataset.h"

namespace adrec::creative {

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
  uint32_t dim() const { return dim_; }            // LinUCB's feature count, bias included
  uint32_t segments() const { return segments_; }  // distinct segment values

 private:
  struct Col {
    const data::Column* column;
    uint32_t size, offset;  // vocabulary size; first feature index (features) or radix (segments)
  };
  std::vector<Col> segment_, feature_;
  uint32_t dim_ = 1, segments_ = 1, scene_offset_ = 0, scenes_ = 1;
};

}  // namespace adrec::creative
