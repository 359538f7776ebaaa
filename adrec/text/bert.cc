#include "adrec/text/bert.h"

#include <torch/torch.h>  // the module's precompiled header: free here

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

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

const std::string kModelType = "bert";

std::string SupportedList() {
  return "supported: model_type '" + kModelType + "' with architectures " + Join(SupportedBertArchitectures());
}

// ---- weights ----

// Looks tensors up under the checkpoint's prefix and checks them against config.json's shapes.
class WeightReader {
 public:
  WeightReader(const std::map<std::string, torch::Tensor>& tensors, std::string prefix, std::string_view source,
               const BertOptions& options)
      : tensors_(tensors), prefix_(std::move(prefix)), source_(source), options_(options) {}

  StatusOr<torch::Tensor> Get(const std::string& name, std::vector<int64_t> shape) const {
    const std::string full = prefix_ + name;
    auto it = tensors_.find(full);
    if (it == tensors_.end()) it = FindLegacyLayerNorm(name);
    if (it == tensors_.end()) {
      return DataLossError(source_ + ": tensor '" + full + "' is missing (a BERT checkpoint for config.json's " +
                           "shapes needs it)");
    }
    const torch::Tensor& t = it->second;
    if (t.sizes() != c10::IntArrayRef(shape)) {
      return DataLossError(source_ + ": tensor '" + it->first + "' has shape " + ShapeString(t.sizes()) +
                           ", config.json implies " + ShapeString(shape));
    }
    if (!IsFloatDtype(t.scalar_type())) {
      return DataLossError(source_ + ": tensor '" + it->first + "' has dtype " + c10::toString(t.scalar_type()) +
                           "; weights must be F32, F16 or BF16");
    }
    return t.to(options_.device, options_.dtype).contiguous();
  }

 private:
  // TF-converted checkpoints name LayerNorm parameters gamma and beta; transformers renames them.
  std::map<std::string, torch::Tensor>::const_iterator FindLegacyLayerNorm(const std::string& name) const {
    auto ends_with = [&](std::string_view suffix) {
      return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    const std::string stem = name.substr(0, name.rfind('.') + 1);
    if (ends_with("LayerNorm.weight")) return tensors_.find(prefix_ + stem + "gamma");
    if (ends_with("LayerNorm.bias")) return tensors_.find(prefix_ + stem + "beta");
    return tensors_.end();
  }

  const std::map<std::string, torch::Tensor>& tensors_;
  std::string prefix_;
  std::string source_;
  const BertOptions& options_;
};

Status ValidateOptions(const BertConfig& config, BertOptions* options) {
  if (options->dtype != torch::kFloat32 && options->dtype != torch::kBFloat16 && options->dtype != torch::kFloat16) {
    return InvalidArgumentError(std::string("BertOptions.dtype ") + c10::toString(options->dtype) +
                                ": the encoder computes in Float, BFloat16 or Half");
  }
  if (options->max_length == 0) options->max_length = config.max_position_embeddings;
  if (options->max_length < 0 || options->max_length > config.max_position_embeddings) {
    return InvalidArgumentError("BertOptions.max_length " + std::to_string(options->max_length) +
                                " outside [1, max_position_embeddings = " +
                                std::to_string(config.max_position_embeddings) + "]");
  }
  if (options->device.is_cuda() && !torch::cuda::is_available()) {
    return FailedPreconditionError("BertOptions.device " + options->device.str() + ": CUDA is not available");
  }
  return Status::Ok();
}

// 2-D [B, L] with integer (or bool) values; `what` names the argument in errors.
Status CheckTokens(const torch::Tensor& t, std::string_view what, c10::IntArrayRef want, bool allow_bool) {
  if (!t.defined()) return InvalidArgumentError(std::string(what) + " is undefined");
  if (t.dim() != 2) {
    return InvalidArgumentError(std::string(what) + " must be [batch, length], not " + ShapeString(t.sizes()));
  }
  if (!want.empty() && t.sizes() != want) {
    return InvalidArgumentError(std::string(what) + " has shape " + ShapeString(t.sizes()) + ", input_ids " +
                                ShapeString(want));
  }
  const bool ok = c10::isIntegralType(t.scalar_type(), /*includeBool=*/allow_bool);
  if (!ok) {
    return InvalidArgumentError(std::string(what) + " has dtype " + c10::toString(t.scalar_type()) +
                                (allow_bool ? "; expected an integer or bool tensor" : "; expected an integer tensor"));
  }
  return Status::Ok();
}

// An ID outside the table would be an out-of-bounds gather (a device-side assert on CUDA).
Status CheckRange(const torch::Tensor& ids, int64_t size, std::string_view what, std::string_view table) {
  if (ids.numel() == 0) return Status::Ok();
  auto [lo, hi] = at::aminmax(ids);
  const int64_t min = lo.item<int64_t>(), max = hi.item<int64_t>();
  if (min < 0 || max >= size) {
    return OutOfRangeError(std::string(what) + ": ID " + std::to_string(min < 0 ? min : max) + " outside " +
                           std::string(table) + " [0, " + std::to_string(size) + ")");
  }
  return Status::Ok();
}

// The most negative finite value of the compute dtype (torch.finfo(dtype).min).
}  // namespace

const std::vector<std::string>& SupportedBertArchitectures() {
  // The encoder-only classes; BertLMHeadModel is a causal decoder (is_decoder), not supported.
  static const std::vector<std::string> kArchitectures = {
      "BertModel",
      "BertForMaskedLM",
      "BertForPreTraining",
      "BertForSequenceClassification",
      "BertForTokenClassification",
      "BertForQuestionAnswering",
      "BertForMultipleChoice",
      "BertForNextSentencePrediction",
  };
  return kArchitectures;
}

StatusOr<BertConfig> ParseBertConfig(std::string_view text, std::string_view source) {
  ADREC_ASSIGN_OR_RETURN(json j, ParseObject(text, source));

  BertConfig c;
  std::optional<std::string> model_type;
  ADREC_RETURN_IF_ERROR(ReadString(j, source, "model_type", &model_type));
  ADREC_RETURN_IF_ERROR(ReadArchitectures(j, source, &c.architectures));
  if (!model_type && c.architectures.empty()) {
    return InvalidArgumentError(std::string(source) + ": neither model_type nor architectures is given (" +
                                SupportedList() + ")");
  }
  if (model_type && *model_type != kModelType) {
    return UnimplementedError(std::string(source) + ": model_type '" + *model_type + "' is not supported (" +
                              SupportedList() + ")");
  }
  if (model_type) c.model_type = *model_type;
  const auto& supported = SupportedBertArchitectures();
  for (const auto& a : c.architectures) {
    if (std::find(supported.begin(), supported.end(), a) == supported.end()) {
      return UnimplementedError(std::string(source) + ": architecture '" + a + "' is not supported (" +
                                SupportedList() + ")");
    }
  }

  ADREC_RETURN_IF_ERROR(ReadInt(j, source, "vocab_size", &c.vocab_size));
  ADREC_RETURN_IF_ERROR(ReadInt(j, source, "hidden_size", &c.hidden_size));
  ADREC_RETURN_IF_ERROR(ReadInt(j, source, "num_hidden_layers", &c.num_hidden_layers));
  ADREC_RETURN_IF_ERROR(ReadInt(j, source, "num_attention_heads", &c.num_attention_heads));
  ADREC_RETURN_IF_ERROR(ReadInt(j, source, "intermediate_size", &c.intermediate_size));
  ADREC_RETURN_IF_ERROR(ReadInt(j, source, "max_position_embeddings", &c.max_position_embeddings));
  ADREC_RETURN_IF_ERROR(ReadInt(j, source, "type_vocab_size", &c.type_vocab_size));
  ADREC_RETURN_IF_ERROR(ReadDouble(j, source, "layer_norm_eps", &c.layer_norm_eps));
  if (!(c.layer_norm_eps > 0)) return FieldError(source, "layer_norm_eps", "must be positive");
  if (c.hidden_size % c.num_attention_heads != 0) {
    return InvalidArgumentError(std::string(source) + ": hidden_size " + std::to_string(c.hidden_size) +
                                " is not a multiple of num_attention_heads " + std::to_string(c.num_attention_heads));
  }

  std::optional<std::string> act;
  ADREC_RETURN_IF_ERROR(ReadString(j, source, "hidden_act", &act));
  if (act) {
    if (*act == "gelu") {
      c.hidden_act = BertActivation::kGelu;
    } else if (*act == "gelu_new" || *act == "gelu_pytorch_tanh") {
      c.hidden_act = BertActivation::kGeluTanh;
    } else if (*act == "relu") {
      c.hidden_act = BertActivation::kRelu;
    } else {
      return UnimplementedError(std::string(source) + ": hidden_act '" + *act +
                                "' is not supported (supported: gelu, gelu_new, gelu_pytorch_tanh, relu)");
    }
  }
  std::optional<std::string> positions;
  ADREC_RETURN_IF_ERROR(ReadString(j, source, "position_embedding_type", &positions));
  if (positions && *positions != "absolute") {
    return UnimplementedError(std::string(source) + ": position_embedding_type '" + *positions +
                              "' is not supported (supported: absolute)");
  }
  bool is_decoder = false, cross_attention = false;
  ADREC_RETURN_IF_ERROR(ReadBool(j, source, "is_decoder", &is_decoder));
  ADREC_RETURN_IF_ERROR(ReadBool(j, source, "add_cross_attention", &cross_attention));
  if (is_decoder || cross_attention) {
    return UnimplementedError(std::string(source) + ": " + (is_decoder ? "is_decoder" : "add_cross_attention") +
                              " is true; only bidirectional encoders are supported");
  }
  return c;
}

struct BertEncoder::Weights {
  struct Layer {
    torch::Tensor qkv_w, qkv_b;  // query, key and value stacked: one GEMM instead of three
    torch::Tensor attn_out_w, attn_out_b, attn_norm_w, attn_norm_b;
    torch::Tensor ffn_in_w, ffn_in_b, ffn_out_w, ffn_out_b, ffn_norm_w, ffn_norm_b;
  };
  BertConfig config;
  BertOptions options;
  torch::Tensor word, position, token_type, emb_norm_w, emb_norm_b;
  std::vector<Layer> layers;
};

StatusOr<BertEncoder> BertEncoder::Load(const fs::path& model_dir, const BertOptions& options) {
  const fs::path config_path = model_dir / "config.json";
  ADREC_ASSIGN_OR_RETURN(std::string text, ReadModelConfig(model_dir));
  ADREC_ASSIGN_OR_RETURN(BertConfig config, ParseBertConfig(text, config_path.string()));
  BertOptions resolved = options;
  ADREC_RETURN_IF_ERROR(ValidateOptions(config, &resolved));  // before reading megabytes of weights

  ADREC_ASSIGN_OR_RETURN(const fs::path weights_path, ModelWeightsPath(model_dir));
  ADREC_ASSIGN_OR_RETURN(auto tensors, tensor::LoadTensors(weights_path));
  return FromTensors(config, tensors, resolved, weights_path.string());
}

StatusOr<BertEncoder> BertEncoder::FromTensors(const BertConfig& config,
                                               const std::map<std::string, torch::Tensor>& tensors,
                                               const BertOptions& options, std::string_view source) {
  auto w = std::make_shared<Weights>();
  w->config = config;
  w->options = options;
  ADREC_RETURN_IF_ERROR(ValidateOptions(config, &w->options));

  // Task-head checkpoints (BertForMaskedLM, ...) nest the encoder under "bert."; BertModel's and
  // sentence-transformers' do not.
  std::string prefix;
  if (!tensors.count("embeddings.word_embeddings.weight")) {
    if (!tensors.count("bert.embeddings.word_embeddings.weight")) {
      return DataLossError(std::string(source) + ": tensor 'embeddings.word_embeddings.weight' is missing (also " +
                           "under the prefix 'bert.'): not a BERT checkpoint");
    }
    prefix = "bert.";
  }
  const int64_t h = config.hidden_size, ffn = config.intermediate_size;
  try {
    torch::InferenceMode guard;
    WeightReader r(tensors, prefix, source, w->options);
    ADREC_ASSIGN_OR_RETURN(w->word, r.Get("embeddings.word_embeddings.weight", {config.vocab_size, h}));
    ADREC_ASSIGN_OR_RETURN(w->position,
                           r.Get("embeddings.position_embeddings.weight", {config.max_position_embeddings, h}));
    ADREC_ASSIGN_OR_RETURN(w->token_type,
                           r.Get("embeddings.token_type_embeddings.weight", {config.type_vocab_size, h}));
    ADREC_ASSIGN_OR_RETURN(w->emb_norm_w, r.Get("embeddings.LayerNorm.weight", {h}));
    ADREC_ASSIGN_OR_RETURN(w->emb_norm_b, r.Get("embeddings.LayerNorm.bias", {h}));
    for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
      const std::string p = "encoder.layer." + std::to_string(i) + ".";
      Weights::Layer l;
      ADREC_ASSIGN_OR_RETURN(torch::Tensor qw, r.Get(p + "attention.self.query.weight", {h, h}));
      ADREC_ASSIGN_OR_RETURN(torch::Tensor qb, r.Get(p + "attention.self.query.bias", {h}));
      ADREC_ASSIGN_OR_RETURN(torch::Tensor kw, r.Get(p + "attention.self.key.weight", {h, h}));
      ADREC_ASSIGN_OR_RETURN(torch::Tensor kb, r.Get(p + "attention.self.key.bias", {h}));
      ADREC_ASSIGN_OR_RETURN(torch::Tensor vw, r.Get(p + "attention.self.value.weight", {h, h}));
      ADREC_ASSIGN_OR_RETURN(torch::Tensor vb, r.Get(p + "attention.self.value.bias", {h}));
      l.qkv_w = at::cat({qw, kw, vw}, 0);
      l.qkv_b = at::cat({qb, kb, vb}, 0);
      ADREC_ASSIGN_OR_RETURN(l.attn_out_w, r.Get(p + "attention.output.dense.weight", {h, h}));
      ADREC_ASSIGN_OR_RETURN(l.attn_out_b, r.Get(p + "attention.output.dense.bias", {h}));
      ADREC_ASSIGN_OR_RETURN(l.attn_norm_w, r.Get(p + "attention.output.LayerNorm.weight", {h}));
      ADREC_ASSIGN_OR_RETURN(l.attn_norm_b, r.Get(p + "attention.output.LayerNorm.bias", {h}));
      ADREC_ASSIGN_OR_RETURN(l.ffn_in_w, r.Get(p + "intermediate.dense.weight", {ffn, h}));
      ADREC_ASSIGN_OR_RETURN(l.ffn_in_b, r.Get(p + "intermediate.dense.bias", {ffn}));
      ADREC_ASSIGN_OR_RETURN(l.ffn_out_w, r.Get(p + "output.dense.weight", {h, ffn}));
      ADREC_ASSIGN_OR_RETURN(l.ffn_out_b, r.Get(p + "output.dense.bias", {h}));
      ADREC_ASSIGN_OR_RETURN(l.ffn_norm_w, r.Get(p + "output.LayerNorm.weight", {h}));
      ADREC_ASSIGN_OR_RETURN(l.ffn_norm_b, r.Get(p + "output.LayerNorm.bias", {h}));
      w->layers.push_back(std::move(l));
    }
  } catch (const c10::Error& e) {
    return FailedPreconditionError(std::string(source) + ": moving the weights to " + w->options.device.str() +
                                   " failed: " + e.what_without_backtrace());
  }
  return BertEncoder(std::move(w));
}

const BertConfig& BertEncoder::config() const { return weights_->config; }
const BertOptions& BertEncoder::options() const { return weights_->options; }

StatusOr<torch::Tensor> BertEncoder::Forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                             const torch::Tensor& token_type_ids) const {
  const Weights& w = *weights_;
  const BertConfig& c = w.config;
  ADREC_RETURN_IF_ERROR(CheckTokens(input_ids, "input_ids", {}, /*allow_bool=*/false));
  ADREC_RETURN_IF_ERROR(CheckTokens(attention_mask, "attention_mask", input_ids.sizes(), /*allow_bool=*/true));
  if (token_type_ids.defined()) {
    ADREC_RETURN_IF_ERROR(CheckTokens(token_type_ids, "token_type_ids", input_ids.sizes(), /*allow_bool=*/false));
  }
  const int64_t batch = input_ids.size(0), len = input_ids.size(1), h = c.hidden_size;
  if (len == 0) return InvalidArgumentError("input_ids: empty sequences (length 0)");
  if (len > w.options.max_length) {
    return OutOfRangeError("input_ids: sequence length " + std::to_string(len) + " exceeds max_length " +
                           std::to_string(w.options.max_length) + " (max_position_embeddings " +
                           std::to_string(c.max_position_embeddings) + "); truncate when tokenising");
  }
  const torch::Device device = w.options.device;
  const auto float_opts = torch::TensorOptions().device(device).dtype(w.options.dtype);
  if (batch == 0) return at::empty({0, len, h}, float_opts);
  try {
    torch::InferenceMode guard;
    const torch::Tensor ids = input_ids.to(device, torch::kLong);
    ADREC_RETURN_IF_ERROR(CheckRange(ids, c.vocab_size, "input_ids", "the vocabulary"));
    torch::Tensor x = at::embedding(w.word, ids) + w.position.narrow(0, 0, len).unsqueeze(0);
    if (token_type_ids.defined()) {
      const torch::Tensor types = token_type_ids.to(device, torch::kLong);
      ADREC_RETURN_IF_ERROR(CheckRange(types, c.type_vocab_size, "token_type_ids", "type_vocab_size"));
      x = x + at::embedding(w.token_type, types);
    } else {
      x = x + w.token_type[0];  // segment 0 everywhere: a broadcast add, no gather
    }
    x = at::layer_norm(x, {h}, w.emb_norm_w, w.emb_norm_b, c.layer_norm_eps);

    // Padded keys get the dtype's lowest value added (transformers' additive mask), so a row with
    // no real token averages uniformly instead of producing NaN. No padding: no mask, which lets
    // SDPA pick its fastest kernel (flash on CUDA).
    std::optional<torch::Tensor> bias;
    const torch::Tensor keep = attention_mask.to(device).ne(0);
    if (!keep.all().item<bool>()) {
      bias = at::zeros({batch, 1, 1, len}, float_opts)
                 .masked_fill(keep.logical_not().view({batch, 1, 1, len}), Lowest(w.options.dtype));
    }
    const int64_t heads = c.num_attention_heads, hd = c.head_dim();
    for (const Weights::Layer& l : w.layers) {
      // [B, L, 3H] -> 3 x [B, heads, L, head_dim] views (last dimension contiguous, as SDPA wants).
      torch::Tensor qkv = at::linear(x, l.qkv_w, l.qkv_b).view({batch, len, 3, heads, hd}).permute({2, 0, 3, 1, 4});
      torch::Tensor a = at::scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], bias);
      a = a.transpose(1, 2).reshape({batch, len, h});
      x = at::layer_norm(at::linear(a, l.attn_out_w, l.attn_out_b) + x, {h}, l.attn_norm_w, l.attn_norm_b,
                         c.layer_norm_eps);
      torch::Tensor f = at::linear(x, l.ffn_in_w, l.ffn_in_b);
      switch (c.hidden_act) {
        case BertActivation::kGelu: f = at::gelu(f); break;
        case BertActivation::kGeluTanh: f = at::gelu(f, "tanh"); break;
        case BertActivation::kRelu: f = at::relu(f); break;
      }
      x = at::layer_norm(at::linear(f, l.ffn_out_w, l.ffn_out_b) + x, {h}, l.ffn_norm_w, l.ffn_norm_b,
                         c.layer_norm_eps);
    }
    return x;
  } catch (const c10::Error& e) {
    return InternalError(std::string("BertEncoder::Forward: ") + e.what_without_backtrace());
  }
}

StatusOr<torch::Tensor> BertEncoder::Embed(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                           const BertEmbeddingOptions& options,
                                           const torch::Tensor& token_type_ids) const {
  ADREC_ASSIGN_OR_RETURN(torch::Tensor hidden, Forward(input_ids, attention_mask, token_type_ids));
  torch::InferenceMode guard;
  torch::Tensor pooled =
      options.pooling == BertPooling::kMean ? MeanPool(hidden, attention_mask) : ClsPool(hidden);
  return options.normalize ? L2Normalize(pooled) : pooled;
}

torch::Tensor MeanPool(const torch::Tensor& hidden, const torch::Tensor& attention_mask) {
  const torch::Tensor h = hidden.to(torch::kFloat32);
  const torch::Tensor m = attention_mask.to(h.device(), torch::kFloat32).unsqueeze(-1);
  return (h * m).sum(1) / m.sum(1).clamp_min(1e-9);
}

torch::Tensor ClsPool(const torch::Tensor& hidden) { return hidden.select(1, 0).to(torch::kFloat32); }

torch::Tensor L2Normalize(const torch::Tensor& x, double eps) {
  return x / x.norm(2, {-1}, /*keepdim=*/true).clamp_min(eps);
}

}  // namespace adrec::text
