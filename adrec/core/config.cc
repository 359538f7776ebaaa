#include "adrec/core/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <limits>
#include <sstream>

#include "adrec/core/file.h"

namespace adrec {

struct Config::Impl {
  toml::table root;
};

Config::Config() : impl_(std::make_unique<Impl>()) {}
Config::~Config() = default;
Config::Config(Config&&) noexcept = default;
Config& Config::operator=(Config&&) noexcept = default;

StatusOr<Config> Config::Parse(std::string_view text, std::string source) {
  Config c;
  c.source_ = source;
  try {
    c.impl_->root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream m;
    m << source << ":" << e.source().begin.line << ":" << e.source().begin.column << ": " << e.description();
    return InvalidArgumentError(m.str());
  }
  return c;
}

StatusOr<Config> Config::LoadFile(const std::filesystem::path& path) {
  ADREC_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return Parse(text, path.string());
}

bool Config::Has(std::string_view key) const { return static_cast<bool>(impl_->root.at_path(key)); }

Status Config::TypeError(std::string_view key, std::string_view want) const {
  auto node = impl_->root.at_path(key);
  std::ostringstream m;
  m << source_;
  if (node.node()) m << ":" << node.node()->source().begin.line;
  m << ": key '" << key << "' must be " << want;
  return InvalidArgumentError(m.str());
}

namespace {
template <typename T>
bool ReadInteger(const toml::node_view<toml::node>& n, T* out) {
  // Only integer nodes: toml++ converts a float node to int64_t with a cast that is undefined
  // past its range (1e24; found by config_fuzz).
  if (!n.is_integer()) return false;
  auto v = n.value<int64_t>();
  if (!v) return false;
  if (*v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
      (*v > 0 && static_cast<uint64_t>(*v) > static_cast<uint64_t>(std::numeric_limits<T>::max()))) {
    return false;
  }
  *out = static_cast<T>(*v);
  return true;
}
}  // namespace

#define ADREC_CONFIG_GET_PRELUDE()                       \
  asked_.emplace(key);                                   \
  auto n = impl_->root.at_path(key);                     \
  if (!n) return Status::Ok();                           \
  read_.emplace(key)

Status Config::Get(std::string_view key, bool* out) {
  ADREC_CONFIG_GET_PRELUDE();
  if (!n.is_boolean()) return TypeError(key, "a boolean");
  *out = *n.value<bool>();
  return Status::Ok();
}
Status Config::Get(std::string_view key, int64_t* out) {
  ADREC_CONFIG_GET_PRELUDE();
  return ReadInteger(n, out) ? Status::Ok() : TypeError(key, "an integer");
}
Status Config::Get(std::string_view key, int* out) {
  ADREC_CONFIG_GET_PRELUDE();
  return ReadInteger(n, out) ? Status::Ok() : TypeError(key, "a 32-bit integer");
}
Status Config::Get(std::string_view key, uint32_t* out) {
  ADREC_CONFIG_GET_PRELUDE();
  return ReadInteger(n, out) ? Status::Ok() : TypeError(key, "a non-negative 32-bit integer");
}
Status Config::Get(std::string_view key, uint64_t* out) {
  ADREC_CONFIG_GET_PRELUDE();
  return ReadInteger(n, out) ? Status::Ok() : TypeError(key, "a non-negative integer");
}
Status Config::Get(std::string_view key, double* out) {
  ADREC_CONFIG_GET_PRELUDE();
  if (!n.is_number()) return TypeError(key, "a number");
  *out = *n.value<double>();
  return Status::Ok();
}
Status Config::Get(std::string_view key, float* out) {
  double d = *out;
  ADREC_RETURN_IF_ERROR(Get(key, &d));
  *out = static_cast<float>(d);
  return Status::Ok();
}
Status Config::Get(std::string_view key, std::string* out) {
  ADREC_CONFIG_GET_PRELUDE();
  if (!n.is_string()) return TypeError(key, "a string");
  *out = *n.value<std::string>();
  return Status::Ok();
}
Status Config::Get(std::string_view key, std::vector<std::string>* out) {
  ADREC_CONFIG_GET_PRELUDE();
  const toml::array* a = n.as_array();
  if (!a || !a->is_homogeneous(toml::node_type::string)) {
    if (!a || !a->empty()) return TypeError(key, "an array of strings");
  }
  out->clear();
  for (const auto& e : *a) out->push_back(*e.value<std::string>());
  return Status::Ok();
}
Status Config::Get(std::string_view key, std::vector<int64_t>* out) {
  ADREC_CONFIG_GET_PRELUDE();
  const toml::array* a = n.as_array();
  if (!a || (!a->empty() && !a->is_homogeneous(toml::node_type::integer))) return TypeError(key, "an array of integers");
  out->clear();
  for (const auto& e : *a) out->push_back(*e.value<int64_t>());
  return Status::Ok();
}
Status Config::Get(std::string_view key, std::vector<double>* out) {
  ADREC_CONFIG_GET_PRELUDE();
  const toml::array* a = n.as_array();
  if (!a) return TypeError(key, "an array of numbers");
  out->clear();
  for (const auto& e : *a) {
    if (!e.is_number()) return TypeError(key, "an array of numbers");
    out->push_back(*e.value<double>());
  }
  return Status::Ok();
}
#undef ADREC_CONFIG_GET_PRELUDE

std::vector<std::string> Config::KeysOf(std::string_view table) const {
  std::vector<std::string> keys;
  const toml::table* t = table.empty() ? &impl_->root : impl_->root.at_path(table).as_table();
  if (!t) return keys;
  for (const auto& [k, v] : *t) keys.emplace_back(k.str());
  return keys;
}

size_t Config::ArraySize(std::string_view key) const {
  const toml::array* a = impl_->root.at_path(key).as_array();
  return a ? a->size() : 0;
}

void Config::MarkRead(std::string_view key) { read_.emplace(key); }

Status Config::SetString(std::string_view section, std::string_view name, std::string value) {
  auto [it, inserted] = impl_->root.insert(section, toml::table{});
  toml::table* t = it->second.as_table();
  if (t == nullptr) return InvalidArgumentError(source_ + ": '" + std::string(section) + "' is not a table");
  t->insert_or_assign(name, std::move(value));
  return Status::Ok();
}

Status Config::Set(std::string_view setting) {
  const auto bad = [&](const std::string& why) {
    return InvalidArgumentError("--set '" + std::string(setting) + "': " + why);
  };
  const size_t eq = setting.find('=');
  if (eq == std::string_view::npos) return bad("want SECTION.KEY=VALUE");
  const auto trim = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
  };
  const std::string_view key = trim(setting.substr(0, eq)), value = trim(setting.substr(eq + 1));
  const size_t dot = key.rfind('.');
  if (dot == std::string_view::npos || key.front() == '.' || dot + 1 == key.size() || key.find("..") != std::string_view::npos) {
    return bad("want SECTION.KEY=VALUE");
  }
  toml::table holder;
  try {
    holder = toml::parse("v = " + std::string(value));
  } catch (const toml::parse_error&) {
    holder = toml::table{};
    holder.insert("v", std::string(value));  // a bare word: the string itself
  }
  toml::table* table = &impl_->root;
  std::string_view path = key.substr(0, dot);
  while (!path.empty()) {
    const size_t next = path.find('.');
    const std::string_view part = path.substr(0, next);
    auto [it, inserted] = table->insert(part, toml::table{});
    table = it->second.as_table();
    if (table == nullptr) return bad("'" + std::string(part) + "' is not a table");
    path = next == std::string_view::npos ? std::string_view() : path.substr(next + 1);
  }
  const std::string_view name = key.substr(dot + 1);
  const toml::node& v = *holder.get("v");
  if (const toml::node* old = table->get(name); old != nullptr && old->type() != v.type() && !(old->is_number() && v.is_number())) {
    std::ostringstream m;
    m << "'" << key << "' is a " << old->type() << " in " << source_ << ", not a " << v.type();
    return bad(m.str());
  }
  table->insert_or_assign(name, std::move(*holder.get("v")));
  return Status::Ok();
}

namespace {
// Walks leaves; a key counts as read when it or any of its ancestors was read.
void CollectUnread(const toml::node& node, const std::string& path, const std::set<std::string, std::less<>>& read,
                   std::vector<std::pair<std::string, int>>* unread) {
  if (!path.empty() && read.count(path)) return;
  if (const toml::table* t = node.as_table()) {
    for (const auto& [k, v] : *t) {
      std::string child = path.empty() ? std::string(k.str()) : path + "." + std::string(k.str());
      CollectUnread(v, child, read, unread);
    }
    return;
  }
  if (const toml::array* a = node.as_array(); a && !a->empty() && a->front().is_table()) {
    for (size_t i = 0; i < a->size(); ++i) {
      CollectUnread((*a)[i], path + "[" + std::to_string(i) + "]", read, unread);
    }
    return;
  }
  unread->emplace_back(path, static_cast<int>(node.source().begin.line));
}

// Levenshtein distance of short strings (config keys).
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The candidate nearest to `key` when it is near enough to be a typo of it (a third of the
// key's length, at least 2 edits); "" otherwise.
std::string Nearest(std::string_view key, const std::set<std::string, std::less<>>& candidates) {
  std::string best;
  size_t best_d = std::max<size_t>(2, key.size() / 3) + 1;
  for (const std::string& c : candidates) {
    if (c == key) continue;
    const size_t d = EditDistance(key, c);
    if (d < best_d) best_d = d, best = c;
  }
  return best;
}
}  // namespace

Status Config::CheckNoUnknownKeys() const {
  std::vector<std::pair<std::string, int>> unread;
  CollectUnread(impl_->root, "", read_, &unread);
  if (unread.empty()) return Status::Ok();
  std::ostringstream m;
  for (size_t i = 0; i < unread.size(); ++i) {
    if (i) m << "; ";
    m << source_ << ":" << unread[i].second << ": unknown key '" << unread[i].first << "'";
    if (std::string near = Nearest(unread[i].first, asked_); !near.empty()) m << " (did you mean '" << near << "'?)";
  }
  return InvalidArgumentError(m.str());
}

Status Config::MissingKeyError(std::string_view key) {
  asked_.emplace(key);
  std::vector<std::pair<std::string, int>> unread;
  CollectUnread(impl_->root, "", read_, &unread);
  std::set<std::string, std::less<>> target{std::string(key)};
  for (const auto& [name, line] : unread) {
    if (!Nearest(name, target).empty()) {
      return NotFoundError(source_ + ":" + std::to_string(line) + ": unknown key '" + name + "' (did you mean '" +
                           std::string(key) + "'?); the required key '" + std::string(key) + "' is missing");
    }
  }
  return NotFoundError(source_ + ": missing required key '" + std::string(key) + "'");
}

}  // namespace adrec
