#include "adrec/creative/variants.h"

#include <gtest/gtest.h>

#include <map>

#include "adrec/core/file.h"
#include "adrec/data/synthetic.h"

namespace adrec::creative {
namespace {

const std::vector<std::string> kOwn = {"Star Quest: loved by 10 million users, install now",
                                       "Star Quest brings you raids. Rated 4.9 stars — play free"};

TEST(CreativeFilter, LengthBannedWordsAndClaims) {
  FilterOptions f;
  EXPECT_EQ(RejectCreative("Star Quest: why wait? Install now", kOwn, f), std::nullopt);
  EXPECT_EQ(*RejectCreative("Hi", kOwn, f), "length 2 characters, outside [8, 90]");
  EXPECT_NE(RejectCreative(std::string(91, 'a'), kOwn, f), std::nullopt);
  EXPECT_EQ(*RejectCreative("Star Quest: guaranteed wins", kOwn, f), "banned word 'guaranteed'");
  EXPECT_EQ(RejectCreative("Star Quest: no guarantees here", kOwn, f).value_or(""), "")
      << "a banned word counts as a whole word only";
  EXPECT_EQ(*RejectCreative("星际探险：保证赢", kOwn, f), "banned word '保证'");
  // A claim the ad's own texts make passes; one they do not make is refused.
  EXPECT_EQ(RejectCreative("Loved by 10 million users — Star Quest", kOwn, f), std::nullopt);
  EXPECT_EQ(*RejectCreative("Star Quest: 50% off. Install now", kOwn, f),
            "unsupported claim '50% off': the ad's catalogue texts do not make it");
  EXPECT_NE(RejectCreative("Star Quest: editor's choice", kOwn, f), std::nullopt);
  EXPECT_NE(RejectCreative("星际探险：千万用户好评", kOwn, f), std::nullopt);
  f.banned_words = {"quest"};
  EXPECT_EQ(*RejectCreative("Star Quest: why wait?", kOwn, f), "banned word 'quest'");
}

TEST(TemplateVariants, EveryAdGetsItsOwnCreativeAndFilteredTemplates) {
  auto ds = data::GenerateSyntheticWorld({.users = 50, .ads = 40, .advertisers = 5, .days = 2, .seed = 3, .show_progress = false});
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  GenerateReport rep;
  auto v = GenerateTemplateVariants(*ds, SyntheticPhraseBook(), TemplateOptions{.per_ad = 4, .seed = 1, .filter = {}}, &rep);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(rep.ads, 40u);
  EXPECT_EQ(rep.variants, v->size());
  EXPECT_GT(rep.rejected, 0u) << "the phrase book holds claims most ads do not make";
  ASSERT_FALSE(rep.rejections.empty());
  EXPECT_NE(rep.rejections[0].find("unsupported claim"), std::string::npos) << rep.rejections[0];
  std::map<std::string, int> per_ad;
  const data::Column* title = ds->item_table.Find(data::cols::kTitle);
  for (const CreativeVariant& c : *v) {
    ++per_ad[c.ad_id];
    const uint32_t ad = *ds->items.Find(c.ad_id);
    if (c.source == "catalogue") {
      EXPECT_EQ(c.id, c.ad_id + "~0");
      EXPECT_EQ(c.title, title->str[ad]);
      continue;
    }
    EXPECT_EQ(c.source.rfind("template:", 0), 0u) << c.source;
    EXPECT_NE(c.title.find(c.phrase.substr(1)), std::string::npos) << "provenance names the phrase the text carries";
    const std::vector<std::string> own = {title->str[ad], ds->item_table.Find(data::cols::kDescription)->str[ad]};
    EXPECT_EQ(RejectCreative(c.title, own, {}).value_or(""), "") << "kept variants pass the filters";
    EXPECT_FALSE(c.colour.empty());
  }
  for (const auto& [ad, n] : per_ad) EXPECT_EQ(n, 4) << ad;
  auto again = GenerateTemplateVariants(*ds, SyntheticPhraseBook(), TemplateOptions{.per_ad = 4, .seed = 1, .filter = {}});
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->size(), v->size());
  for (size_t i = 0; i < v->size(); ++i) EXPECT_EQ((*again)[i].title, (*v)[i].title) << "deterministic";
}

TEST(TemplateVariants, FileRoundTripsAndBadLinesAreNamed) {
  ScopedTempDir tmp;
  std::vector<CreativeVariant> v = {{"ad1~0", "ad1", "en", "Title one", "red", "square", "catalogue", ""},
                                    {"ad1~t1", "ad1", "en", "Why wait? Ad one", "blue", "square", "template:hook-first", "why wait?"}};
  ASSERT_TRUE(WriteVariants(tmp.path() / "v.jsonl", v).ok());
  auto back = ReadVariants(tmp.path() / "v.jsonl");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[1].phrase, "why wait?");
  EXPECT_EQ((*back)[1].source, "template:hook-first");
  auto bad = [&](const std::string& text) {
    EXPECT_TRUE(AtomicWriteFile(tmp.path() / "bad.jsonl", text).ok());
    return std::string(ReadVariants(tmp.path() / "bad.jsonl").status().message());
  };
  EXPECT_NE(bad("{\"id\": \"a\", \"ad_id\": \"x\", \"title\": \"t\"}\n{\"id\": \"a\", \"ad_id\": \"x\", \"title\": \"t\"}\n")
                .find("bad.jsonl:2: duplicate variant id 'a'"),
            std::string::npos);
  EXPECT_NE(bad("{\"id\": \"a\", \"ad_id\": \"x\", \"titel\": \"t\"}\n").find(":1: unknown field 'titel'"), std::string::npos);
  EXPECT_NE(bad("not json\n").find(":1: not a JSON object"), std::string::npos);
  EXPECT_NE(bad("{\"id\": \"a\", \"ad_id\": \"x\"}\n").find("required"), std::string::npos);
  EXPECT_NE(bad("").find("no variant"), std::string::npos);
}

}  // namespace
}  // namespace adrec::creative
