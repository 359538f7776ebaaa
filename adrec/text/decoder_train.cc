#include "adrec/text/decoder_train.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <random>

#include "adrec/core/file.h"
#include "adrec/core/log_line.h"
#include "adrec/core/progress.h"
#include "adrec/tensor/tensor_io.h"
#include "adrec/text/pre_tokenizer.h"
#include "adrec/text/unicode.h"

namespace adrec::text {
namespace {

using ordered_json = nlohmann::ordered_json;

// The parameters under transformers' names, and the forward pass LlamaModel runs (llama.cc):
// RMSNorm, rotate-half RoPE, grouped-query causal attention, SwiGLU; here with autograd.
struct Decoder {
  DecoderTrainOptions o;
  int64_t head_dim = 0;
  std::map<std::string, torch::Tensor> p;
  torch::Tensor inv_freq;

  explicit Decoder(const DecoderTrainOptions& opt) : o(opt), head_dim(opt.hidden / opt.heads) {
    auto normal = [](std::vector<int64_t> shape) { return (torch::randn(shape) * 0.02).requires_grad_(true); };
    auto ones = [](int64_t n) { return torch::ones({n}).requires_grad_(true); };
    const int64_t h = o.hidden, q = o.heads * head_dim, kv = o.kv_heads * head_dim, f = o.intermediate;
    p["model.embed_tokens.weight"] = normal({kByteVocab, h});
    p["model.norm.weight"] = ones(h);
    p["lm_head.weight"] = normal({kByteVocab, h});
    for (int64_t i = 0; i < o.layers; ++i) {
      const std::string l = "model.layers." + std::to_string(i) + ".";
      p[l + "input_layernorm.weight"] = ones(h);
      p[l + "post_attention_layernorm.weight"] = ones(h);
      p[l + "self_attn.q_proj.weight"] = normal({q, h});
      p[l + "self_attn.k_proj.weight"] = normal({kv, h});
      p[l + "self_attn.v_proj.weight"] = normal({kv, h});
      p[l + "self_attn.o_proj.weight"] = normal({h, q});
      p[l + "mlp.gate_proj.weight"] = normal({f, h});
      p[l + "mlp.up_proj.weight"] = normal({f, h});
      p[l + "mlp.down_proj.weight"] = normal({h, f});
    }
    inv_freq = 1.0 / torch::pow(10000.0, torch::arange(0, head_dim, 2, torch::kLong).to(torch::kFloat32) / head_dim);
  }

  static torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& w) {
    return w * (x * torch::rsqrt(x.pow(2).mean(-1, true) + 1e-6));
  }
  static torch::Tensor RotateHalf(const torch::Tensor& x) {
    const int64_t half = x.size(-1) / 2;
    return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  }

  torch::Tensor Logits(const torch::Tensor& ids) {  // [B, L] -> [B, L, V]
    const int64_t b = ids.size(0), len = ids.size(1), hd = head_dim;
    const torch::Tensor freqs = torch::arange(len, torch::kFloat32).unsqueeze(1) * inv_freq.unsqueeze(0);
    const torch::Tensor emb = torch::cat({freqs, freqs}, -1);
    const torch::Tensor cos = emb.cos().view({1, 1, len, hd}), sin = emb.sin().view({1, 1, len, hd});
    torch::Tensor x = torch::embedding(p["model.embed_tokens.weight"], ids);
    for (int64_t i = 0; i < o.layers; ++i) {
      const std::string l = "model.layers." + std::to_string(i) + ".";
      torch::Tensor hs = RmsNorm(x, p[l + "input_layernorm.weight"]);
      torch::Tensor q = torch::linear(hs, p[l + "self_attn.q_proj.weight"]).view({b, len, o.heads, hd}).transpose(1, 2);
      torch::Tensor k = torch::linear(hs, p[l + "self_attn.k_proj.weight"]).view({b, len, o.kv_heads, hd}).transpose(1, 2);
      torch::Tensor v = torch::linear(hs, p[l + "self_attn.v_proj.weight"]).view({b, len, o.kv_heads, hd}).transpose(1, 2);
      q = q * cos + RotateHalf(q) * sin;
      k = k * cos + RotateHalf(k) * sin;
      torch::Tensor a = at::scaled_dot_product_attention(q.contiguous(), k.contiguous(), v.contiguous(), std::nullopt, 0.0,
                                                         /*is_causal=*/true, std::nullopt, o.kv_heads != o.heads);
      x = x + torch::linear(a.transpose(1, 2).reshape({b, len, o.heads * hd}), p[l + "self_attn.o_proj.weight"]);
      hs = RmsNorm(x, p[l + "post_attention_layernorm.weight"]);
      x = x + torch::linear(torch::silu(torch::linear(hs, p[l + "mlp.gate_proj.weight"])) *
                                torch::linear(hs, p[l + "mlp.up_proj.weight"]),
                            p[l + "mlp.down_proj.weight"]);
    }
    return torch::linear(RmsNorm(x, p["model.norm.weight"]), p["lm_head.weight"]);
  }
};

ordered_json ConfigJson(const DecoderTrainOptions& o) {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"vocab_size", kByteVocab},
          {"hidden_size", o.hidden},
          {"intermediate_size", o.intermediate},
          {"num_hidden_layers", o.layers},
          {"num_attention_heads", o.heads},
          {"num_key_value_heads", o.kv_heads},
          {"head_dim", o.hidden / o.heads},
          {"max_position_embeddings", o.max_len},
          {"rms_norm_eps", 1e-6},
          {"rope_theta", 10000.0},
          {"hidden_act", "silu"},
          {"tie_word_embeddings", false},
          {"attention_bias", false},
          {"mlp_bias", false},
          {"bos_token_id", kByteBos},
          {"eos_token_id", kByteEos},
          {"pad_token_id", kBytePad},
          {"torch_dtype", "float32"}};
}

// Byte-level BPE without merges: each byte is its own token, as GPT-2's byte-to-character map
// spells it; no regex split and no prefix space, so a text's tokens are exactly its bytes.
ordered_json TokenizerJson() {
  ordered_json vocab = ordered_json::object();
  for (int b = 0; b < 256; ++b) {
    const char byte = static_cast<char>(b);
    vocab[EncodeUtf8(ByteLevelEncode(std::string_view(&byte, 1)))] = b;
  }
  ordered_json added = ordered_json::array();
  const std::pair<const char*, int64_t> specials[] = {{"<s>", kByteBos}, {"</s>", kByteEos}, {"<pad>", kBytePad}};
  for (const auto& [text, id] : specials) {
    added.push_back({{"id", id}, {"content", text}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                     {"normalized", false}, {"special", true}});
  }
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}},
          {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
                     {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
                     {"ignore_merges", false}, {"vocab", vocab}, {"merges", ordered_json::array()}}}};
}

}  // namespace

std::vector<int64_t> ByteTokens(std::string_view text) {
  std::vector<int64_t> out;
  out.reserve(text.size());
  for (char c : text) out.push_back(static_cast<unsigned char>(c));
  return out;
}

std::string ByteText(const std::vector<int64_t>& ids) {
  std::string out;
  for (int64_t id : ids) {
    if (id >= 0 && id < 256) out.push_back(static_cast<char>(id));
  }
  return out;
}

StatusOr<ordered_json> TrainByteDecoder(const std::vector<std::string>& texts, const std::filesystem::path& out,
                                        const DecoderTrainOptions& o) {
  if (texts.empty()) return InvalidArgumentError("no text to train the decoder on");
  if (o.hidden <= 0 || o.heads <= 0 || o.kv_heads <= 0 || o.hidden % o.heads != 0 || o.heads % o.kv_heads != 0 ||
      (o.hidden / o.heads) % 2 != 0 || o.layers <= 0 || o.intermediate <= 0 || o.max_len < 8 || o.steps <= 0 || o.batch <= 0) {
    return InvalidArgumentError("decoder sizes: hidden must split into heads of even width, heads into kv_heads; layers, "
                                "intermediate, steps and batch positive, max_len at least 8");
  }
  try {
    if (o.threads > 0) at::set_num_threads(o.threads);
    torch::manual_seed(o.seed);
    Decoder d(o);
    std::vector<torch::Tensor> params;
    int64_t n_params = 0;
    for (auto& [name, t] : d.p) {
      params.push_back(t);
      n_params += t.numel();
    }
    torch::optim::AdamW opt(params, torch::optim::AdamWOptions(o.lr).weight_decay(0.01));
    std::vector<std::vector<int64_t>> seqs;
    for (const std::string& t : texts) {
      std::vector<int64_t> s = {kByteBos};
      for (int64_t b : ByteTokens(t)) s.push_back(b);
      s.push_back(kByteEos);
      if (static_cast<int64_t>(s.size()) > o.max_len) s.resize(static_cast<size_t>(o.max_len));
      seqs.push_back(std::move(s));
    }
    std::mt19937_64 rng(o.seed);
    ProgressOptions po;
    po.unit = "steps";
    po.enabled = o.show_progress;
    Progress progress("decoder", static_cast<uint64_t>(o.steps), po);
    const auto start = std::chrono::steady_clock::now();
    double first_loss = 0, last_loss = 0, recent = 0;
    int64_t steps = 0;
    const int64_t warmup = std::max<int64_t>(1, o.steps / 20);
    for (; steps < o.steps; ++steps) {
      if (o.stop && o.stop->load()) break;
      std::vector<const std::vector<int64_t>*> batch;
      size_t len = 0;
      for (int64_t i = 0; i < o.batch; ++i) {
        batch.push_back(&seqs[rng() % seqs.size()]);
        len = std::max(len, batch.back()->size());
      }
      torch::Tensor ids = torch::full({o.batch, static_cast<int64_t>(len)}, kBytePad, torch::kLong);
      auto acc = ids.accessor<int64_t, 2>();
      for (size_t i = 0; i < batch.size(); ++i) {
        for (size_t j = 0; j < batch[i]->size(); ++j) acc[static_cast<int64_t>(i)][static_cast<int64_t>(j)] = (*batch[i])[j];
      }
      const double progress_share = static_cast<double>(steps) / static_cast<double>(o.steps);
      const double lr = steps < warmup ? o.lr * static_cast<double>(steps + 1) / static_cast<double>(warmup)
                                       : o.lr * (0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * progress_share)));
      for (auto& g : opt.param_groups()) g.options().set_lr(lr);
      const torch::Tensor logits = d.Logits(ids.narrow(1, 0, static_cast<int64_t>(len) - 1));
      const torch::Tensor target = ids.narrow(1, 1, static_cast<int64_t>(len) - 1);
      const torch::Tensor loss = torch::nn::functional::cross_entropy(
          logits.reshape({-1, kByteVocab}), target.reshape({-1}),
          torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kBytePad));
      opt.zero_grad();
      loss.backward();
      torch::nn::utils::clip_grad_norm_(params, 1.0);
      opt.step();
      const double l = loss.item<double>();
      if (!std::isfinite(l)) return DataLossError("decoder training diverged at step " + std::to_string(steps));
      if (steps == 0) first_loss = l;
      recent = steps == 0 ? l : 0.95 * recent + 0.05 * l;
      last_loss = l;
      progress.Add(1);
    }
    progress.Finish();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ADREC_ASSIGN_OR_RETURN(StagingDir stage, StagingDir::Create(out));
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    for (auto& [name, t] : d.p) tensors.emplace_back(name, t.detach().contiguous());
    ADREC_RETURN_IF_ERROR(tensor::SaveTensors(stage.path() / "model.safetensors", tensors, {{"format", "pt"}}));
    ADREC_RETURN_IF_ERROR(AtomicWriteFile(stage.path() / "config.json", ConfigJson(o).dump(2) + "\n"));
    ADREC_RETURN_IF_ERROR(AtomicWriteFile(stage.path() / "tokenizer.json", TokenizerJson().dump(2) + "\n"));
    ADREC_RETURN_IF_ERROR(AtomicWriteFile(
        stage.path() / "generation_config.json",
        ordered_json{{"bos_token_id", kByteBos}, {"eos_token_id", kByteEos}, {"pad_token_id", kBytePad}}.dump(2) + "\n"));
    ADREC_RETURN_IF_ERROR(stage.Commit(/*overwrite=*/true));
    return ordered_json{{"out", out.string()}, {"texts", texts.size()}, {"steps", steps}, {"seconds", seconds},
                        {"first_loss", first_loss}, {"last_loss", last_loss}, {"smoothed_loss", recent},
                        {"parameters", n_params}};
  } catch (const c10::Error& e) {
    return InternalError(std::string("decoder training: ") + e.what_without_backtrace());
  }
}

}  // namespace adrec::text
