#include "adrec/serve/pipeline/service.h"

#include <sys/stat.h>

#include <charconv>
#include <optional>

#include <nlohmann/json.hpp>

#include "adrec/core/file.h"
#include "adrec/data/pseudonymise.h"

namespace adrec::serve {
using nlohmann::ordered_json;

namespace {

HttpResponse Json(int status, const ordered_json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump();
  return r;
}

// A failed Status as the HTTP error a client can act on.
HttpResponse FromStatus(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument: return JsonError(400, "invalid_argument", s.message());
    case StatusCode::kNotFound: return JsonError(404, "not_found", s.message());
    case StatusCode::kCancelled: return JsonError(503, "unavailable", s.message());
    default: return JsonError(500, "internal", s.ToString());
  }
}

// Constant-time comparison: how long a wrong token takes to refuse says nothing about it.
bool SameToken(std::string_view a, std::string_view b) {
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(i < b.size() ? b[i] : 0);
  return diff == 0;
}

// %XX escapes of a path segment or query value decoded ('+' stays: it is a space only in forms).
// Nullopt for a malformed escape.
std::optional<std::string> PercentDecoded(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    unsigned v = 0;
    if (i + 2 >= in.size() || std::from_chars(in.data() + i + 1, in.data() + i + 3, v, 16).ptr != in.data() + i + 3) {
      return std::nullopt;
    }
    out.push_back(static_cast<char>(v));
    i += 2;
  }
  return out;
}

std::string QueryValue(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key) return std::string(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return "";
}

}  // namespace

StatusOr<std::string> ReadAdminToken(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return NotFoundError("the admin token file " + path + " does not exist");
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    return FailedPreconditionError("the admin token file " + path + " is readable by others (mode " +
                                   std::to_string(st.st_mode & 0777) + " octal " + [&] {
                                     char b[8];
                                     std::snprintf(b, sizeof(b), "%o", st.st_mode & 0777);
                                     return std::string(b);
                                   }() + "); chmod 600 it");
  }
  ADREC_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  const size_t b = text.find_first_not_of(" \t\r\n");
  const size_t e = text.find_last_not_of(" \t\r\n");
  if (b == std::string::npos) return InvalidArgumentError("the admin token file " + path + " is empty");
  return text.substr(b, e - b + 1);
}

Service::Service(Recommender* recommender, EventStore* store, ServiceOptions options)
    : recommender_(recommender), store_(store), options_(std::move(options)) {}

std::shared_ptr<Router> Service::MakeRouter() {
  auto router = std::make_shared<Router>();
  router->Add("POST", "/v1/recommend", [this](const HttpRequest& r) { return Recommend(r); });
  router->Add("POST", "/v1/events", [this](const HttpRequest& r) { return Events(r); });
  router->Add("GET", "/v1/users/{id}", [this](const HttpRequest& r) { return User(r); });
  router->Add("GET", "/v1/models", [this](const HttpRequest&) { return Json(200, recommender_->Models()); });
  router->Add("GET", "/healthz", [](const HttpRequest&) { return Json(200, {{"status", "ok"}}); });
  router->Add("GET", "/readyz", [this](const HttpRequest&) {
    if (draining_) return JsonError(503, "draining", "the server is stopping");
    return Json(200, {{"status", "ready"}, {"model_version", recommender_->version()}});
  });
  router->Add("GET", "/metrics", [this](const HttpRequest&) { return MetricsText(); });
  router->Add("POST", "/admin/reload", [this](const HttpRequest& r) { return Reload(r); });
  return router;
}

HttpResponse Service::Recommend(const HttpRequest& req) {
  auto parsed = ParseRecommendRequest(req.body, options_.limits);
  if (!parsed.ok()) return FromStatus(parsed.status());
  if (options_.user_key) parsed->user_id = data::UserPseudonym(*options_.user_key, parsed->user_id);
  auto rec = recommender_->Recommend(*parsed);
  if (!rec.ok()) return FromStatus(rec.status());
  ordered_json items = ordered_json::array();
  for (const RecommendedItem& it : rec->items) {
    items.push_back({{"item_id", it.item_id}, {"creative_id", it.creative_id}, {"score", it.score},
                     {"pctr", it.pctr}, {"pcvr", it.pcvr}, {"ecpm", it.ecpm}});
    if (!it.creative_title.empty()) items.back()["creative_title"] = it.creative_title;
    if (!it.reasons.empty()) {
      ordered_json reasons = ordered_json::array();
      for (const auto& [feature, value] : it.reasons) reasons.push_back({{"feature", feature}, {"attribution", value}});
      items.back()["reasons"] = reasons;
    }
  }
  return Json(200, {{"items", items},
                    {"model_version", rec->model_version},
                    {"known_user", rec->known_user},
                    {"retrieved", rec->retrieved},
                    {"ranked", rec->ranked}});
}

HttpResponse Service::Events(const HttpRequest& req) {
  auto parsed = ParseEventsRequest(req.body, options_.limits);
  if (!parsed.ok()) return FromStatus(parsed.status());
  if (options_.user_key) {
    for (EventIn& e : *parsed) e.user_id = data::UserPseudonym(*options_.user_key, e.user_id);
  }
  auto accepted = recommender_->Ingest(*parsed);
  if (!accepted.ok()) return FromStatus(accepted.status());
  metrics_.Add("adrec_events_accepted_total", "counter", "Events stored by this process (duplicates excluded).",
               static_cast<double>(*accepted));
  metrics_.Add("adrec_events_duplicate_total", "counter", "Events answered as duplicates of a stored event ID.",
               static_cast<double>(parsed->size() - *accepted));
  return Json(200, {{"accepted", *accepted}, {"duplicates", parsed->size() - *accepted}});
}

HttpResponse Service::User(const HttpRequest& req) {
  const std::optional<std::string> decoded = PercentDecoded(req.params.at("id"));
  if (!decoded) return JsonError(400, "invalid_argument", "id: a malformed %-escape in '" + req.params.at("id") + "'");
  const std::string id = options_.user_key ? data::UserPseudonym(*options_.user_key, *decoded) : *decoded;
  size_t limit = 50;
  if (const std::string l = QueryValue(req.query, "limit"); !l.empty()) {
    const auto [end, ec] = std::from_chars(l.data(), l.data() + l.size(), limit);
    if (ec != std::errc() || end != l.data() + l.size() || limit == 0 || limit > options_.max_user_events) {
      return JsonError(400, "invalid_argument",
                       "limit: expected an integer in 1.." + std::to_string(options_.max_user_events) + ", got '" + l + "'");
    }
  }
  if (decoded->size() > options_.limits.max_id_bytes) {
    return JsonError(400, "invalid_argument", "id: longer than " + std::to_string(options_.limits.max_id_bytes) + " bytes");
  }
  auto user = recommender_->User(id, limit);
  if (!user.ok()) return FromStatus(user.status());
  return Json(200, *user);
}

HttpResponse Service::Reload(const HttpRequest& req) {
  if (options_.admin_token.empty()) {
    return JsonError(403, "forbidden", "admin routes are disabled: start the server with --admin-token-file");
  }
  const std::string auth = req.Header("authorization");
  if (auth.empty()) {
    HttpResponse r = JsonError(401, "unauthorized", "send 'Authorization: Bearer <token>'");
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return r;
  }
  constexpr std::string_view kBearer = "Bearer ";
  if (!auth.starts_with(kBearer) || !SameToken(std::string_view(auth).substr(kBearer.size()), options_.admin_token)) {
    return JsonError(403, "forbidden", "the bearer token is wrong");
  }
  const std::string before = recommender_->version();
  if (Status s = recommender_->Reload(); !s.ok()) {
    return JsonError(500, "reload_failed", "the models stay as they were (" + before + "): " + s.ToString());
  }
  metrics_.Add("adrec_reloads_total", "counter", "Model reloads that swapped in new bundles.", 1);
  return Json(200, {{"previous_version", before}, {"model_version", recommender_->version()}});
}

HttpResponse Service::MetricsText() {
  metrics_.Set("adrec_queue_depth", "gauge", "Recommend requests waiting for the ranking thread.",
               static_cast<double>(recommender_->queue_depth()));
  metrics_.Set("adrec_rank_batches_total", "counter", "Forward passes of the ranker (requests are batched into them).",
               static_cast<double>(recommender_->batches()));
  for (const auto& [stage, h] : recommender_->StageLatency()) {
    metrics_.SetHistogram("adrec_stage_seconds",
                          "Time in each stage of the recommend pipeline: per request (state, queue) or per batch "
                          "(query, search, features, rank, rerank).",
                          "stage=\"" + stage + "\"", h);
  }
  metrics_.Clear("adrec_model_info");
  metrics_.Set("adrec_model_info{version=\"" + PrometheusLabel(recommender_->version()) + "\"}", "gauge",
               "The model version being served (value 1).", 1);
  if (auto n = store_->Count(); n.ok()) {
    metrics_.Set("adrec_events_stored", "gauge", "Events in the state store (every process sharing it).", static_cast<double>(*n));
  }
  HttpResponse r;
  r.body = metrics_.Render();
  r.content_type = "text/plain; version=0.0.4";
  return r;
}

}  // namespace adrec::serve
