// A Llama/Qwen2-family causal decoder for inference (issue 6, "Language-model features"): loads a
// Hugging Face model directory (config.json + model.safetensors of LlamaForCausalLM or
// Qwen2ForCausalLM), computes next-token logits, decodes incrementally with a KV cache and
// generates (greedy or top-p sampling). RMSNorm, rotary position embeddings (rotate-half layout,
// as transformers), grouped-query attention through at::scaled_dot_product_attention, SwiGLU MLP.
// Tokenising is tokenizer.h's job. llama_test.cc compares it with transformers
// (bench/reference/decoder_models.py) on the same weights.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adrec/core/status.h"

namespace adrec::text {

// The config.json fields the decoder uses. Absent fields take transformers' LlamaConfig
// defaults (Qwen2Config's where they differ), so a directory loads as from_pretrained reads it.
struct LlamaConfig {
  std::string model_type = "llama";  // "llama" or "qwen2"
  std::vector<std::string> architectures = {};
  int64_t vocab_size = 32000;
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 11008;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 32;  // grouped-query attention when fewer than num_attention_heads
  int64_t head_dim = 128;            // config.json's head_dim, else hidden_size / num_attention_heads
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;  // top-level rope_theta or rope_parameters.rope_theta
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // Qwen2 always; Llama when attention_bias
  bool o_bias = false;    // Llama's attention_bias also biases o_proj
  std::vector<int64_t> eos_token_ids = {};  // config.json's eos_token_id (an integer or a list)
  std::optional<int64_t> bos_token_id = std::nullopt;
};

// The model_types and architectures Load accepts (error messages list them).
const std::vector<std::string>& SupportedLlamaModelTypes();
const std::vector<std::string>& SupportedLlamaArchitectures();

// Parses and validates config.json text; `source` names it in errors. Unsupported model types,
// architectures, activations, rope scaling or sliding-window attention are Unimplemented; a
// malformed or inconsistent config is InvalidArgument naming the field.
StatusOr<LlamaConfig> ParseLlamaConfig(std::string_view json, std::string_view source);

struct LlamaOptions {
  torch::Device device = torch::kCPU;
  // Weights (stored as f32, f16 or bf16) are converted to this dtype and the decoder computes
  // in it: kFloat32 everywhere; kBFloat16 (or kFloat16) for speed on CUDA.
  torch::ScalarType dtype = torch::kFloat32;
};

// Keys and values of the positions seen so far, per layer, for incremental decoding. Created
// empty; the first Forward that is given it allocates [batch, kv_heads, capacity, head_dim]
// buffers (capacity at least capacity_hint), later ones append and grow them by doubling.
// Belongs to one model (its device, dtype and shapes) and one batch.
class LlamaKvCache {
 public:
  explicit LlamaKvCache(int64_t capacity_hint = 0) : capacity_hint_(capacity_hint) {}
  int64_t length() const { return length_; }  // positions cached: the next token's position
  int64_t batch_size() const;                 // 0 before the first Forward
  int64_t capacity() const;
  void Clear() { length_ = 0; }  // keeps the buffers

 private:
  friend class LlamaModel;
  int64_t capacity_hint_ = 0;
  int64_t length_ = 0;
  std::vector<torch::Tensor> keys_ = {}, values_ = {};  // one per layer
};

struct GenerateOptions {
  int64_t max_new_tokens = 32;
  // Greedy (argmax, as transformers' do_sample=False) unless false: then sampling from
  // softmax(logits / temperature) restricted to the top_p nucleus, with `seed`.
  bool greedy = true;
  double temperature = 1.0;
  double top_p = 1.0;
  uint64_t seed = 0;
  // Generation stops after any of these (which is returned); unset: config.json's eos_token_id.
  std::optional<std::vector<int64_t>> eos_token_ids = std::nullopt;
};

class LlamaModel {
 public:
  // Reads model_dir/config.json and model_dir/model.safetensors. Missing files are NotFound
  // naming the path; a missing tensor or one whose shape disagrees with config.json is DataLoss
  // naming the tensor (and both shapes).
  static StatusOr<LlamaModel> Load(const std::filesystem::path& model_dir, const LlamaOptions& options = {});
  // The same from a parsed config and a name -> tensor map; `source` names the weights in errors.
  static StatusOr<LlamaModel> FromTensors(const LlamaConfig& config,
                                          const std::map<std::string, torch::Tensor>& tensors,
                                          const LlamaOptions& options = {}, std::string_view source = "weights");

  // input_ids [B, L] (integer), attention_mask [B, L] (1 token, 0 padding; integer or bool) or
  // undefined (no padding) -> logits [B, L, vocab_size] in options().dtype on options().device.
  // Positions are 0..L-1 (right padding; left padding is not supported). Inference mode.
  StatusOr<torch::Tensor> Forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {}) const;

  // Incremental: input_ids [B, L] are positions cache->length() .. cache->length()+L-1; their
  // keys and values are appended to `cache`. attention_mask, when defined, covers every position
  // so far: [B, cache->length() + L]. Prefill is the first call, a decode step one with L = 1.
  StatusOr<torch::Tensor> Forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                  LlamaKvCache* cache) const;

  // Continues one prompt (prompt_ids [L] or [1, L]) with up to max_new_tokens tokens, decoding
  // through a KV cache; returns the new token IDs only (an end-of-sequence token included).
  StatusOr<std::vector<int64_t>> Generate(const torch::Tensor& prompt_ids, const GenerateOptions& options = {}) const;

  const LlamaConfig& config() const;
  const LlamaOptions& options() const;

 private:
  struct Weights;
  explicit LlamaModel(std::shared_ptr<const Weights> weights) : weights_(std::move(weights)) {}
  StatusOr<torch::Tensor> Run(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                              LlamaKvCache* cache, bool last_only) const;
  std::shared_ptr<const Weights> weights_;  // immutable after loading: copies share it
};

}  // namespace adrec::text
