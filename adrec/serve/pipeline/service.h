// The routes of `adrec serve` (docs/API.md, docs/openapi.yaml): the recommend pipeline, event
// ingestion, user state, models, health, metrics and the admin reload, behind one Router.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "adrec/core/crypto.h"
#include "adrec/serve/api.h"
#include "adrec/serve/event_store.h"
#include "adrec/serve/http_server.h"
#include "adrec/serve/metrics.h"
#include "adrec/serve/pipeline/recommender.h"

namespace adrec::serve {

struct ServiceOptions {
  // The bearer token of /admin/*; empty: the admin routes answer 403 (none configured).
  std::string admin_token;
  ApiLimits limits;
  size_t max_user_events = 200;  // GET /v1/users/{id}?limit= at most this
  // The dataset's user IDs are pseudonyms (`adrec import --pseudonymise-users`): the raw IDs
  // requests and events carry are hashed with this key at the door, so the state, the event
  // log and the learner only ever see pseudonyms.
  std::optional<SecretKey> user_key;
};

class Service {
 public:
  Service(Recommender* recommender, EventStore* store, ServiceOptions options);
  // Every route; the router outlives neither this service nor the recommender.
  std::shared_ptr<Router> MakeRouter();
  Metrics& metrics() { return metrics_; }
  // /readyz answers 503 from here on (a stopping server drains behind its load balancer).
  void SetDraining() { draining_ = true; }

 private:
  HttpResponse Recommend(const HttpRequest& req);
  HttpResponse Events(const HttpRequest& req);
  HttpResponse User(const HttpRequest& req);
  HttpResponse Reload(const HttpRequest& req);
  HttpResponse MetricsText();

  Recommender* recommender_;
  EventStore* store_;
  ServiceOptions options_;
  Metrics metrics_;
  std::atomic<bool> draining_{false};
};

// Reads an admin token file: one line, surrounding whitespace dropped. InvalidArgument when it
// is empty, FailedPrecondition when others can read it (a token must stay secret).
StatusOr<std::string> ReadAdminToken(const std::string& path);

}  // namespace adrec::serve
