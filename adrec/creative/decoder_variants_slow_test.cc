#include "adrec/creative/decoder_variants.h"

#include <gtest/gtest.h>

#include "adrec/core/file.h"
#include "adrec/data/synthetic.h"
#include "adrec/text/decoder_train.h"

namespace adrec::creative {
namespace {

// A decoder trained on a small catalogue's titles writes variants for its ads: each one passes
// the filters, names its ad's product and says where it came from; what fails is counted.
TEST(DecoderVariants, ATrainedDecoderWritesFilteredVariantsWithProvenance) {
  auto ds = data::GenerateSyntheticWorld({.users = 200, .ads = 24, .advertisers = 4, .days = 3, .seed = 9, .show_progress = false});
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  const std::vector<std::string> corpus = DecoderCorpus(*ds);
  ASSERT_EQ(corpus.size(), 24u);
  EXPECT_NE(corpus[0].find(" | for: "), std::string::npos) << corpus[0];
  ScopedTempDir tmp;
  text::DecoderTrainOptions t;
  t.hidden = 64;
  t.heads = 4;
  t.kv_heads = 2;
  t.layers = 2;
  t.intermediate = 128;
  t.steps = 400;
  t.batch = 16;
  t.show_progress = false;
  auto trained = text::TrainByteDecoder(corpus, tmp.path() / "decoder", t);
  ASSERT_TRUE(trained.ok()) << trained.status().ToString();
  EXPECT_LT((*trained)["last_loss"].get<double>(), 0.5) << trained->dump();
  DecoderVariantOptions o;
  o.per_ad = 2;
  GenerateReport rep;
  auto v = GenerateDecoderVariants(*ds, tmp.path() / "decoder", o, &rep);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_GE(v->size(), 12u) << "most ads get a variant";
  EXPECT_EQ(rep.variants, v->size());
  const data::Column* title = ds->item_table.Find(data::cols::kTitle);
  const data::Column* desc = ds->item_table.Find(data::cols::kDescription);
  const data::Column* product = ds->item_table.Find("product");
  for (const CreativeVariant& c : *v) {
    const uint32_t ad = *ds->items.Find(c.ad_id);
    EXPECT_EQ(c.source, "decoder:decoder");
    EXPECT_EQ(c.id.rfind(c.ad_id + "~d", 0), 0u) << c.id;
    EXPECT_EQ(c.phrase.rfind("interest=", 0), 0u) << c.phrase;
    EXPECT_NE(c.title, title->str[ad]) << "a new text, not the ad's own";
    EXPECT_NE(c.title.find(product->str[ad]), std::string::npos) << c.title;
    EXPECT_EQ(RejectCreative(c.title, {title->str[ad], desc->str[ad]}, {}).value_or(""), "") << c.title;
  }
  // A decoder that has learnt nothing writes nothing that passes: everything is counted as refused.
  t.steps = 1;
  ASSERT_TRUE(text::TrainByteDecoder(corpus, tmp.path() / "untrained", t).ok());
  GenerateReport bad;
  auto none = GenerateDecoderVariants(*ds, tmp.path() / "untrained", o, &bad);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(bad.rejected, 24u * o.per_ad * o.attempts);
  EXPECT_FALSE(bad.rejections.empty());
  EXPECT_EQ(GenerateDecoderVariants(*ds, tmp.path() / "missing", o).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace adrec::creative
