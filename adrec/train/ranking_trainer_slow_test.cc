// The trainer end to end on a small synthetic world: quality against the generator's ground
// truth, --resume reproducing an uninterrupted run, bundles Python can read, and each fault
// (bad config, NaN loss, corrupt or foreign checkpoint) giving a clear error.
#include "adrec/core/testing.h"
#include "adrec/train/trainer.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <regex>

#include "adrec/core/build_paths.h"
#include "adrec/core/file.h"
#include "adrec/data/dataset_io.h"
#include "adrec/data/synthetic.h"

namespace adrec::train {
namespace {

namespace fs = std::filesystem;

// One small world shared by the tests (generating and writing it takes ~1 s).
class TrainerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScopedTempDir("adrec-trainer");
    data::SyntheticOptions o;
    // Busy users and a stronger signal, so a few epochs on ~100k impressions show learning.
    o.users = 1500;
    o.ads = 200;
    o.advertisers = 30;
    o.days = 7;
    o.impressions_per_user_day = 10;
    o.signal_scale = 1.5;
    o.show_progress = false;
    auto ds = data::GenerateSyntheticWorld(o);
    ASSERT_TRUE(ds.ok()) << ds.status().ToString();
    ASSERT_TRUE(data::WriteDataset(*ds, dir_->path() / "world").ok());
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path World() { return dir_->path() / "world"; }

  // The repo's config for `model`, with `[train]` keys replaced.
  static fs::path Config(const std::string& model, const std::map<std::string, std::string>& train,
                         const std::string& name) {
    auto text = ReadFile(fs::path(adrec::build_paths::SourceDir()) / "configs" / ("synthetic_" + model + ".toml"));
    EXPECT_TRUE(text.ok());
    std::string s = *text;
    for (const auto& [k, v] : train) {
      std::regex line("(^|\\n)" + k + " = [^\\n]*");
      if (std::regex_search(s, line)) s = std::regex_replace(s, line, "$1" + k + " = " + v);
      else s = std::regex_replace(s, std::regex("\\[train\\]\\n"), "[train]\n" + k + " = " + v + "\n");
    }
    fs::path p = dir_->path() / (name + ".toml");
    EXPECT_TRUE(AtomicWriteFile(p, s).ok());
    return p;
  }

  static TrainOptions Options(const fs::path& config, const std::string& out) {
    TrainOptions o;
    o.data = World();
    o.config = config;
    o.out = dir_->path() / out;
    o.threads = 1;  // bit-exact comparisons between runs
    o.show_progress = false;
    o.overwrite = true;
    return o;
  }

  static ScopedTempDir* dir_;
};
ScopedTempDir* TrainerTest::dir_ = nullptr;

TEST_F(TrainerTest, Dcnv2LearnsTheClickModelAndBeatsLr) {
  auto dcn = TrainRanking(Options(Config("dcnv2", {{"epochs", "3"}}, "dcn"), "dcn"));
  ASSERT_TRUE(dcn.ok()) << dcn.status().ToString();
  const auto& test = (*dcn)["test"];
  const double auc = test["auc"], bayes = test["bayes_auc"];
  // The ceiling is the generator's own probabilities; a model that learned nothing sits at 0.5
  // and the popularity of scenes and positions alone gives about 0.6.
  EXPECT_GT(auc, 0.68) << test.dump();
  EXPECT_LT(auc, bayes + 0.01) << test.dump();
  EXPECT_TRUE(test["targets"].contains("conversion"));
  EXPECT_TRUE(test["scenes"].contains("feed"));

  auto lr = TrainRanking(Options(Config("lr", {{"epochs", "3"}}, "lr"), "lr"));
  ASSERT_TRUE(lr.ok()) << lr.status().ToString();
  EXPECT_GT(auc, (*lr)["test"]["auc"].get<double>()) << "dcnv2 " << auc << " vs lr " << (*lr)["test"]["auc"];

  // eval on the bundle from disk reproduces the trainer's test figure.
  EvalOptions eo;
  eo.data = World();
  eo.bundle = dir_->path() / "dcn";
  eo.threads = 1;
  auto ev = EvaluateRanking(eo);
  ASSERT_TRUE(ev.ok()) << ev.status().ToString();
  EXPECT_DOUBLE_EQ((*ev)["auc"].get<double>(), auc);
  for (const char* k : {"auc", "gauc", "logloss", "ne"}) EXPECT_TRUE(ev->contains(k)) << k;
}

TEST_F(TrainerTest, ResumeReproducesAnUninterruptedRun) {
  const fs::path cfg = Config("dcnv2", {{"epochs", "2"}, {"checkpoint_every", "5"}}, "resume");
  auto full = TrainRanking(Options(cfg, "full"));
  ASSERT_TRUE(full.ok()) << full.status().ToString();

  TrainOptions first = Options(cfg, "split");
  first.max_steps = 7;  // stops mid-epoch, between checkpoints
  auto part = TrainRanking(first);
  ASSERT_TRUE(part.ok()) << part.status().ToString();
  EXPECT_EQ((*part)["stopped"], "max_steps");
  EXPECT_TRUE(fs::exists(first.out / "checkpoint" / "trainer.json"));

  TrainOptions second = Options(cfg, "split");
  second.resume = true;
  second.overwrite = false;
  auto rest = TrainRanking(second);
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  EXPECT_EQ((*rest)["steps"], (*full)["steps"]);
  EXPECT_DOUBLE_EQ((*rest)["test"]["auc"].get<double>(), (*full)["test"]["auc"].get<double>());
  EXPECT_DOUBLE_EQ((*rest)["test"]["logloss"].get<double>(), (*full)["test"]["logloss"].get<double>());
}

TEST_F(TrainerTest, RunsOnTwoThreadsAreBitReproducible) {
  // Our parallel loops (pooling, per-table optimiser steps) and the batch pool split work so
  // that no float sum depends on thread timing; two runs must give the same weights, byte for byte.
  const fs::path cfg = Config("mmoe_ids", {{"epochs", "1"}}, "threads2");
  std::string weights[2];
  double auc[2];
  for (int run = 0; run < 2; ++run) {
    TrainOptions o = Options(cfg, "threads2-" + std::to_string(run));
    o.threads = 2;
    auto r = TrainRanking(o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    auc[run] = (*r)["test"]["targets"]["conversion"]["auc"];
    auto w = ReadFile(o.out / "model.safetensors");
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    weights[run] = std::move(*w);
  }
  EXPECT_EQ(auc[0], auc[1]);
  ASSERT_FALSE(weights[0].empty());
  EXPECT_TRUE(weights[0] == weights[1]) << "model.safetensors differs between two 2-thread runs";
}

TEST_F(TrainerTest, MeanAucSelectionKeepsTheEvaluationWithTheBestMeanOverTargets) {
  // Stopped at step 100 of 166, where click still improves and the mean over targets does not.
  const fs::path cfg = Config("mmoe", {{"epochs", "2"}, {"eval_every", "10"}, {"patience", "20"}, {"select", "\"mean_auc\""}},
                              "select");
  TrainOptions o = Options(cfg, "select");
  o.max_steps = 100;
  auto r = TrainRanking(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["select"], "mean_auc");
  // Recompute the choice from the metrics log: the mean AUC over click, download, conversion.
  std::ifstream log(o.out / "metrics.jsonl");
  std::string line;
  double best = -1, best_conversion = -1, best_primary = -1;
  int64_t best_step = -1, evals = 0, primary_step = -1;
  while (std::getline(log, line)) {
    const auto j = nlohmann::json::parse(line);
    const auto& t = j["valid"]["targets"];
    const double conversion = t["conversion"]["auc"];
    const double mean = (t["click"]["auc"].get<double>() + t["download"]["auc"].get<double>() + conversion) / 3;
    if (mean > best) best = mean, best_step = j["step"], best_conversion = conversion;
    if (j["valid"]["auc"].get<double>() > best_primary) best_primary = j["valid"]["auc"], primary_step = j["step"];
    ++evals;
  }
  ASSERT_GE(evals, 5);
  EXPECT_EQ((*r)["best_step"].get<int64_t>(), best_step) << "primary_auc would keep step " << primary_step;
  // The bundle holds that evaluation's weights and figures.
  auto manifest = nlohmann::json::parse(*ReadFile(o.out / "manifest.json"));
  EXPECT_DOUBLE_EQ(manifest["metrics"]["valid"]["targets"]["conversion"]["auc"].get<double>(), best_conversion);
  if (best_step == primary_step) GTEST_LOG_(WARNING) << "both rules kept step " << best_step << ": the check did not tell them apart";

  auto bad = TrainRanking(Options(Config("mmoe", {{"select", "\"best_guess\""}}, "select-bad"), "select-bad"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("best_guess"), std::string::npos) << bad.status().ToString();
}

TEST_F(TrainerTest, InterruptWritesACheckpointAndReturnsCancelled) {
  std::atomic<bool> stop{true};  // as if SIGINT arrived before the first step ended
  TrainOptions o = Options(Config("fm", {{"epochs", "1"}}, "stop"), "stop");
  o.stop = &stop;
  auto r = TrainRanking(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled);
  EXPECT_NE(r.status().message().find("--resume"), std::string::npos);
  EXPECT_TRUE(fs::exists(o.out / "checkpoint" / "state.safetensors"));
}

TEST_F(TrainerTest, BundleLoadsInPythonSafetensors) {
  auto r = TrainRanking(Options(Config("deepfm", {{"epochs", "1"}}, "py"), "py"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const fs::path weights = dir_->path() / "py" / "model.safetensors";
  const fs::path out = dir_->path() / "py-keys.txt";
  const std::string cmd = std::string(adrec::build_paths::Python()) +
                          " -c \"import sys; from safetensors.numpy import load_file; t = load_file(sys.argv[1]); "
                          "print(len(t), int(any(k.startswith('emb/') for k in t)), int(any(k.startswith('dense/') for k in t)))\" " +
                          weights.string() + " > " + out.string();
  if (std::system((std::string(adrec::build_paths::Python()) + " -c 'import safetensors' 2>/dev/null").c_str()) != 0) {
    ADREC_SKIP_WITHOUT_REFERENCE(std::string(adrec::build_paths::Python()) + " cannot import safetensors (run scripts/setup)");
  }
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  auto text = ReadFile(out);
  ASSERT_TRUE(text.ok());
  int n = 0, emb = 0, dense = 0;
  std::sscanf(text->c_str(), "%d %d %d", &n, &emb, &dense);
  EXPECT_GT(n, 10);
  EXPECT_EQ(emb, 1);
  EXPECT_EQ(dense, 1);
  auto manifest = ReadFile(dir_->path() / "py" / "manifest.json");
  ASSERT_TRUE(manifest.ok());
  auto j = nlohmann::json::parse(*manifest);
  EXPECT_EQ(j["format"], "adrec-bundle");
  EXPECT_EQ(j["model"], "deepfm");
  EXPECT_TRUE(j["metrics"].contains("test"));
}

TEST_F(TrainerTest, ConfigErrorsNameTheProblem) {
  // An unknown source, an unknown key and an unknown model.
  auto bad_source = Config("lr", {}, "bad-source");
  {
    auto s = ReadFile(bad_source);
    std::string t = std::regex_replace(*s, std::regex("source = \"user.age\""), "source = \"user.shoe_size\"");
    ASSERT_TRUE(AtomicWriteFile(bad_source, t).ok());
  }
  auto r = TrainRanking(Options(bad_source, "bad1"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("shoe_size"), std::string::npos) << r.status().ToString();

  auto r2 = TrainRanking(Options(Config("dcnv2", {{"epochz", "2"}}, "bad-key"), "bad2"));
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("epochz"), std::string::npos) << r2.status().ToString();

  auto unknown = Config("dcnv2", {}, "bad-model");
  {
    auto s = ReadFile(unknown);
    ASSERT_TRUE(AtomicWriteFile(unknown, std::regex_replace(*s, std::regex("name = \"dcnv2\""), "name = \"dcnv9\"")).ok());
  }
  auto r3 = TrainRanking(Options(unknown, "bad3"));
  ASSERT_FALSE(r3.ok());
  EXPECT_NE(r3.status().message().find("dcnv9"), std::string::npos) << r3.status().ToString();

  TrainOptions missing = Options(Config("lr", {}, "missing"), "bad4");
  missing.data = dir_->path() / "no-such-dataset";
  auto r4 = TrainRanking(missing);
  ASSERT_FALSE(r4.ok());
  EXPECT_NE(r4.status().message().find("no-such-dataset"), std::string::npos) << r4.status().ToString();
}

TEST_F(TrainerTest, DivergenceStopsAndKeepsTheLastGoodCheckpoint) {
  // A learning rate this large overflows the weights within a few steps.
  const fs::path cfg = Config("dcnv2", {{"epochs", "2"}, {"lr", "1e30"}, {"embedding_lr", "1e30"}, {"checkpoint_every", "1"}},
                              "nan");
  auto r = TrainRanking(Options(cfg, "nan"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
  EXPECT_NE(r.status().message().find("diverged"), std::string::npos) << r.status().ToString();
  EXPECT_TRUE(fs::exists(dir_->path() / "nan" / "checkpoint" / "state.safetensors"));
}

TEST_F(TrainerTest, CorruptOrForeignCheckpointIsAnError) {
  const fs::path cfg = Config("fm", {{"epochs", "1"}}, "ck");
  TrainOptions o = Options(cfg, "ck");
  o.max_steps = 3;
  ASSERT_TRUE(TrainRanking(o).ok());

  // Another model's config cannot resume this checkpoint.
  TrainOptions foreign = Options(Config("deepfm", {{"epochs", "1"}}, "ck2"), "ck");
  foreign.resume = true;
  auto r = TrainRanking(foreign);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'fm'"), std::string::npos) << r.status().ToString();

  // A flipped byte in the weights' header.
  const fs::path state = o.out / "checkpoint" / "state.safetensors";
  {
    std::fstream f(state, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(12);
    f.put('\x01');
  }
  TrainOptions again = Options(cfg, "ck");
  again.resume = true;
  auto r2 = TrainRanking(again);
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("state.safetensors"), std::string::npos) << r2.status().ToString();
}

TEST_F(TrainerTest, ExistingBundleIsNotOverwrittenByDefault) {
  const fs::path cfg = Config("lr", {{"epochs", "1"}}, "keep");
  ASSERT_TRUE(TrainRanking(Options(cfg, "keep")).ok());
  TrainOptions o = Options(cfg, "keep");
  o.overwrite = false;
  auto r = TrainRanking(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(fs::exists(o.out / "model.safetensors"));
}

}  // namespace
}  // namespace adrec::train
