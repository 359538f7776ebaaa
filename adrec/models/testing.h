// Shared helpers of the models' tests: a small model shape, random inputs, configs from text,
// and the check of the plain PyTorch twins in bench/reference/.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "adrec/core/build_paths.h"
#include "adrec/core/config.h"
#include "adrec/core/process.h"
#include "adrec/models/model.h"
#include "adrec/embedding/input.h"

namespace adrec::models::testing {

// 3 sparse fields of dim 4 (user, item, ad), dense width 3, one text field of 5, 3 scenes.
inline ModelShape SmallShape(int targets = 2) {
  ModelShape s;
  s.sparse_dims = {4, 4, 4};
  s.sparse_names = {"user", "item", "ad"};
  s.dense_width = 3;
  s.text_dims = {5};
  const char* names[] = {"click", "download", "conversion"};
  for (int t = 0; t < targets; ++t) s.targets.push_back(names[t % 3]);
  s.num_scenes = 3;
  return s;
}

// Normal features, linear terms and uniform scenes, from torch's global generator.
inline embedding::ModelInput RandomInput(const ModelShape& shape, int64_t batch, torch::Device device = torch::kCPU) {
  embedding::ModelInput in;
  auto f = torch::TensorOptions().dtype(torch::kFloat32);
  for (int d : shape.sparse_dims) in.sparse.push_back(torch::randn({batch, d}, f).to(device));
  in.dense = torch::randn({batch, shape.dense_width}, f).to(device);
  for (int d : shape.text_dims) in.text.push_back(torch::randn({batch, d}, f).to(device));
  in.linear = torch::randn({batch, 1}, f).to(device);
  in.scene = torch::randint(0, shape.num_scenes, {batch}, torch::kInt64).to(device);
  return in;
}

inline embedding::ModelInput ToDevice(const embedding::ModelInput& in, torch::Device device) {
  embedding::ModelInput out = in.MapFeatures([&](const torch::Tensor& t) { return t.to(device); });
  out.scene = in.scene.to(device);
  return out;
}

inline Config MustParse(const std::string& toml) {
  auto c = Config::Parse(toml);
  if (!c.ok()) throw std::runtime_error(c.status().ToString());
  return std::move(c).value();
}

inline std::shared_ptr<RankingModel> MustMake(const std::string& name, const ModelShape& shape, const std::string& toml) {
  Config cfg = MustParse(toml);
  auto m = MakeRankingModel(name, shape, cfg);
  if (!m.ok()) throw std::runtime_error(m.status().ToString());
  return *m;
}

// Empty when the venv's Python imports torch and safetensors, else why not (the twin tests skip).
inline std::string PythonTwinUnavailable() {
  std::string probe;
  if (RunCommand(std::string("'") + adrec::build_paths::Python() + "' -c 'import torch, safetensors'", &probe) == 0) return "";
  return std::string(adrec::build_paths::Python()) + " cannot import torch and safetensors (run scripts/setup): " + probe;
}

// Runs bench/reference/<script> --tol `tol` --check DIR... and expects success with one
// "max_abs_diff=" line per directory (nothing was skipped).
inline void ExpectTwinAgrees(const std::string& script, const std::vector<std::string>& dirs, double tol) {
  std::string command = std::string("'") + adrec::build_paths::Python() + "' '" + adrec::build_paths::SourceDir() + "/bench/reference/" + script +
                        "' --tol " + std::to_string(tol) + " --check";
  for (const auto& d : dirs) command += " '" + d + "'";
  std::string output;
  const int rc = RunCommand(command, &output);
  std::cout << output;
  EXPECT_EQ(rc, 0) << output;
  size_t lines = 0;
  for (size_t pos = 0; (pos = output.find("max_abs_diff=", pos)) != std::string::npos; ++pos) ++lines;
  EXPECT_EQ(lines, dirs.size()) << output;
}

}  // namespace adrec::models::testing
