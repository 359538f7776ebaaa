// The C++ models against their plain PyTorch twins (bench/reference/ranking_models.py) on the
// same weights and inputs, as llama.cpp checks each backend against a reference.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "adrec/core/testing.h"
#include "adrec/models/model.h"
#include "adrec/models/split_moe.h"
#include "adrec/models/testing.h"
#include "adrec/tensor/tensor_io.h"

namespace adrec::models {
namespace {

std::string Json(const std::vector<int>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}
std::string Json(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", \"" : "\"") + v[i] + "\"";
  return s + "]";
}
std::string ShapeJson(const ModelShape& s) {
  return "{\"sparse_dims\": " + Json(s.sparse_dims) + ", \"dense_width\": " + std::to_string(s.dense_width) +
         ", \"text_dims\": " + Json(s.text_dims) + ", \"targets\": " + Json(s.targets) +
         ", \"num_scenes\": " + std::to_string(s.num_scenes) + ", \"sparse_names\": " + Json(s.sparse_names) +
         ", \"sparse_sources\": " + Json(s.sparse_sources) + ", \"text_names\": " + Json(s.text_names) +
         ", \"text_sources\": " + Json(s.text_sources) + "}";
}

struct Variant {
  Variant(std::string m, std::string t, std::vector<double> imp = {})
      : model(std::move(m)), toml(std::move(t)), importance(std::move(imp)) {}
  std::string model, toml;
  std::vector<double> importance;  // split_moe: re-partition before the comparison
};

TEST(PythonTwin, SameLogitsOnSameWeights) {
  if (std::string why = testing::PythonTwinUnavailable(); !why.empty()) ADREC_SKIP_WITHOUT_REFERENCE(why);
  const std::vector<Variant> variants = {
      {"lr", ""},
      {"fm", ""},
      {"deepfm", "[model]\nhidden = [16, 8]\nnorm = \"batch\"\ndropout = 0.3\n"},
      {"dcnv2", "[model]\ncross_layers = 2\nhidden = [16]\n"},
      {"dcnv2", "[model]\nstructure = \"parallel\"\nlow_rank = 3\nhidden = [16, 8]\nnorm = \"layer\"\n"},
      {"mmoe", "[model]\nnum_experts = 3\nexpert_hidden = [8]\ntower_hidden = [4]\nscene_dim = 2\n"},
      {"ple", "[model]\nlevels = 3\nshared_experts = 2\nspecific_experts = 1\nexpert_hidden = [8, 6]\ntower_hidden = []\n"},
      {"split_moe", "[model]\nnum_experts = 3\nexpert_hidden = [8]\nnorm = \"batch\"\n"},
      {"split_moe", "[ranker]\ngroups = [[\"ad\", \"text0\"], [\"user\", \"item\", \"dense\"]]\nexpert_hidden = [8]\n"},
      {"split_moe", "[model]\nnum_experts = 2\nexpert_hidden = [8]\n", {0.5, 0.1, 0.9, 0.3, 0.7}},
      {"two_tower", "[model]\nhidden = [8]\ndim = 3\n"},  // towers by source: item and ad fields, item text
      {"two_tower", "[model]\nhidden = [8, 6]\ndim = 2\nnorm = \"layer\"\nitem_fields = [\"ad\"]\n"},
  };
  const auto root = std::filesystem::temp_directory_path() / ("adrec_models_reference_" + std::to_string(getpid()));
  std::filesystem::remove_all(root);
  std::vector<std::string> dirs;
  torch::manual_seed(31);
  ModelShape shape = testing::SmallShape(2);
  shape.sparse_sources = {"user", "item", "item.advertiser"};
  shape.text_names = {"title"};
  shape.text_sources = {"item.title"};
  for (size_t v = 0; v < variants.size(); ++v) {
    const Variant& var = variants[v];
    const std::string section = var.toml.rfind("[ranker]", 0) == 0 ? "ranker" : "model";
    Config cfg = testing::MustParse(var.toml);
    auto made = MakeRankingModel(var.model, shape, cfg, section);
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    std::shared_ptr<RankingModel> model = *made;
    std::map<std::string, std::string> meta = {
        {"kind", var.model}, {"section", section}, {"config", var.toml}, {"shape", ShapeJson(shape)}};
    if (!var.importance.empty()) {
      auto split = std::dynamic_pointer_cast<SplitMoeModel>(model);
      ASSERT_TRUE(split->SetFieldImportance(var.importance).ok());
      std::string groups = "[";
      for (size_t g = 0; g < split->groups().size(); ++g) groups += (g ? ", " : "") + Json(split->groups()[g]);
      meta["groups"] = groups + "]";
    }
    // Random weights everywhere (zero biases and unit columns would hide a swapped name), and
    // batch-norm statistics that are not the identity.
    std::vector<std::pair<std::string, torch::Tensor>> weights;
    {
      torch::NoGradGuard ng;
      for (auto& p : model->named_parameters()) {
        p.value().copy_(torch::randn_like(p.value()) * 0.5);
        weights.emplace_back(p.key(), p.value().detach());
      }
      for (auto& b : model->named_buffers()) {
        if (b.key().find("running_mean") != std::string::npos) b.value().normal_();
        if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 2.0);
        weights.emplace_back(b.key(), b.value());
      }
    }
    model->eval();
    embedding::ModelInput in = testing::RandomInput(shape, 16);
    torch::Tensor expected = model->forward(in).detach();
    std::vector<std::pair<std::string, torch::Tensor>> inputs;
    for (size_t i = 0; i < in.sparse.size(); ++i) inputs.emplace_back("sparse." + std::to_string(i), in.sparse[i]);
    inputs.emplace_back("dense", in.dense);
    for (size_t i = 0; i < in.text.size(); ++i) inputs.emplace_back("text." + std::to_string(i), in.text[i]);
    inputs.emplace_back("linear", in.linear);
    inputs.emplace_back("scene", in.scene);
    inputs.emplace_back("expected", expected);
    const auto dir = root / (std::to_string(v) + "_" + var.model);
    std::filesystem::create_directories(dir);
    Status s = tensor::SaveTensors(dir / "inputs.safetensors", inputs, meta);
    ASSERT_TRUE(s.ok()) << s.ToString();
    s = tensor::SaveTensors(dir / "weights.safetensors", weights);
    ASSERT_TRUE(s.ok()) << s.ToString();
    dirs.push_back(dir.string());
  }
  testing::ExpectTwinAgrees("ranking_models.py", dirs, 1e-5);
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace adrec::models
