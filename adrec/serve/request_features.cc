#include "adrec/serve/request_features.h"

#include <algorithm>
#include <numeric>
#include <string>
#include <utility>

namespace adrec::serve {

uint8_t SceneCode(const data::Dataset& catalogue, std::string_view name) {
  for (size_t s = 0; s < catalogue.scenes.size(); ++s) {
    if (catalogue.scenes[s] == name) return static_cast<uint8_t>(s);
  }
  return 0;
}

std::vector<HistoryEvent> UserHistory(const data::Dataset& catalogue, const data::EventColumns& base,
                                      std::span<const uint64_t> base_offsets, std::optional<uint32_t> user,
                                      const UserState& state, size_t limit, uint32_t before) {
  std::vector<HistoryEvent> h;
  if (user && *user + 1 < base_offsets.size()) {
    const uint64_t b = base_offsets[*user], e = base_offsets[*user + 1];
    uint64_t from = e - std::min<uint64_t>(e - b, limit);
    for (uint64_t j = from; j < e; ++j) {
      if (base.time[j] >= before) continue;
      h.push_back({base.item[j], base.time[j], base.scene[j], static_cast<data::Action>(base.action[j]), base.value[j]});
    }
  }
  for (auto it = state.recent.rbegin(); it != state.recent.rend(); ++it) {
    if (it->ts >= before) continue;
    auto item = catalogue.items.Find(it->item_id);
    if (!item) continue;
    h.push_back({*item, it->ts, SceneCode(catalogue, it->scene), it->action, it->value});
  }
  // Stored events arrive in any order, and may predate the log's last ones: the features read a
  // time-sorted slice, as in training.
  std::stable_sort(h.begin(), h.end(), [](const HistoryEvent& a, const HistoryEvent& b) { return a.time < b.time; });
  if (h.size() > limit) h.erase(h.begin(), h.end() - static_cast<ptrdiff_t>(limit));
  return h;
}

Status RequestFeatures::CheckServable(const data::FeatureSpec& spec) {
  for (const data::FieldSpec& f : spec.fields) {
    if (std::string_view(f.source).starts_with("event.")) {
      return InvalidArgumentError("feature field '" + f.name + "' reads the per-event column '" + f.source +
                                  "', which a served request does not carry; such a model can be evaluated "
                                  "offline but not served");
    }
  }
  return Status::Ok();
}

StatusOr<RequestFeatures> RequestFeatures::Create(data::Dataset catalogue, const RequestFeaturesOptions& options) {
  if (options.max_requests == 0) return InvalidArgumentError("RequestFeatures: max_requests must be positive");
  RequestFeatures r;
  r.max_requests_ = options.max_requests;
  r.known_users_ = catalogue.num_users();
  r.scratch_ = std::move(catalogue);
  data::Dataset& ds = r.scratch_;
  ds.events = data::EventColumns{};
  ds.event_table = data::Table{};
  // One slot per request for unknown users, after the known ones: user-column fields read their
  // padded (missing) rows there. The vocabulary stays as trained, so fixed tables see an unknown ID.
  data::PadTable(ds.user_table, size_t{r.known_users_} + options.max_requests);
  ds.user_offsets.assign(size_t{r.known_users_} + options.max_requests + 1, 0);
  return r;
}

Status RequestFeatures::Layout(std::span<const RequestRows> requests) {
  if (requests.size() > max_requests_) {
    return InvalidArgumentError("RequestFeatures: " + std::to_string(requests.size()) + " requests in one batch, at most " +
                                std::to_string(max_requests_));
  }
  data::Dataset& ds = scratch_;
  const uint32_t items = ds.num_items();
  // Dense user of each request; unknown users take the slots after the known ones.
  std::vector<uint32_t> user(requests.size());
  uint32_t next_slot = known_users_;
  for (size_t r = 0; r < requests.size(); ++r) {
    const RequestRows& q = requests[r];
    if (q.user && *q.user >= known_users_) {
      return InvalidArgumentError("RequestFeatures: user " + std::to_string(*q.user) + " is not in the catalogue (" +
                                  std::to_string(known_users_) + " users)");
    }
    user[r] = q.user ? *q.user : next_slot++;
    for (uint32_t item : q.candidates) {
      if (item >= items) return InvalidArgumentError("RequestFeatures: candidate item " + std::to_string(item) + " is not in the catalogue");
    }
    for (const HistoryEvent& h : q.history) {
      if (h.item >= items) return InvalidArgumentError("RequestFeatures: history item " + std::to_string(h.item) + " is not in the catalogue");
    }
  }
  // The slices must lie in ascending user order so that offsets[u + 1] ends u's slice whether or
  // not u + 1 is in the batch; requests of one user share a slice only when they are identical
  // in history, so each request gets its own slice and repeated users are rejected.
  std::vector<size_t> by_user(requests.size());
  std::iota(by_user.begin(), by_user.end(), size_t{0});
  std::sort(by_user.begin(), by_user.end(), [&](size_t a, size_t b) { return user[a] < user[b]; });
  for (size_t i = 1; i < by_user.size(); ++i) {
    if (user[by_user[i]] == user[by_user[i - 1]]) {
      return InvalidArgumentError("RequestFeatures: user " + std::to_string(user[by_user[i]]) +
                                  " appears twice in one batch; give each request of a user its own batch");
    }
  }
  data::EventColumns& ev = ds.events;
  size_t total = 0;
  for (const RequestRows& q : requests) total += q.history.size() + q.candidates.size();
  ev = data::EventColumns{};
  ev.Reserve(total, /*with_truth=*/false);
  std::vector<uint64_t> first_candidate(requests.size());
  for (size_t r : by_user) {
    const RequestRows& q = requests[r];
    const uint32_t u = user[r];
    ds.user_offsets[u] = ev.size();
    for (const HistoryEvent& h : q.history) {
      ev.user.push_back(u);
      ev.item.push_back(h.item);
      ev.time.push_back(std::min(h.time, q.time));  // a history event never postdates the request
      ev.scene.push_back(h.scene);
      ev.position.push_back(0);
      ev.action.push_back(static_cast<uint8_t>(h.action));
      ev.value.push_back(h.value);
    }
    first_candidate[r] = ev.size();
    for (uint32_t item : q.candidates) {
      ev.user.push_back(u);
      ev.item.push_back(item);
      ev.time.push_back(q.time);
      ev.scene.push_back(q.scene);
      ev.position.push_back(q.position);
      ev.action.push_back(kCandidateAction);
      ev.value.push_back(0.f);
    }
    ds.user_offsets[u + 1] = ev.size();
  }
  samples_.events.clear();
  for (size_t r = 0; r < requests.size(); ++r) {
    for (size_t c = 0; c < requests[r].candidates.size(); ++c) samples_.events.push_back(first_candidate[r] + c);
  }
  return Status::Ok();
}

const data::SampleSet& RequestFeatures::Samples(const data::FeatureSpec& spec, data::ActionMask history_actions) {
  const size_t targets = spec.targets.size();
  samples_.labels.assign(samples_.events.size() * targets, 0.f);
  samples_.mask.assign(samples_.events.size() * targets, 0.f);
  samples_.history_actions = history_actions;
  return samples_;
}

void RequestFeatures::Build(const data::FeatureSpec& spec, data::ActionMask history_actions, data::Batch* out) {
  const data::SampleSet& samples = Samples(spec, history_actions);
  order_.resize(samples.size());
  std::iota(order_.begin(), order_.end(), uint64_t{0});
  data::BuildBatch(scratch_, spec, samples, order_, out);
}

Status RequestFeatures::Build(std::span<const RequestRows> requests, const data::FeatureSpec& spec,
                              data::ActionMask history_actions, data::Batch* out) {
  ADREC_RETURN_IF_ERROR(Layout(requests));
  Build(spec, history_actions, out);
  return Status::Ok();
}

}  // namespace adrec::serve
