#include "adrec/serve/api.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "adrec/core/text.h"

namespace adrec::serve {
namespace {

using nlohmann::json;

std::string TypeName(const json& v) {
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

Status FieldError(const std::string& field, const std::string& message) {
  return InvalidArgumentError(field + ": " + message);
}

StatusOr<json> ParseObject(std::string_view body) {
  if (body.empty()) return InvalidArgumentError("the request body is empty; expected a JSON object");
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgumentError("the request body is not valid JSON");
  if (!j.is_object()) return InvalidArgumentError("the request body is " + TypeName(j) + "; expected a JSON object");
  return j;
}

// Keys of `j` outside `known` are errors: a misspelt optional field would otherwise be ignored.
Status CheckKeys(const json& j, std::initializer_list<std::string_view> known, const std::string& where) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool ok = false;
    for (std::string_view k : known) ok = ok || it.key() == k;
    if (!ok) {
      std::string list;
      for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return FieldError(where + (where.empty() ? "" : ".") + it.key(), "unknown field (expected " + list + ")");
    }
  }
  return Status::Ok();
}

StatusOr<std::string> IdField(const json& j, const char* key, const std::string& where, size_t max_bytes,
                              bool required = true) {
  const std::string field = where.empty() ? key : where + "." + key;
  const auto it = j.find(key);
  if (it == j.end()) {
    if (required) return FieldError(field, "missing");
    return std::string();
  }
  if (!it->is_string()) return FieldError(field, "expected a string, got " + TypeName(*it));
  const std::string& s = it->get_ref<const std::string&>();
  if (s.empty()) return FieldError(field, "empty");
  if (s.size() > max_bytes) {
    return FieldError(field, std::to_string(s.size()) + " bytes; at most " + std::to_string(max_bytes));
  }
  if (const size_t bad = FindInvalidUtf8(s); bad != std::string::npos) {
    return FieldError(field, "invalid UTF-8 at byte " + std::to_string(bad));
  }
  return s;
}

}  // namespace

StatusOr<RecommendRequest> ParseRecommendRequest(std::string_view body, const ApiLimits& limits) {
  ADREC_ASSIGN_OR_RETURN(json j, ParseObject(body));
  ADREC_RETURN_IF_ERROR(CheckKeys(j, {"user_id", "context", "k", "explain"}, ""));
  RecommendRequest r;
  ADREC_ASSIGN_OR_RETURN(r.user_id, IdField(j, "user_id", "", limits.max_id_bytes));
  if (const auto k = j.find("k"); k != j.end()) {
    if (!k->is_number_integer() && !k->is_number_unsigned()) return FieldError("k", "expected an integer, got " + TypeName(*k));
    const int64_t v = k->get<int64_t>();
    if (v < 1 || v > limits.max_k) {
      return FieldError("k", std::to_string(v) + " is outside [1, " + std::to_string(limits.max_k) + "]");
    }
    r.k = static_cast<int>(v);
  }
  if (const auto e = j.find("explain"); e != j.end()) {
    if (!e->is_boolean()) return FieldError("explain", "expected true or false, got " + TypeName(*e));
    r.explain = e->get<bool>();
  }
  if (const auto c = j.find("context"); c != j.end()) {
    if (!c->is_object()) return FieldError("context", "expected an object, got " + TypeName(*c));
    if (c->size() > limits.max_context_fields) {
      return FieldError("context", std::to_string(c->size()) + " fields; at most " + std::to_string(limits.max_context_fields));
    }
    for (auto it = c->begin(); it != c->end(); ++it) {
      const std::string field = "context." + it.key();
      if (it->is_string()) {
        ADREC_ASSIGN_OR_RETURN(std::string v, IdField(*c, it.key().c_str(), "context", limits.max_id_bytes));
        r.context[it.key()] = std::move(v);
      } else if (it->is_number_integer() || it->is_number_unsigned()) {
        r.context[it.key()] = it->dump();
      } else {
        return FieldError(field, "expected a string or an integer, got " + TypeName(*it));
      }
    }
  }
  return r;
}

StatusOr<std::vector<EventIn>> ParseEventsRequest(std::string_view body, const ApiLimits& limits) {
  ADREC_ASSIGN_OR_RETURN(json j, ParseObject(body));
  ADREC_RETURN_IF_ERROR(CheckKeys(j, {"events"}, ""));
  const auto events = j.find("events");
  if (events == j.end()) return FieldError("events", "missing");
  if (!events->is_array()) return FieldError("events", "expected an array, got " + TypeName(*events));
  if (events->empty()) return FieldError("events", "empty; send at least one event");
  if (events->size() > limits.max_events) {
    return FieldError("events", std::to_string(events->size()) + " events; at most " + std::to_string(limits.max_events) +
                                    " per request");
  }
  std::vector<EventIn> out;
  out.reserve(events->size());
  for (size_t i = 0; i < events->size(); ++i) {
    const json& e = (*events)[i];
    const std::string where = "events[" + std::to_string(i) + "]";
    if (!e.is_object()) return FieldError(where, "expected an object, got " + TypeName(e));
    ADREC_RETURN_IF_ERROR(CheckKeys(e, {"event_id", "user_id", "item_id", "action", "ts", "scene", "value", "position", "creative_id"}, where));
    EventIn ev;
    ADREC_ASSIGN_OR_RETURN(ev.event_id, IdField(e, "event_id", where, limits.max_id_bytes));
    ADREC_ASSIGN_OR_RETURN(ev.user_id, IdField(e, "user_id", where, limits.max_id_bytes));
    ADREC_ASSIGN_OR_RETURN(ev.item_id, IdField(e, "item_id", where, limits.max_id_bytes));
    ADREC_ASSIGN_OR_RETURN(ev.scene, IdField(e, "scene", where, limits.max_id_bytes, /*required=*/false));
    ADREC_ASSIGN_OR_RETURN(ev.creative_id, IdField(e, "creative_id", where, limits.max_id_bytes, /*required=*/false));
    ADREC_ASSIGN_OR_RETURN(std::string action, IdField(e, "action", where, limits.max_id_bytes));
    auto a = data::ParseAction(action);
    if (!a.ok()) return FieldError(where + ".action", a.status().message());
    ev.action = *a;
    const auto ts = e.find("ts");
    if (ts == e.end()) return FieldError(where + ".ts", "missing");
    if (!ts->is_number_integer() && !ts->is_number_unsigned()) {
      return FieldError(where + ".ts", "expected an integer number of seconds, got " + TypeName(*ts));
    }
    const int64_t t = ts->is_number_unsigned() && ts->get<uint64_t>() > uint64_t{std::numeric_limits<int64_t>::max()}
                          ? -1
                          : ts->get<int64_t>();
    if (t < 0 || t > int64_t{std::numeric_limits<uint32_t>::max()}) {
      return FieldError(where + ".ts", ts->dump() + " is outside [0, 4294967295] (unix seconds)");
    }
    ev.ts = static_cast<uint32_t>(t);
    if (const auto v = e.find("value"); v != e.end()) {
      if (!v->is_number()) return FieldError(where + ".value", "expected a number, got " + TypeName(*v));
      const double x = v->get<double>();
      if (!std::isfinite(x) || std::fabs(x) > std::numeric_limits<float>::max()) {
        return FieldError(where + ".value", "not a finite float");
      }
      ev.value = static_cast<float>(x);
    }
    if (const auto p = e.find("position"); p != e.end()) {
      if ((!p->is_number_integer() && !p->is_number_unsigned()) || p->get<int64_t>() < 0 || p->get<int64_t>() > 255) {
        return FieldError(where + ".position", "expected an integer in [0, 255] (the ad's 0-based place in the list), got " +
                                                   p->dump());
      }
      ev.position = static_cast<uint8_t>(p->get<int64_t>());
    }
    out.push_back(std::move(ev));
  }
  return out;
}

}  // namespace adrec::serve
