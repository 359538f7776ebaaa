// The JSON bodies of the serving API (docs/API.md), parsed into typed requests. Every error
// names the field ("events[3].ts: expected an integer number of seconds, got a string"), so a
// client learns what to fix from a 400 alone. Torch- and Beast-free: fuzzed on its own.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adrec/core/status.h"
#include "adrec/data/dataset.h"

namespace adrec::serve {

struct ApiLimits {
  size_t max_id_bytes = 256;        // user, item and event IDs
  int max_k = 1000;                 // items one recommend may ask for
  size_t max_events = 1000;         // events per POST /v1/events
  size_t max_context_fields = 32;
};

// POST /v1/recommend {"user_id": "u1", "context": {"scene": "feed", …}, "k": 10}
struct RecommendRequest {
  std::string user_id;
  // Context fields by name; values are strings ("scene": "feed") or integers kept as their
  // decimal text ("hour": 13), read by the feature sources of the same name.
  std::map<std::string, std::string> context;
  int k = 10;
  // Each answer carries its top reasons: integrated gradients of its pCTR's logit per feature.
  bool explain = false;
};
StatusOr<RecommendRequest> ParseRecommendRequest(std::string_view body, const ApiLimits& limits = {});

// One event of POST /v1/events {"events": [{"event_id", "user_id", "item_id", "action", "ts",
// "scene", "value"}]}: scene and value are optional.
struct EventIn {
  std::string event_id;
  std::string user_id;
  std::string item_id;
  data::Action action = data::Action::kImpression;
  uint32_t ts = 0;  // unix seconds (the dataset's time column is u32)
  std::string scene;
  float value = 0.f;
  uint8_t position = 0;  // the ad's 0-based place in the list shown (optional; 0 when absent)
  std::string creative_id;  // the creative the answer named (optional): its bandit learns from it
};
StatusOr<std::vector<EventIn>> ParseEventsRequest(std::string_view body, const ApiLimits& limits = {});

}  // namespace adrec::serve
