// The features of a served request, read by the very code that read them in training
// (data::BuildBatch). A request becomes a slice of events in a scratch copy of the catalogue
// dataset: the user's stored history (oldest first), then one row per candidate at the request's
// time and scene. A candidate row carries an action no ActionMask has a bit for, so no sequence
// field and no "recent.<action>" counter ever reads one candidate as history of another, exactly
// as an impression not yet shown.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "adrec/core/status.h"
#include "adrec/data/batch.h"
#include "adrec/data/dataset.h"
#include "adrec/data/feature_spec.h"
#include "adrec/data/samples.h"
#include "adrec/serve/event_store.h"

namespace adrec::serve {

// The action of a candidate row: one past every real action, so no history mask matches it.
inline constexpr uint8_t kCandidateAction = data::kNumActions;

// One event of a user's history as the features read it (dense item ID, the catalogue's scene).
struct HistoryEvent {
  uint32_t item = 0;
  uint32_t time = 0;
  uint8_t scene = 0;
  data::Action action = data::Action::kImpression;
  float value = 0.f;
};

// One request's rows: its user (nullopt = a user the catalogue does not know, the cold-start
// path), history oldest first, candidates (dense item IDs) and context.
struct RequestRows {
  std::optional<uint32_t> user;
  std::vector<HistoryEvent> history;
  std::vector<uint32_t> candidates;
  uint32_t time = 0;  // unix seconds: hour and weekday fields read it
  uint8_t scene = 0;
  uint8_t position = 0;
};

// The catalogue's code of a scene name; an unknown scene reads as the first (the default).
uint8_t SceneCode(const data::Dataset& catalogue, std::string_view name);

// A user's events as the features read them, oldest first: the newest of the base log (the
// dataset the bundle was trained on: `base` with per-user `base_offsets`; none for an unknown
// user), then the stored ones, time-sorted (ties keep the log's order, then arrival) and cut to
// the newest `limit`. Only events before `before` (unix seconds) count: the state a request at
// that moment saw. Items the catalogue does not know are left out.
std::vector<HistoryEvent> UserHistory(const data::Dataset& catalogue, const data::EventColumns& base,
                                      std::span<const uint64_t> base_offsets, std::optional<uint32_t> user,
                                      const UserState& state, size_t limit, uint32_t before = UINT32_MAX);

struct RequestFeaturesOptions {
  // Requests one Layout may hold; each gets its own user slot when its user is unknown.
  size_t max_requests = 256;
};

class RequestFeatures {
 public:
  // Takes the catalogue: vocabularies, user and item tables, scenes and taxonomy of `catalogue`
  // (its events are dropped). One instance serves every model over that catalogue.
  static StatusOr<RequestFeatures> Create(data::Dataset catalogue, const RequestFeaturesOptions& options = {});
  // InvalidArgument naming the field when a spec reads what a request cannot carry (per-event
  // columns: Criteo-style features can be evaluated offline, not served).
  static Status CheckServable(const data::FeatureSpec& spec);

  // Lays the requests out in the scratch dataset: the candidate rows (request 0's first) become
  // the samples of the next Samples/Build calls. InvalidArgument for more requests than
  // max_requests, a user twice, an unknown item or user ID. Not thread-safe: one caller at a
  // time (the server's batching thread).
  Status Layout(std::span<const RequestRows> requests);
  // The laid-out candidate rows as samples of `spec` (unlabelled), whose sequence fields without
  // their own history_actions read `history_actions` (the bundle's split positives).
  const data::SampleSet& Samples(const data::FeatureSpec& spec, data::ActionMask history_actions);
  // BuildBatch of every laid-out candidate row, in order.
  void Build(const data::FeatureSpec& spec, data::ActionMask history_actions, data::Batch* out);
  // Layout, then Build.
  Status Build(std::span<const RequestRows> requests, const data::FeatureSpec& spec, data::ActionMask history_actions,
               data::Batch* out);

  const data::Dataset& dataset() const { return scratch_; }
  // Users the catalogue knows; an unknown user's dense ID in the scratch dataset is at or past it
  // (its fixed-table embedding is row 0, the unknown row, as for an ID unseen in training).
  uint32_t known_users() const { return known_users_; }
  size_t candidate_rows() const { return samples_.events.size(); }

 private:
  RequestFeatures() = default;
  data::Dataset scratch_;
  data::SampleSet samples_;
  std::vector<uint64_t> order_;
  uint32_t known_users_ = 0;
  size_t max_requests_ = 0;
};

}  // namespace adrec::serve
