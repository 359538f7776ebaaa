// A BERT-family transformer encoder for inference (issue 6, "Language-model features"): loads a
// Hugging Face model directory (config.json + model.safetensors: BertModel, BertForMaskedLM,
// sentence-transformers checkpoints such as all-MiniLM-L6-v2) and turns token IDs into hidden
// states and sentence embeddings. Tokenising is tokenizer.h's job. bert_test.cc compares it with
// transformers and sentence-transformers (bench/reference/text_models.py) on the same weights.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adrec/core/status.h"

namespace adrec::text {

// config.json's hidden_act.
enum class BertActivation {
  kGelu,      // "gelu": the exact erf form
  kGeluTanh,  // "gelu_new", "gelu_pytorch_tanh": the tanh approximation
  kRelu,      // "relu"
};

// The config.json fields the encoder uses. Absent fields take transformers' BertConfig
// defaults, so a directory loads here exactly as BertModel.from_pretrained reads it.
struct BertConfig {
  std::string model_type = "bert";
  std::vector<std::string> architectures = {};
  int64_t vocab_size = 30522;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  BertActivation hidden_act = BertActivation::kGelu;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
};

// The model_type and architectures Load accepts (error messages list them).
const std::vector<std::string>& SupportedBertArchitectures();

// Parses and validates config.json text; `source` names it in errors. Unsupported model types,
// architectures, activations, position embeddings or decoder configs are Unimplemented; a
// malformed or inconsistent config is InvalidArgument naming the field.
StatusOr<BertConfig> ParseBertConfig(std::string_view json, std::string_view source);

struct BertOptions {
  torch::Device device = torch::kCPU;
  // Weights (stored as f32, f16 or bf16) are converted to this dtype, and the encoder computes
  // in it: kFloat32 everywhere; kBFloat16 / kFloat16 for speed on CUDA.
  torch::ScalarType dtype = torch::kFloat32;
  // The longest sequence Forward accepts; 0: config.json's max_position_embeddings, which is
  // also the upper bound (truncating is the tokenizer's job, this only rejects).
  int64_t max_length = 0;
};

enum class BertPooling {
  kMean,  // mean over the attention mask (sentence-transformers' pooling_mode_mean_tokens)
  kCls,   // the first token's hidden state
};

struct BertEmbeddingOptions {
  BertPooling pooling = BertPooling::kMean;
  bool normalize = true;  // L2, as sentence-transformers' Normalize module
};

class BertEncoder {
 public:
  // Reads model_dir/config.json and model_dir/model.safetensors (tensor names with or without
  // the "bert." prefix of the task heads' checkpoints; heads and the pooler are ignored).
  // Missing files are NotFound naming the path; a missing tensor or one whose shape disagrees
  // with config.json is DataLoss naming the tensor (and both shapes).
  static StatusOr<BertEncoder> Load(const std::filesystem::path& model_dir, const BertOptions& options = {});
  // The same from a parsed config and a name -> tensor map (any device and float dtype);
  // `source` names the weights in errors.
  static StatusOr<BertEncoder> FromTensors(const BertConfig& config,
                                           const std::map<std::string, torch::Tensor>& tensors,
                                           const BertOptions& options = {}, std::string_view source = "weights");

  // input_ids [B, L] (int64 or int32), attention_mask [B, L] (1 real token, 0 padding; any
  // integer or bool dtype), token_type_ids [B, L] or undefined (all segment 0) -> the last
  // hidden state [B, L, hidden_size] on options().device in options().dtype. Inputs may live on
  // any device. Runs under inference mode: the result is an inference tensor. Bad shapes,
  // sequences longer than max_length and out-of-vocabulary IDs are errors, never crashes.
  // Padding positions get values too (what transformers gives them); pooling ignores them.
  StatusOr<torch::Tensor> Forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                  const torch::Tensor& token_type_ids = {}) const;

  // Forward, then pooling (and normalising): [B, hidden_size] float32 on options().device.
  StatusOr<torch::Tensor> Embed(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                const BertEmbeddingOptions& options = {},
                                const torch::Tensor& token_type_ids = {}) const;

  const BertConfig& config() const;
  const BertOptions& options() const;  // max_length resolved (never 0)

 private:
  struct Weights;
  explicit BertEncoder(std::shared_ptr<const Weights> weights) : weights_(std::move(weights)) {}
  std::shared_ptr<const Weights> weights_;  // immutable after loading: copies share it
};

// Pooling helpers over a last hidden state [B, L, H] and its attention_mask [B, L]; results are
// float32 [B, H] (reduced-precision states are pooled in float32).
// sum(hidden * mask) / max(sum(mask), 1e-9), as sentence-transformers' mean pooling.
torch::Tensor MeanPool(const torch::Tensor& hidden, const torch::Tensor& attention_mask);
torch::Tensor ClsPool(const torch::Tensor& hidden);
// x / max(||x||_2, eps) along the last dimension (torch.nn.functional.normalize).
torch::Tensor L2Normalize(const torch::Tensor& x, double eps = 1e-12);

}  // namespace adrec::text
