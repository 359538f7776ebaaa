#include "adrec/text/llama.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>  // the module's precompiled header: free here

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

#include "adrec/core/safetensors.h"  // ShapeString
#include "adrec/core/text.h"
#include "adrec/tensor/tensor_io.h"
#include "adrec/text/hf_config.h"

namespace adrec::text {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using hf::ParseObject;
using hf::FieldError;
using hf::ReadInt;
using hf::ReadDouble;
using hf::ReadString;
using hf::ReadBool;
using hf::ReadArchitectures;
using hf::IsFloatDtype;
using hf::Lowest;
using hf::ModelWeightsPath;
using hf::ReadModelConfig;

std::string SupportedList() {
  return "supported: model_type " + Join(SupportedLlamaModelTypes()) + " with architectures " +
         Join(SupportedLlamaArchitectures());
}

// ---- config.json fields: present with the wrong JSON type is an error, absent is the default ----

// eos_token_id: an integer, a list of integers, or null.
Status ReadTokenIds(const json& j, std::string_view source, const char* key, std::vector<int64_t>* out) {
  auto it = j.find(key);
  if (it == j.end()) return Status::Ok();
  out->clear();  // null: none (transformers' None), not the default
  if (it->is_null()) return Status::Ok();
  if (it->is_number_integer()) {
    out->push_back(it->get<int64_t>());
    return Status::Ok();
  }
  if (!it->is_array()) return FieldError(source, key, "must be an integer or a list of integers, not " + it->dump());
  for (const json& v : *it) {
    if (!v.is_number_integer()) return FieldError(source, key, "must be a list of integers, not " + it->dump());
    out->push_back(v.get<int64_t>());
  }
  return Status::Ok();
}

// rope_scaling / rope_parameters: only the unscaled ("default") rotary embedding is implemented.
Status CheckRope(const json& j, std::string_view source, const char* key, double* theta) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_object()) return FieldError(source, key, "must be an object or null, not " + it->dump());
  std::string type = "default";
  for (const char* k : {"rope_type", "type"}) {
    if (auto t = it->find(k); t != it->end() && t->is_string()) type = t->get<std::string>();
  }
  if (type != "default") {
    return UnimplementedError(std::string(source) + ": " + key + " with rope_type '" + type +
                              "' is not supported (only unscaled rotary embeddings: " + key +
                              " null or rope_type 'default'): " + it->dump());
  }
  return ReadDouble(*it, source, "rope_theta", theta);
}

// ---- weights ----

class WeightReader {
 public:
  WeightReader(const std::map<std::string, torch::Tensor>& tensors, std::string_view source,
               const LlamaOptions& options)
      : tensors_(tensors), source_(source), options_(options) {}

  StatusOr<torch::Tensor> Get(const std::string& name, std::vector<int64_t> shape) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) {
      return DataLossError(source_ + ": tensor '" + name + "' is missing (config.json's model needs it, shape " +
                           ShapeString(shape) + ")");
    }
    const torch::Tensor& t = it->second;
    if (t.sizes() != c10::IntArrayRef(shape)) {
      return DataLossError(source_ + ": tensor '" + name + "' has shape " + ShapeString(t.sizes()) +
                           ", config.json implies " + ShapeString(shape));
    }
    if (!IsFloatDtype(t.scalar_type())) {
      return DataLossError(source_ + ": tensor '" + name + "' has dtype " + c10::toString(t.scalar_type()) +
                           "; weights must be F32, F16 or BF16");
    }
    return t.to(options_.device, options_.dtype).contiguous();
  }

 private:
  const std::map<std::string, torch::Tensor>& tensors_;
  std::string source_;
  const LlamaOptions& options_;
};

Status ValidateOptions(const LlamaOptions& options) {
  if (options.dtype != torch::kFloat32 && options.dtype != torch::kBFloat16 && options.dtype != torch::kFloat16) {
    return InvalidArgumentError(std::string("LlamaOptions.dtype ") + c10::toString(options.dtype) +
                                ": the decoder computes in Float, BFloat16 or Half");
  }
  if (options.device.is_cuda() && !torch::cuda::is_available()) {
    return FailedPreconditionError("LlamaOptions.device " + options.device.str() + ": CUDA is not available");
  }
  return Status::Ok();
}

Status CheckTokens(const torch::Tensor& t, std::string_view what, std::optional<std::vector<int64_t>> want,
                   bool allow_bool) {
  if (!t.defined()) return InvalidArgumentError(std::string(what) + " is undefined");
  if (t.dim() != 2) {
    return InvalidArgumentError(std::string(what) + " must be [batch, length], not " + ShapeString(t.sizes()));
  }
  if (want && t.sizes() != c10::IntArrayRef(*want)) {
    return InvalidArgumentError(std::string(what) + " has shape " + ShapeString(t.sizes()) + ", expected " +
                                ShapeString(*want));
  }
  if (!c10::isIntegralType(t.scalar_type(), /*includeBool=*/allow_bool)) {
    return InvalidArgumentError(std::string(what) + " has dtype " + c10::toString(t.scalar_type()) +
                                (allow_bool ? "; expected an integer or bool tensor" : "; expected an integer tensor"));
  }
  return Status::Ok();
}

// transformers' LlamaRMSNorm: statistics in float32, the weight applied in the compute dtype.
torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  const torch::Tensor f = x.to(torch::kFloat32);
  const torch::Tensor normed = f * at::rsqrt(f.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normed.to(x.scalar_type());
}

// [.., d] -> cat(-x[d/2:], x[:d/2]): the rotate-half layout of transformers' apply_rotary_pos_emb.
torch::Tensor RotateHalf(const torch::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)}, -1);
}

}  // namespace

const std::vector<std::string>& SupportedLlamaModelTypes() {
  static const std::vector<std::string> kTypes = {"llama", "qwen2"};
  return kTypes;
}

const std::vector<std::string>& SupportedLlamaArchitectures() {
  static const std::vector<std::string> kArchitectures = {"LlamaForCausalLM", "Qwen2ForCausalLM"};
  return kArchitectures;
}

StatusOr<LlamaConfig> ParseLlamaConfig(std::string_view text, std::string_view source) {
  ADREC_ASSIGN_OR_RETURN(json j, ParseObject(text, source));

  LlamaConfig c;
  std::optional<std::string> model_type;
  ADREC_RETURN_IF_ERROR(ReadString(j, source, "model_type", &model_type));
  ADREC_RETURN_IF_ERROR(ReadArchitectures(j, source, &c.architectures));
  const auto& types = SupportedLlamaModelTypes();
  const auto& archs = SupportedLlamaArchitectures();
  if (!model_type) {
    // Old checkpoints may name only the architecture; it implies the model type.
    for (const auto& a : c.architectures) {
      if (a == "LlamaForCausalLM") model_type = "llama";
      if (a == "Qwen2ForCausalLM") model_type = "qwen2";
    }
    if (!model_type) {
      return UnimplementedError(std::string(source) + ": no model_type and no supported architecture (" +
                                SupportedList() + ")");
    }
  }
  if (std::find(types.begin(), types.end(), *model_type) == types.end()) {
    return UnimplementedError(std::string(source) + ": model_type '" + *model_type + "' is not supported (" +
                              SupportedList() + ")");
  }
  c.model_type = *model_type;
  for (const auto& a : c.architectures) {
    if (std::find(archs.begin(), archs.end(), a) == archs.end()) {
      return UnimplementedError(std::string(source) + ": architecture '" + a + "' is not supported (" +
                                SupportedList() + ")");
    }
  }
  const bool qwen2 = c.model_type == "qwen2";
  if (qwen2) {  // Qwen2Config's defaults
    c.vocab_size = 151936;
    c.intermediate_size = 22016;
    c.max_position_embeddings = 32768;
  }

  ADREC_RETURN_IF_ERROR(ReadInt(j, source, "vocab_size", &c.vocab_size));
  ADREC_RETURN_IF_ERROR(ReadInt(j, source, "hidden_size", &c.hidden_size));
  ADREC_RETURN_IF_ERROR(ReadInt(j, source, "intermediate_size", &c.intermediate_size));
  ADREC_RETURN_IF_ERROR(ReadInt(j, source, "num_hidden_layers", &c.num_hidden_layers));
  ADREC_RETURN_IF_ERROR(ReadInt(j, source, "num_attention_heads", &c.num_attention_heads));
  c.num_key_value_heads = c.num_attention_heads;
  ADREC_RETURN_IF_ERROR(ReadInt(j, source, "num_key_value_heads", &c.num_key_value_heads));
  if (c.hidden_size % c.num_attention_heads != 0 && !j.contains("head_dim")) {
    return InvalidArgumentError(std::string(source) + ": hidden_size " + std::to_string(c.hidden_size) +
                                " is not a multiple of num_attention_heads " + std::to_string(c.num_attention_heads) +
                                " and head_dim is not given");
  }
  c.head_dim = c.hidden_size / c.num_attention_heads;
  ADREC_RETURN_IF_ERROR(ReadInt(j, source, "head_dim", &c.head_dim));
  if (c.head_dim % 2 != 0) return FieldError(source, "head_dim", "must be even (rotary embeddings rotate pairs)");
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    return InvalidArgumentError(std::string(source) + ": num_attention_heads " +
                                std::to_string(c.num_attention_heads) + " is not a multiple of num_key_value_heads " +
                                std::to_string(c.num_key_value_heads));
  }
  ADREC_RETURN_IF_ERROR(ReadInt(j, source, "max_position_embeddings", &c.max_position_embeddings));
  ADREC_RETURN_IF_ERROR(ReadDouble(j, source, "rms_norm_eps", &c.rms_norm_eps));
  ADREC_RETURN_IF_ERROR(ReadDouble(j, source, "rope_theta", &c.rope_theta));
  ADREC_RETURN_IF_ERROR(CheckRope(j, source, "rope_scaling", &c.rope_theta));
  ADREC_RETURN_IF_ERROR(CheckRope(j, source, "rope_parameters", &c.rope_theta));  // transformers >= 5
  ADREC_RETURN_IF_ERROR(ReadBool(j, source, "tie_word_embeddings", &c.tie_word_embeddings));
  if (qwen2) {
    c.qkv_bias = true;
  } else {
    bool attention_bias = false;
    ADREC_RETURN_IF_ERROR(ReadBool(j, source, "attention_bias", &attention_bias));
    c.qkv_bias = c.o_bias = attention_bias;
  }
  bool flag = false;
  ADREC_RETURN_IF_ERROR(ReadBool(j, source, "mlp_bias", &flag));
  if (flag) return UnimplementedError(std::string(source) + ": mlp_bias true is not supported");
  flag = false;
  ADREC_RETURN_IF_ERROR(ReadBool(j, source, "use_sliding_window", &flag));
  if (flag) {
    return UnimplementedError(std::string(source) + ": use_sliding_window true is not supported (full attention only)");
  }
  int64_t tp = 1;
  ADREC_RETURN_IF_ERROR(ReadInt(j, source, "pretraining_tp", &tp));
  if (tp != 1) return UnimplementedError(std::string(source) + ": pretraining_tp " + std::to_string(tp) + " != 1");
  std::optional<std::string> act;
  ADREC_RETURN_IF_ERROR(ReadString(j, source, "hidden_act", &act));
  if (act && *act != "silu") {
    return UnimplementedError(std::string(source) + ": hidden_act '" + *act + "' is not supported (supported: silu)");
  }
  // LlamaConfig's default eos_token_id is 2; Qwen2Config's is None.
  c.eos_token_ids = qwen2 ? std::vector<int64_t>{} : std::vector<int64_t>{2};
  ADREC_RETURN_IF_ERROR(ReadTokenIds(j, source, "eos_token_id", &c.eos_token_ids));
  if (auto it = j.find("bos_token_id"); it != j.end() && it->is_number_integer()) c.bos_token_id = it->get<int64_t>();
  return c;
}

int64_t LlamaKvCache::batch_size() const { return keys_.empty() ? 0 : keys_[0].size(0); }
int64_t LlamaKvCache::capacity() const { return keys_.empty() ? 0 : keys_[0].size(2); }

struct LlamaModel::Weights {
  struct Layer {
    torch::Tensor input_norm, post_norm;
    torch::Tensor qkv_w, qkv_b;  // q, k and v stacked: one GEMM instead of three
    torch::Tensor o_w, o_b;
    torch::Tensor gate_up_w;  // gate and up stacked
    torch::Tensor down_w;
  };
  LlamaConfig config;
  LlamaOptions options;
  torch::Tensor embed, norm, lm_head;
  torch::Tensor inv_freq;  // float32 [head_dim / 2] on the device
  std::vector<Layer> layers;
};

StatusOr<LlamaModel> LlamaModel::Load(const fs::path& model_dir, const LlamaOptions& options) {
  const fs::path config_path = model_dir / "config.json";
  ADREC_ASSIGN_OR_RETURN(std::string text, ReadModelConfig(model_dir));
  ADREC_ASSIGN_OR_RETURN(LlamaConfig config, ParseLlamaConfig(text, config_path.string()));
  ADREC_RETURN_IF_ERROR(ValidateOptions(options));  // before reading the weights

  ADREC_ASSIGN_OR_RETURN(const fs::path weights_path, ModelWeightsPath(model_dir));
  ADREC_ASSIGN_OR_RETURN(auto tensors, tensor::LoadTensors(weights_path));
  return FromTensors(config, tensors, options, weights_path.string());
}

StatusOr<LlamaModel> LlamaModel::FromTensors(const LlamaConfig& config,
                                             const std::map<std::string, torch::Tensor>& tensors,
                                             const LlamaOptions& options, std::string_view source) {
  ADREC_RETURN_IF_ERROR(ValidateOptions(options));
  auto w = std::make_shared<Weights>();
  w->config = config;
  w->options = options;
  const int64_t h = config.hidden_size, ffn = config.intermediate_size, hd = config.head_dim;
  const int64_t q_dim = config.num_attention_heads * hd, kv_dim = config.num_key_value_heads * hd;
  try {
    torch::InferenceMode guard;
    WeightReader r(tensors, source, w->options);
    ADREC_ASSIGN_OR_RETURN(w->embed, r.Get("model.embed_tokens.weight", {config.vocab_size, h}));
    ADREC_ASSIGN_OR_RETURN(w->norm, r.Get("model.norm.weight", {h}));
    if (config.tie_word_embeddings) {
      w->lm_head = w->embed;
    } else {
      ADREC_ASSIGN_OR_RETURN(w->lm_head, r.Get("lm_head.weight", {config.vocab_size, h}));
    }
    for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      Weights::Layer l;
      ADREC_ASSIGN_OR_RETURN(l.input_norm, r.Get(p + "input_layernorm.weight", {h}));
      ADREC_ASSIGN_OR_RETURN(l.post_norm, r.Get(p + "post_attention_layernorm.weight", {h}));
      ADREC_ASSIGN_OR_RETURN(torch::Tensor qw, r.Get(p + "self_attn.q_proj.weight", {q_dim, h}));
      ADREC_ASSIGN_OR_RETURN(torch::Tensor kw, r.Get(p + "self_attn.k_proj.weight", {kv_dim, h}));
      ADREC_ASSIGN_OR_RETURN(torch::Tensor vw, r.Get(p + "self_attn.v_proj.weight", {kv_dim, h}));
      l.qkv_w = at::cat({qw, kw, vw}, 0);
      if (config.qkv_bias) {
        ADREC_ASSIGN_OR_RETURN(torch::Tensor qb, r.Get(p + "self_attn.q_proj.bias", {q_dim}));
        ADREC_ASSIGN_OR_RETURN(torch::Tensor kb, r.Get(p + "self_attn.k_proj.bias", {kv_dim}));
        ADREC_ASSIGN_OR_RETURN(torch::Tensor vb, r.Get(p + "self_attn.v_proj.bias", {kv_dim}));
        l.qkv_b = at::cat({qb, kb, vb}, 0);
      }
      ADREC_ASSIGN_OR_RETURN(l.o_w, r.Get(p + "self_attn.o_proj.weight", {h, q_dim}));
      if (config.o_bias) {
        ADREC_ASSIGN_OR_RETURN(l.o_b, r.Get(p + "self_attn.o_proj.bias", {h}));
      }
      ADREC_ASSIGN_OR_RETURN(torch::Tensor gate, r.Get(p + "mlp.gate_proj.weight", {ffn, h}));
      ADREC_ASSIGN_OR_RETURN(torch::Tensor up, r.Get(p + "mlp.up_proj.weight", {ffn, h}));
      l.gate_up_w = at::cat({gate, up}, 0);
      ADREC_ASSIGN_OR_RETURN(l.down_w, r.Get(p + "mlp.down_proj.weight", {h, ffn}));
      w->layers.push_back(std::move(l));
    }
    // As transformers' default rope init: theta ** (arange(0, d, 2) / d) in float32.
    const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(options.device);
    const torch::Tensor exponents = at::arange(0, hd, 2, torch::kLong).to(f32) / static_cast<double>(hd);
    w->inv_freq = 1.0 / at::pow(config.rope_theta, exponents);
  } catch (const c10::Error& e) {
    return FailedPreconditionError(std::string(source) + ": moving the weights to " + w->options.device.str() +
                                   " failed: " + e.what_without_backtrace());
  }
  return LlamaModel(std::move(w));
}

const LlamaConfig& LlamaModel::config() const { return weights_->config; }
const LlamaOptions& LlamaModel::options() const { return weights_->options; }

StatusOr<torch::Tensor> LlamaModel::Forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) const {
  return Run(input_ids, attention_mask, nullptr, /*last_only=*/false);
}

StatusOr<torch::Tensor> LlamaModel::Forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                            LlamaKvCache* cache) const {
  if (cache == nullptr) return InvalidArgumentError("LlamaModel::Forward: cache is null");
  return Run(input_ids, attention_mask, cache, /*last_only=*/false);
}

StatusOr<torch::Tensor> LlamaModel::Run(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                        LlamaKvCache* cache, bool last_only) const {
  const Weights& w = *weights_;
  const LlamaConfig& c = w.config;
  ADREC_RETURN_IF_ERROR(CheckTokens(input_ids, "input_ids", std::nullopt, /*allow_bool=*/false));
  const int64_t batch = input_ids.size(0), len = input_ids.size(1);
  const int64_t past = cache ? cache->length() : 0, total = past + len;
  if (attention_mask.defined()) {
    ADREC_RETURN_IF_ERROR(
        CheckTokens(attention_mask, "attention_mask", std::vector<int64_t>{batch, total}, /*allow_bool=*/true));
  }
  if (len == 0) return InvalidArgumentError("input_ids: empty sequences (length 0)");
  if (batch == 0) return InvalidArgumentError("input_ids: empty batch");
  if (cache && cache->batch_size() != 0 && cache->length() > 0 && cache->batch_size() != batch) {
    return InvalidArgumentError("input_ids: batch " + std::to_string(batch) + " but the KV cache holds batch " +
                                std::to_string(cache->batch_size()));
  }
  const torch::Device device = w.options.device;
  const auto dtype = w.options.dtype;
  const auto float_opts = torch::TensorOptions().device(device).dtype(dtype);
  const int64_t heads = c.num_attention_heads, kv_heads = c.num_key_value_heads, hd = c.head_dim;
  try {
    torch::InferenceMode guard;
    const torch::Tensor ids = input_ids.to(device, torch::kLong);
    {
      auto [lo, hi] = at::aminmax(ids);
      const int64_t min = lo.item<int64_t>(), max = hi.item<int64_t>();
      if (min < 0 || max >= c.vocab_size) {
        return OutOfRangeError("input_ids: ID " + std::to_string(min < 0 ? min : max) + " outside the vocabulary [0, " +
                               std::to_string(c.vocab_size) + ")");
      }
    }
    // KV cache buffers: allocate on first use, grow by doubling (copies are rare: log2 times).
    if (cache) {
      if (cache->keys_.empty() || cache->batch_size() != batch) {
        const int64_t cap = std::max(cache->capacity_hint_, total);
        cache->keys_.clear();
        cache->values_.clear();
        for (size_t i = 0; i < w.layers.size(); ++i) {
          cache->keys_.push_back(at::empty({batch, kv_heads, cap, hd}, float_opts));
          cache->values_.push_back(at::empty({batch, kv_heads, cap, hd}, float_opts));
        }
      } else if (total > cache->capacity()) {
        const int64_t cap = std::max(total, 2 * cache->capacity());
        for (size_t i = 0; i < w.layers.size(); ++i) {
          for (auto* buffers : {&cache->keys_, &cache->values_}) {
            torch::Tensor grown = at::empty({batch, kv_heads, cap, hd}, float_opts);
            grown.narrow(2, 0, past).copy_((*buffers)[i].narrow(2, 0, past));
            (*buffers)[i] = grown;
          }
        }
      }
    }

    // Rotary tables for positions past..total-1, computed in float32 as transformers does.
    const torch::Tensor positions =
        at::arange(past, total, torch::TensorOptions().device(device).dtype(torch::kFloat32));
    const torch::Tensor freqs = positions.unsqueeze(1) * w.inv_freq.unsqueeze(0);
    const torch::Tensor emb = at::cat({freqs, freqs}, -1);
    const torch::Tensor cos = emb.cos().to(dtype).view({1, 1, len, hd});
    const torch::Tensor sin = emb.sin().to(dtype).view({1, 1, len, hd});

    // Masks: none for a single new token (it sees everything cached) or a causal flag for a
    // plain prefill (lets SDPA pick its fastest kernel); an explicit one otherwise. Padded keys
    // get the dtype's lowest value added (transformers' additive mask), so no row is NaN.
    std::optional<torch::Tensor> mask;
    bool is_causal = false;
    const bool padded = attention_mask.defined() && !attention_mask.to(device).ne(0).all().item<bool>();
    if (padded || (past > 0 && len > 1)) {
      const auto long_opts = torch::TensorOptions().device(device).dtype(torch::kLong);
      torch::Tensor allowed = at::arange(total, long_opts).unsqueeze(0) <=
                              at::arange(past, total, long_opts).unsqueeze(1);  // [len, total]
      allowed = allowed.view({1, 1, len, total});
      if (padded) allowed = allowed & attention_mask.to(device).ne(0).view({batch, 1, 1, total});
      mask = at::zeros(allowed.sizes(), float_opts).masked_fill(allowed.logical_not(), Lowest(dtype));
    } else if (len > 1) {
      is_causal = true;
    }

    torch::Tensor x = at::embedding(w.embed, ids);
    for (size_t i = 0; i < w.layers.size(); ++i) {
      const Weights::Layer& l = w.layers[i];
      torch::Tensor hs = RmsNorm(x, l.input_norm, c.rms_norm_eps);
      torch::Tensor qkv = at::linear(hs, l.qkv_w, l.qkv_b);
      torch::Tensor q = qkv.narrow(-1, 0, heads * hd).view({batch, len, heads, hd}).transpose(1, 2);
      torch::Tensor k = qkv.narrow(-1, heads * hd, kv_heads * hd).view({batch, len, kv_heads, hd}).transpose(1, 2);
      torch::Tensor v =
          qkv.narrow(-1, (heads + kv_heads) * hd, kv_heads * hd).view({batch, len, kv_heads, hd}).transpose(1, 2);
      q = q * cos + RotateHalf(q) * sin;
      k = k * cos + RotateHalf(k) * sin;
      if (cache) {
        cache->keys_[i].narrow(2, past, len).copy_(k);
        cache->values_[i].narrow(2, past, len).copy_(v);
        k = cache->keys_[i].narrow(2, 0, total);
        v = cache->values_[i].narrow(2, 0, total);
      } else {
        v = v.contiguous();
      }
      torch::Tensor a = at::scaled_dot_product_attention(q.contiguous(), k, v, mask, 0.0, is_causal, std::nullopt,
                                                         /*enable_gqa=*/kv_heads != heads);
      a = a.transpose(1, 2).reshape({batch, len, heads * hd});
      x = x + at::linear(a, l.o_w, l.o_b);
      hs = RmsNorm(x, l.post_norm, c.rms_norm_eps);
      const torch::Tensor gate_up = at::linear(hs, l.gate_up_w);
      const int64_t ffn = c.intermediate_size;
      x = x + at::linear(at::silu(gate_up.narrow(-1, 0, ffn)) * gate_up.narrow(-1, ffn, ffn), l.down_w);
    }
    if (last_only) x = x.narrow(1, len - 1, 1);
    x = RmsNorm(x, w.norm, c.rms_norm_eps);
    if (cache) cache->length_ = total;
    return at::linear(x, w.lm_head);
  } catch (const c10::Error& e) {
    return InternalError(std::string("LlamaModel::Forward: ") + e.what_without_backtrace());
  }
}

StatusOr<std::vector<int64_t>> LlamaModel::Generate(const torch::Tensor& prompt_ids,
                                                    const GenerateOptions& options) const {
  if (!prompt_ids.defined()) return InvalidArgumentError("Generate: prompt_ids is undefined");
  torch::Tensor prompt = prompt_ids.dim() == 1 ? prompt_ids.unsqueeze(0) : prompt_ids;
  if (prompt.dim() != 2 || prompt.size(0) != 1) {
    return InvalidArgumentError("Generate: prompt_ids must be [L] or [1, L], not " + ShapeString(prompt_ids.sizes()));
  }
  if (options.max_new_tokens < 0) {
    return InvalidArgumentError("GenerateOptions.max_new_tokens " + std::to_string(options.max_new_tokens) + " < 0");
  }
  if (!options.greedy && !(options.temperature > 0)) {
    return InvalidArgumentError("GenerateOptions.temperature must be positive when sampling");
  }
  if (!options.greedy && !(options.top_p > 0 && options.top_p <= 1)) {
    return InvalidArgumentError("GenerateOptions.top_p must be in (0, 1]");
  }
  const std::vector<int64_t>& eos = options.eos_token_ids ? *options.eos_token_ids : config().eos_token_ids;
  std::vector<int64_t> out;
  if (options.max_new_tokens == 0) return out;
  at::Generator gen = at::detail::createCPUGenerator(options.seed);
  LlamaKvCache cache(prompt.size(1) + options.max_new_tokens);
  torch::Tensor next = prompt;
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    ADREC_ASSIGN_OR_RETURN(torch::Tensor logits, Run(next, {}, &cache, /*last_only=*/true));
    torch::InferenceMode guard;
    const torch::Tensor last = logits.select(1, 0).select(0, 0).to(torch::kFloat32);  // [vocab]
    int64_t token;
    if (options.greedy) {
      token = last.argmax().item<int64_t>();
    } else {
      // transformers' order: temperature, then top-p (keep the smallest set of most probable
      // tokens whose mass reaches top_p, always at least the best), then sample.
      torch::Tensor probs = at::softmax(last.cpu() / options.temperature, -1);
      if (options.top_p < 1) {
        auto [sorted, order] = probs.sort(/*dim=*/-1, /*descending=*/true);
        const torch::Tensor before = sorted.cumsum(-1) - sorted;  // mass of better tokens
        sorted.masked_fill_(before >= options.top_p, 0.0);
        probs = at::zeros_like(probs).scatter_(-1, order, sorted);
      }
      token = at::multinomial(probs, 1, /*replacement=*/false, gen).item<int64_t>();
    }
    out.push_back(token);
    if (std::find(eos.begin(), eos.end(), token) != eos.end()) break;
    next = torch::full({1, 1}, token, torch::TensorOptions().dtype(torch::kLong).device(weights_->options.device));
  }
  return out;
}

}  // namespace adrec::text
