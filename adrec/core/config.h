// TOML configuration with typed reads and unknown-key errors: every key a reader never asked
// for is reported with its file and line, so a typo never silently falls back to a default.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "adrec/core/status.h"

namespace adrec {

class Config {
 public:
  static StatusOr<Config> LoadFile(const std::filesystem::path& path);
  // `source` names the text in errors (a file name or "<string>").
  static StatusOr<Config> Parse(std::string_view text, std::string source = "<string>");
  Config();
  ~Config();
  Config(Config&&) noexcept;
  Config& operator=(Config&&) noexcept;

  // Keys are dotted paths with optional indices ("model.layers", "fields[2].dim"). A missing key
  // leaves *out untouched (the caller's default) and returns OK; a key of another type is an error.
  Status Get(std::string_view key, bool* out);
  Status Get(std::string_view key, int64_t* out);
  Status Get(std::string_view key, int* out);
  Status Get(std::string_view key, uint32_t* out);
  Status Get(std::string_view key, uint64_t* out);
  Status Get(std::string_view key, double* out);
  Status Get(std::string_view key, float* out);
  Status Get(std::string_view key, std::string* out);
  Status Get(std::string_view key, std::vector<std::string>* out);
  Status Get(std::string_view key, std::vector<int64_t>* out);
  Status Get(std::string_view key, std::vector<double>* out);
  // Like Get, but a missing key is a NotFound error naming it.
  // An unread key of the file that is a near-miss of `key` ("model.nmae") is named first.
  template <typename T>
  Status Require(std::string_view key, T* out) {
    if (!Has(key)) return MissingKeyError(key);
    return Get(key, out);
  }

  bool Has(std::string_view key) const;
  // Keys directly under a table ("" = the root), in file order; marks nothing as read.
  std::vector<std::string> KeysOf(std::string_view table) const;
  // Number of elements of an array (of tables) at `key`, 0 when absent.
  size_t ArraySize(std::string_view key) const;
  // Marks a whole subtree as consumed (for sections handed to another reader).
  void MarkRead(std::string_view key);
  // Sets `section`.`name` to a string, creating the section (command-line overrides such as
  // `adrec train --model`). InvalidArgument when `section` exists and is not a table.
  Status SetString(std::string_view section, std::string_view name, std::string value);
  // A command-line setting "section.name=VALUE" (`adrec train --set train.lr=3e-3`): VALUE is a
  // TOML value (3e-3, true, [64, 32], "adam"); a bare word that is no TOML value is a string
  // (train.optimizer=adamw). Tables on the path are created; a key of an array of tables
  // ("features.fields") cannot be set this way. InvalidArgument naming the setting otherwise.
  Status Set(std::string_view setting);

  // InvalidArgument listing every key never read, each with the closest key a reader asked
  // for ("x.toml:3: unknown key 'model.dropuot' (did you mean 'model.dropout'?)").
  Status CheckNoUnknownKeys() const;
  const std::string& source() const { return source_; }

 private:
  struct Impl;
  Status TypeError(std::string_view key, std::string_view want) const;
  Status MissingKeyError(std::string_view key);
  std::unique_ptr<Impl> impl_;
  std::string source_;
  std::set<std::string, std::less<>> read_;
  std::set<std::string, std::less<>> asked_;  // every key a reader asked for, present or not
};

}  // namespace adrec
