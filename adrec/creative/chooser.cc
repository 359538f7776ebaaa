#include "adrec/creative/chooser.h"

namespace adrec::creative {

StatusOr<std::unique_ptr<CreativeChooser>> CreativeChooser::Create(const data::Dataset& catalogue,
                                                                   std::vector<CreativeVariant> variants,
                                                                   std::string_view policy, BanditOptions bandit,
                                                                   const ContextOptions& context,
                                                                   std::pair<std::vector<float>, uint32_t> user_vectors) {
  std::unique_ptr<CreativeChooser> c(new CreativeChooser());
  c->context_data_.users = catalogue.users;
  c->context_data_.user_table = catalogue.user_table;
  c->context_data_.scenes = catalogue.scenes;
  ADREC_ASSIGN_OR_RETURN(ContextEncoder encoder, ContextEncoder::Create(c->context_data_, context));
  if (user_vectors.second > 0) ADREC_RETURN_IF_ERROR(encoder.SetUserVectors(std::move(user_vectors.first), user_vectors.second));
  c->encoder_.emplace(std::move(encoder));
  bandit.dim = c->encoder_->dim();
  ADREC_ASSIGN_OR_RETURN(c->policy_, MakeCreativePolicy(policy, bandit));
  for (uint32_t i = 0; i < variants.size(); ++i) {
    const CreativeVariant& v = variants[i];
    if (!catalogue.items.Find(v.ad_id)) {
      return InvalidArgumentError("creative variant '" + v.id + "' is of ad '" + v.ad_id + "', which the catalogue does not have");
    }
    if (!c->by_id_.emplace(v.id, i).second) return InvalidArgumentError("creative variant id '" + v.id + "' appears twice");
    c->by_ad_[v.ad_id].push_back(i);
  }
  c->variants_ = std::move(variants);
  return c;
}

const CreativeVariant* CreativeChooser::Choose(std::string_view ad_id, std::optional<uint32_t> user, uint8_t scene,
                                               double pctr) {
  auto it = by_ad_.find(std::string(ad_id));
  if (it == by_ad_.end()) return nullptr;
  const BanditContext ctx = encoder_->Encode(user, scene);
  std::lock_guard lock(mu_);
  return &variants_[policy_->Choose(it->second, ctx, pctr)];
}

bool CreativeChooser::Feedback(std::string_view creative_id, std::optional<uint32_t> user, uint8_t scene, bool click) {
  auto it = by_id_.find(std::string(creative_id));
  std::lock_guard lock(mu_);
  if (it == by_id_.end()) {
    ++unknown_;
    return false;
  }
  const BanditContext ctx = encoder_->Encode(user, scene);
  if (click) {
    policy_->Click(it->second, ctx);
    ++clicks_;
  } else {
    policy_->Update(it->second, ctx, 0.0);
    ++impressions_;
  }
  return true;
}

nlohmann::ordered_json CreativeChooser::Stats() const {
  std::lock_guard lock(mu_);
  return {{"policy", policy_->name()}, {"context_dim", encoder_->dim()}, {"variants", variants_.size()}, {"ads", by_ad_.size()},
          {"impressions", impressions_}, {"clicks", clicks_}, {"unknown_creative_events", unknown_}};
}

}  // namespace adrec::creative
