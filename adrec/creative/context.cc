#include "adrec/creative/context.h"

#include <algorithm>

namespace adrec::creative {

StatusOr<ContextEncoder> ContextEncoder::Create(const data::Dataset& catalogue, const ContextOptions& options) {
  ContextEncoder e;
  auto column = [&](const std::string& name) -> StatusOr<const data::Column*> {
    const data::Column* c = catalogue.user_table.Find(name);
    if (!c) return InvalidArgumentError("the catalogue has no user column '" + name + "' for the creative bandit's context");
    if (c->type != data::ColumnType::kCategorical || !c->vocab) {
      return InvalidArgumentError("user column '" + name + "' is not categorical: the bandit's context needs categories");
    }
    return c;
  };
  for (const std::string& name : options.segment_columns) {
    ADREC_ASSIGN_OR_RETURN(const data::Column* c, column(name));
    const uint32_t n = std::max<uint32_t>(c->vocab->size(), 1);
    e.segment_.push_back({c, n, e.segments_});
    e.segments_ *= n;
  }
  for (const std::string& name : options.feature_columns) {
    ADREC_ASSIGN_OR_RETURN(const data::Column* c, column(name));
    const uint32_t n = std::max<uint32_t>(c->vocab->size(), 1);
    e.feature_.push_back({c, n, e.dim_});
    e.dim_ += n;
  }
  e.users_ = catalogue.users.size();
  e.scenes_ = std::max<uint32_t>(static_cast<uint32_t>(catalogue.scenes.size()), 1);
  e.scene_offset_ = e.dim_;
  e.dim_ += e.scenes_;
  return e;
}

BanditContext ContextEncoder::Encode(std::optional<uint32_t> user, uint8_t scene) const {
  BanditContext ctx;
  auto code = [&](const Col& c) -> uint32_t {
    if (!user || *user >= c.column->u32.size()) return 0;
    return std::min(c.column->u32[*user], c.size - 1);
  };
  for (const Col& c : segment_) ctx.segment += code(c) * c.offset;
  ctx.features.reserve(feature_.size() + 2);
  ctx.features.push_back(0);
  for (const Col& c : feature_) ctx.features.push_back(c.offset + code(c));
  ctx.features.push_back(scene_offset_ + std::min<uint32_t>(scene, scenes_ - 1));
  if (k_ > 0) {
    ctx.dense.assign(k_, 0.f);
    if (user && *user < users_) std::copy_n(user_vectors_.begin() + static_cast<ptrdiff_t>(*user) * k_, k_, ctx.dense.begin());
  }
  return ctx;
}

Status ContextEncoder::SetUserVectors(std::vector<float> vectors, uint32_t k) {
  if (k == 0 || vectors.size() != static_cast<size_t>(users_) * k) {
    return InvalidArgumentError("user vectors: " + std::to_string(vectors.size()) + " floats for " + std::to_string(users_) +
                                " users of width " + std::to_string(k));
  }
  dim_ += k - k_;
  k_ = k;
  user_vectors_ = std::move(vectors);
  return Status::Ok();
}

}  // namespace adrec::creative
