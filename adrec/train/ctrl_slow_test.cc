// CTRL end to end on a small synthetic world whose ads and users carry text-embedding columns
// (the built-in hashed n-gram encoder): the contrastive stage aligns, the bundle it leaves needs
// no text column to be evaluated, and bad [ctrl] settings name what is wrong.
#include "adrec/train/ctrl.h"

#include <gtest/gtest.h>

#include <fstream>

#include "adrec/core/config.h"
#include "adrec/core/file.h"
#include "adrec/data/dataset_io.h"
#include "adrec/data/synthetic.h"
#include "adrec/text/text_encoder.h"
#include "adrec/text/text_features.h"
#include "adrec/train/trainer.h"

namespace adrec::train {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFeatures = R"(
[data]
split = "temporal"
train_fraction = 0.8
valid_fraction = 0.1

[features]
samples = ["impression"]

[[features.fields]]
name = "user"
source = "user"
dim = 8

[[features.fields]]
name = "item"
source = "item"
dim = 8

[[features.fields]]
name = "cat2"
source = "item.cat2"
dim = 8

[[features.fields]]
name = "item_text"
source = "item.text_emb"
kind = "text"

[[features.fields]]
name = "user_text"
source = "user.text_emb"
kind = "text"

[[features.targets]]
name = "click"
rule = "follows"
action = "click"

[model]
name = "dcnv2"
cross_layers = 1
hidden = [32]

[train]
epochs = 2
batch_size = 512
)";

class CtrlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScopedTempDir("adrec-ctrl");
    data::SyntheticOptions o;
    // Busy users and a stronger signal (as the trainer's tests), so that two epochs learn.
    o.users = 1500;
    o.ads = 200;
    o.advertisers = 30;
    o.days = 7;
    o.impressions_per_user_day = 10;
    o.signal_scale = 1.5;
    o.show_progress = false;
    auto ds = data::GenerateSyntheticWorld(o);
    ASSERT_TRUE(ds.ok()) << ds.status().ToString();
    ASSERT_TRUE(data::WriteDataset(*ds, dir_->path() / "plain").ok());
    auto encoder = text::OpenTextEncoder(std::string(text::kHashedNgramModel));
    ASSERT_TRUE(encoder.ok()) << encoder.status().ToString();
    text::TextColumnOptions co;
    co.dim = 16;
    co.what = "items";
    ASSERT_TRUE(text::AddTextColumn(&*ds, nullptr, **encoder, text::ItemTexts(*ds), co).ok());
    co.what = "users";
    ASSERT_TRUE(text::AddTextColumn(&*ds, nullptr, **encoder, text::UserPrompts(*ds, nullptr, text::PromptTemplate{}), co).ok());
    ASSERT_TRUE(data::WriteDataset(*ds, dir_->path() / "text").ok());
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path Write(const std::string& name, const std::string& text) {
    fs::path p = dir_->path() / (name + ".toml");
    EXPECT_TRUE(AtomicWriteFile(p, text).ok());
    return p;
  }
  static TrainOptions Options(const fs::path& config, const std::string& out) {
    TrainOptions o;
    o.data = dir_->path() / "text";
    o.config = config;
    o.out = dir_->path() / out;
    o.threads = 1;
    o.show_progress = false;
    o.overwrite = true;
    return o;
  }
  static ScopedTempDir* dir_;
};
ScopedTempDir* CtrlTest::dir_ = nullptr;

TEST_F(CtrlTest, AlignsThenServesWithoutTheTextColumns) {
  const std::string ctrl = "\n[ctrl]\ntext_fields = [\"item_text\", \"user_text\"]\nepochs = 3\ntemperature = 0.1\n";
  auto r = TrainRanking(Options(Write("ctrl", std::string(kFeatures) + ctrl), "ctrl"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->contains("ctrl")) << r->dump();
  const auto& c = (*r)["ctrl"];
  const double first = c["first_loss"], last = c["last_epoch_loss"], chance = c["chance_loss"];
  // Chance is log B (every text scored alike); after three epochs the tabular side must pick
  // its own sample's text well above chance.
  EXPECT_LT(last, first - 1.0) << c.dump();
  EXPECT_LT(last, chance - 1.0) << c.dump();
  EXPECT_EQ(c["text_width"].get<int>(), 32);
  // Fine-tuned alone afterwards, the model learns the clicks (0.5 = nothing learned).
  EXPECT_GT((*r)["test"]["auc"].get<double>(), 0.62) << (*r)["test"].dump();

  // The bundle's features hold no text field: it is evaluated on the dataset without them.
  std::ifstream in(dir_->path() / "ctrl" / "manifest.json");
  const auto manifest = nlohmann::json::parse(in);
  for (const auto& f : manifest["feature_spec"]["fields"]) EXPECT_NE(f["kind"], "text") << f.dump();
  EXPECT_TRUE(manifest.contains("ctrl"));
  EvalOptions e;
  e.data = dir_->path() / "plain";
  e.bundle = dir_->path() / "ctrl";
  e.threads = 1;
  auto ev = EvaluateRanking(e);
  ASSERT_TRUE(ev.ok()) << ev.status().ToString();
  EXPECT_NEAR((*ev)["auc"].get<double>(), (*r)["test"]["auc"].get<double>(), 1e-9);
  // The cold/warm report splits the test items by their train samples.
  ASSERT_TRUE(ev->contains("items")) << ev->dump();
  const auto& items = (*ev)["items"];
  EXPECT_EQ(items["cold_threshold"].get<int>(), 5);
  EXPECT_EQ(items["cold"]["samples"].get<uint64_t>() + items["warm"]["samples"].get<uint64_t>(),
            (*ev)["samples"].get<uint64_t>());
}

TEST_F(CtrlTest, BadSettingsNameTheKey) {
  struct Case {
    std::string ctrl, expect;
  };
  const Case cases[] = {
      {"[ctrl]\nepochs = 2\n", "ctrl.text_fields"},
      {"[ctrl]\ntext_fields = [\"nope\"]\n", "'nope', which is not a field"},
      {"[ctrl]\ntext_fields = [\"cat2\"]\n", "'cat2', a categorical field"},
      {"[ctrl]\ntext_fields = [\"item_text\"]\ntemperature = 0\n", "ctrl.temperature"},
      {"[ctrl]\ntext_fields = [\"item_text\"]\nbatch_size = 1\n", "ctrl.batch_size"},
      {"[ctrl]\ntext_fields = [\"item_text\"]\nrepresentation = \"logits\"\n", "ctrl.representation"},
      {"[ctrl]\ntext_fields = [\"item_text\"]\nwarmup = 3\n", "ctrl.warmup"},
  };
  int i = 0;
  for (const Case& c : cases) {
    auto r = TrainRanking(Options(Write("bad" + std::to_string(i), std::string(kFeatures) + "\n" + c.ctrl), "bad" + std::to_string(i)));
    ++i;
    ASSERT_FALSE(r.ok()) << c.ctrl;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos) << c.ctrl << " -> " << r.status().ToString();
  }
  // Without the text columns the CTRL stage cannot read its fields: the error names the column.
  TrainOptions o = Options(
      Write("plain", std::string(kFeatures) + "\n[ctrl]\ntext_fields = [\"item_text\", \"user_text\"]\n"), "plain");
  o.data = dir_->path() / "plain";
  auto r = TrainRanking(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("text_emb"), std::string::npos) << r.status().ToString();
}

}  // namespace
}  // namespace adrec::train
