#include "adrec/models/bundle.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "adrec/core/file.h"

namespace adrec::models {
namespace {

namespace fs = std::filesystem;

TEST(Bundle, WritesWeightsAndManifestAndReadsThemBack) {
  ScopedTempDir dir("bundle");
  const fs::path b = dir.path() / "b";
  nlohmann::ordered_json m = NewBundleManifest(kRankingBundle, "dcnv2");
  m["zeta"] = 1;
  m["alpha"] = 2;
  const torch::Tensor w = torch::arange(6, torch::kFloat32).view({2, 3});
  ASSERT_TRUE(WriteBundle(b, {{"dense/w", w}}, m).ok());
  auto j = ReadBundleManifest(b, kRankingBundle);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ((*j)["model"], "dcnv2");
  EXPECT_EQ((*j)["format_version"], kBundleFormatVersion);
  EXPECT_TRUE(j->contains("adrec_version"));
  auto t = ReadBundleWeights(b, torch::kCPU);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_TRUE(torch::equal(t->at("dense/w"), w));
  // An edit keeps the key order of the file.
  ASSERT_TRUE(EditBundleManifest(b, [](nlohmann::ordered_json& e) { e["metrics"] = {{"auc", 0.7}}; }).ok());
  auto text = ReadFile(b / kBundleManifestFile);
  ASSERT_TRUE(text.ok());
  EXPECT_LT(text->find("\"zeta\""), text->find("\"alpha\""));
  EXPECT_LT(text->find("\"alpha\""), text->find("\"metrics\""));
}

TEST(Bundle, BadManifestsNameTheFileAndTheProblem) {
  ScopedTempDir dir("bundle-bad");
  const fs::path b = dir.path() / "b";
  EXPECT_EQ(ReadBundleManifest(b, "").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(WriteBundle(b, {{"model/w", torch::zeros({2})}}, NewBundleManifest(kSequenceBundle, "sasrec")).ok());
  auto other = ReadBundleManifest(b, kRankingBundle);
  ASSERT_EQ(other.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(other.status().message().find("not a ranking bundle (kind 'sequence')"), std::string::npos)
      << other.status().message();

  struct Case { const char* json; StatusCode code; const char* want; };
  for (const Case& c : {Case{"{", StatusCode::kDataLoss, "not valid JSON"},
                        Case{"[1, 2]", StatusCode::kInvalidArgument, "not an adrec bundle manifest"},
                        Case{R"({"format": "adrec-bundle", "kind": 3, "model": "x", "format_version": 1})",
                             StatusCode::kDataLoss, "\"kind\" and \"model\" must be strings"},
                        Case{R"({"format": "adrec-bundle", "kind": "ranking", "model": "x", "format_version": 99})",
                             StatusCode::kInvalidArgument, "format_version 99 is not supported"},
                        Case{R"({"format": "adrec-bundle", "kind": "ranking", "model": "x", "format_version": "1"})",
                             StatusCode::kInvalidArgument, "format_version \"1\" is not supported"}}) {
    ASSERT_TRUE(AtomicWriteFile(b / kBundleManifestFile, c.json).ok());
    auto r = ReadBundleManifest(b, "");
    EXPECT_EQ(r.status().code(), c.code) << c.json;
    EXPECT_NE(r.status().message().find(c.want), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("manifest.json"), std::string::npos) << r.status().message();
  }
  fs::remove(b / kBundleWeightsFile);
  auto weights = ReadBundleWeights(b, torch::kCPU);
  ASSERT_EQ(weights.status().code(), StatusCode::kNotFound);
  EXPECT_NE(weights.status().message().find("model.safetensors"), std::string::npos);
  auto missing = ManifestString(nlohmann::json::object(), b, "config");
  EXPECT_EQ(missing.status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace adrec::models
