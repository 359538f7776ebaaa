// Text features of the synthetic world: item texts and behaviour prompts, their embeddings
// reduced by PCA into a column the feature spec reads, and no valid/test behaviour in a prompt.
#include "adrec/text/text_features.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <map>

#include "adrec/core/file.h"
#include "adrec/data/synthetic.h"
#include "adrec/text/pca.h"

namespace adrec::text {
namespace {

data::Dataset SmallWorld() {
  data::SyntheticOptions o;
  o.users = 120;
  o.ads = 60;
  o.advertisers = 8;
  o.days = 6;
  o.impressions_per_user_day = 20;  // enough clicks that most users have some in train
  o.show_progress = false;
  auto ds = data::GenerateSyntheticWorld(o);
  EXPECT_TRUE(ds.ok()) << ds.status().ToString();
  return std::move(*ds);
}

TEST(TextFeatures, ItemTextsCarryTitleAndTaxonomy) {
  data::Dataset ds = SmallWorld();
  std::vector<std::string> texts = ItemTexts(ds);
  ASSERT_EQ(texts.size(), ds.num_items());
  const data::Column* title = ds.item_table.Find(data::cols::kTitle);
  ASSERT_NE(title, nullptr);
  EXPECT_EQ(texts[3].rfind(title->str[3], 0), 0u) << texts[3];  // starts with the title
  EXPECT_NE(texts[3].find("Category: "), std::string::npos) << texts[3];
  EXPECT_NE(texts[3].find(" › "), std::string::npos) << texts[3];
}

TEST(TextFeatures, PromptsUseOnlyTrainEventsNewestFirst) {
  data::Dataset ds = SmallWorld();
  data::SplitOptions so;
  so.method = "temporal";
  auto split = data::MakeSplit(ds, so);
  ASSERT_TRUE(split.ok()) << split.status().ToString();
  PromptTemplate t;
  t.max_events = 3;
  std::vector<std::string> all = UserPrompts(ds, nullptr, t), train = UserPrompts(ds, &*split, t);
  ASSERT_EQ(all.size(), ds.num_users());
  const data::Column* title = ds.item_table.Find(data::cols::kTitle);
  size_t with_text = 0, differ = 0;
  for (uint32_t u = 0; u < ds.num_users(); ++u) {
    auto [begin, end] = ds.UserRange(u);
    // The newest click of the user's train part is the prompt's first event.
    for (uint64_t e = end; e > begin; --e) {
      if (ds.events.action[e - 1] == static_cast<uint8_t>(data::Action::kClick) &&
          split->PartOf(e - 1) == data::SplitPart::kTrain) {
        const std::string first = train[u].substr(0, train[u].find(t.separator));
        EXPECT_NE(first.find(title->str[ds.events.item[e - 1]]), std::string::npos) << train[u];
        break;
      }
    }
    // Nothing from valid/test: the prompt holds as many events as the user's train part has
    // (up to max_events), and the unfiltered one as many as all parts have.
    size_t train_events = 0, all_events = 0;
    for (uint64_t e = begin; e < end; ++e) {
      const auto a = static_cast<data::Action>(ds.events.action[e]);
      if (std::find(t.actions.begin(), t.actions.end(), a) == t.actions.end()) continue;
      ++all_events;
      train_events += split->PartOf(e) == data::SplitPart::kTrain;
    }
    auto events_in = [&](const std::string& prompt) {
      if (prompt.empty()) return size_t{0};
      size_t n = 1;
      for (size_t pos = 0; (pos = prompt.find(t.separator, pos)) != std::string::npos; pos += t.separator.size()) ++n;
      return n;
    };
    EXPECT_EQ(events_in(train[u]), std::min(train_events, t.max_events)) << train[u];
    EXPECT_EQ(events_in(all[u]), std::min(all_events, t.max_events)) << all[u];
    with_text += !train[u].empty();
    differ += train[u] != all[u];
  }
  EXPECT_GT(with_text, ds.num_users() / 2);
  EXPECT_GT(differ, 0u);  // users whose latest behaviour lies in valid/test get an older prompt
}

TEST(TextFeatures, ColumnIsThePcaOfTheEmbeddingsAndFeedsTheSpec) {
  data::Dataset ds = SmallWorld();
  auto encoder = OpenTextEncoder(std::string(kHashedNgramModel));
  ASSERT_TRUE(encoder.ok()) << encoder.status().ToString();
  TextColumnOptions o;
  o.dim = 8;
  auto r = AddTextColumn(&ds, nullptr, **encoder, ItemTexts(ds), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ScopedTempDir dir("adrec-pca");
  ASSERT_TRUE(AtomicWriteFile(dir.path() / "p.safetensors", r->pca_safetensors).ok());
  std::map<std::string, std::string> meta;
  auto loaded = LoadPca(dir.path() / "p.safetensors", &meta);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(meta["encoder"], r->encoder);
  EXPECT_NEAR(loaded->explained, r->explained_variance, 1e-6);
  const Pca& pca = *loaded;
  EXPECT_EQ(r->dim, 8);
  EXPECT_EQ(r->fit_rows, ds.num_items());
  EXPECT_GT(r->explained_variance, 0.0);
  EXPECT_LE(r->explained_variance, 1.0);
  const data::Column* col = ds.item_table.Find("text_emb");
  ASSERT_NE(col, nullptr);
  ASSERT_EQ(col->type, data::ColumnType::kSparseVector);
  ASSERT_EQ(col->offsets.size(), ds.num_items() + 1u);
  // Row 5 is the PCA projection of item 5's embedding.
  auto emb = (*encoder)->Embed(std::vector<std::string>{ItemTexts(ds)[5]});
  torch::Tensor expected = pca.Transform(torch::from_blob(emb->data(), {1, (*encoder)->dim()}, torch::kFloat32)).squeeze(0);
  torch::Tensor got = torch::from_blob(const_cast<float*>(col->f32.data()) + col->offsets[5], {8}, torch::kFloat32);
  EXPECT_TRUE(torch::allclose(got, expected, 1e-4, 1e-5)) << got << expected;
  // Components are orthonormal.
  EXPECT_TRUE(torch::allclose(torch::matmul(pca.components, pca.components.t()), torch::eye(8), 1e-4, 1e-4));
  // Too many components for the rows is an error naming both.
  o.dim = 5000;
  auto too_many = AddTextColumn(&ds, nullptr, **encoder, ItemTexts(ds), o);
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.status().message().find("5000"), std::string::npos);
}

TEST(TextFeatures, PromptTemplateErrorsNameTheKey) {
  ScopedTempDir dir("adrec-prompt");
  auto write = [&](const std::string& body) {
    std::ofstream(dir.path() / "p.toml") << body;
    return ReadPromptTemplate(dir.path() / "p.toml");
  };
  auto ok = write("[prompt]\nmax_events = 5\nactions = [\"click\", \"download\"]\nevent = \"{action} {title}\"\n");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->max_events, 5u);
  EXPECT_EQ(ok->actions.size(), 2u);
  auto typo = write("[prompt]\nmax_event = 5\n");
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("max_event"), std::string::npos);
  auto placeholder = write("[prompt]\nevent = \"{verb} {title}\"\n");
  ASSERT_FALSE(placeholder.ok());
  EXPECT_NE(placeholder.status().message().find("{verb}"), std::string::npos);
  auto action = write("[prompt]\nactions = [\"clack\"]\n");
  ASSERT_FALSE(action.ok());
  EXPECT_NE(action.status().message().find("clack"), std::string::npos);
}

}  // namespace
}  // namespace adrec::text
