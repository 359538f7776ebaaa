// Tagging the synthetic world's ads with its taxonomy from their texts alone.
#include "adrec/text/tagging.h"

#include <gtest/gtest.h>

#include "adrec/data/synthetic.h"

namespace adrec::text {
namespace {

data::Dataset World() {
  data::SyntheticOptions o;
  o.users = 50;
  o.ads = 400;
  o.advertisers = 40;
  o.days = 2;
  o.show_progress = false;
  auto ds = data::GenerateSyntheticWorld(o);
  EXPECT_TRUE(ds.ok()) << ds.status().ToString();
  return std::move(*ds);
}

size_t Level1Nodes(const data::Dataset& ds) {
  size_t n = 0;
  for (const auto& node : ds.taxonomy.nodes) n += node.level == 1;
  return n;
}

TEST(Tagging, FewShotPrototypesBeatChanceAndSkipTheLabelledAds) {
  data::Dataset ds = World();
  auto encoder = OpenTextEncoder(std::string(kHashedNgramModel));
  ASSERT_TRUE(encoder.ok());
  TagOptions o;
  o.mode = "few-shot";
  o.shots = 3;
  auto r = TagTaxonomy(ds, **encoder, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GT(r->labelled, 0u);
  EXPECT_EQ(r->levels[0].evaluated + r->labelled, ds.num_items());
  const double chance = 1.0 / static_cast<double>(Level1Nodes(ds));
  EXPECT_GT(r->levels[0].accuracy(), 2 * chance) << "chance " << chance;
  // Deeper levels can only be as right as the path above them.
  EXPECT_LE(r->levels[1].correct, r->levels[0].correct);
  EXPECT_LE(r->levels[2].correct, r->levels[1].correct);
  for (const auto& path : r->predicted) {
    if (path[1]) {
      EXPECT_EQ(ds.taxonomy.nodes[path[1]].parent, path[0]);
    }
    if (path[2]) {
      EXPECT_EQ(ds.taxonomy.nodes[path[2]].parent, path[1]);
    }
  }
}

TEST(Tagging, TextsCarryNoTaxonomyAndMissingTruthIsAnError) {
  data::Dataset ds = World();
  for (const std::string& t : TaggingTexts(ds)) EXPECT_EQ(t.find("Category"), std::string::npos) << t;
  auto encoder = OpenTextEncoder(std::string(kHashedNgramModel));
  data::Dataset no_tax = ds;
  no_tax.taxonomy.nodes.clear();
  EXPECT_EQ(TagTaxonomy(no_tax, **encoder, {}).status().code(), StatusCode::kFailedPrecondition);
  TagOptions bad;
  bad.mode = "guess";
  EXPECT_EQ(TagTaxonomy(ds, **encoder, bad).status().code(), StatusCode::kInvalidArgument);
}

TEST(Tagging, CreativeAttributesFromTheTextBeatTheMajorityClass) {
  data::Dataset ds = World();
  auto encoder = OpenTextEncoder(std::string(kHashedNgramModel));
  ASSERT_TRUE(encoder.ok());
  TagOptions o;
  o.mode = "few-shot";
  o.shots = 20;  // the hooks of a type come in 8 phrasings (4 phrases, 2 languages)
  auto r = TagAttributes(ds, **encoder, {"text_type", "lang"}, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  for (const AttributeResult& a : *r) {
    EXPECT_EQ(a.evaluated_count + a.labelled, ds.num_items()) << a.column;
    // The hook phrase names the text type and the script gives the language away: reading the
    // copy must beat always answering the most frequent class.
    EXPECT_GT(a.accuracy(), a.majority_accuracy() + 0.08) << a.column << " " << a.accuracy() << " vs " << a.majority_accuracy();
    for (uint32_t p : a.predicted) EXPECT_TRUE(p >= 1 && p <= a.classes.size()) << a.column;
  }
  EXPECT_GT((*r)[1].accuracy(), 0.9) << "lang";
  auto bad = TagAttributes(ds, **encoder, {"title"}, o);  // a string column
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'title'"), std::string::npos) << bad.status().ToString();
  EXPECT_FALSE(TagAttributes(ds, **encoder, {"no_such_column"}, o).ok());
}

}  // namespace
}  // namespace adrec::text
