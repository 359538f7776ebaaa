#include "adrec/core/config.h"

#include <gtest/gtest.h>

namespace adrec {
namespace {

constexpr const char* kToml = R"(
name = "dcnv2"
[model]
layers = [256, 128]
dropout = 0.1
cross = 3
[[fields]]
name = "user"
dim = 16
[[fields]]
name = "item"
dim = 32
)";

TEST(ConfigTest, TypedReadsAndDefaults) {
  auto c = Config::Parse(kToml, "test.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::string name;
  ASSERT_TRUE(c->Get("name", &name).ok());
  EXPECT_EQ(name, "dcnv2");
  std::vector<int64_t> layers;
  ASSERT_TRUE(c->Get("model.layers", &layers).ok());
  EXPECT_EQ(layers, (std::vector<int64_t>{256, 128}));
  double dropout = 0;
  ASSERT_TRUE(c->Get("model.dropout", &dropout).ok());
  EXPECT_DOUBLE_EQ(dropout, 0.1);
  int missing = 42;
  ASSERT_TRUE(c->Get("model.absent", &missing).ok());
  EXPECT_EQ(missing, 42);
  EXPECT_EQ(c->ArraySize("fields"), 2u);
  int dim = 0;
  ASSERT_TRUE(c->Get("fields[1].dim", &dim).ok());
  EXPECT_EQ(dim, 32);
}

TEST(ConfigTest, WrongTypeNamesKeyAndLine) {
  auto c = Config::Parse(kToml, "test.toml");
  ASSERT_TRUE(c.ok());
  int cross = 0;
  Status s = c->Get("model.dropout", &cross);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("test.toml:5"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("model.dropout"), std::string::npos);
}

TEST(ConfigTest, UnknownKeysAreReported) {
  auto c = Config::Parse(kToml, "test.toml");
  ASSERT_TRUE(c.ok());
  std::string name;
  ASSERT_TRUE(c->Get("name", &name).ok());
  c->MarkRead("fields");
  std::vector<int64_t> layers;
  ASSERT_TRUE(c->Get("model.layers", &layers).ok());
  double dropout;
  ASSERT_TRUE(c->Get("model.dropout", &dropout).ok());
  Status s = c->CheckNoUnknownKeys();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("test.toml:6: unknown key 'model.cross'"), std::string::npos) << s.message();
  int cross;
  ASSERT_TRUE(c->Get("model.cross", &cross).ok());
  EXPECT_TRUE(c->CheckNoUnknownKeys().ok());
}

TEST(ConfigTest, ParseErrorNamesPosition) {
  auto c = Config::Parse("a = [1, 2\nb = 3", "broken.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("broken.toml:"), std::string::npos);
}

TEST(ConfigTest, RequireReportsMissing) {
  auto c = Config::Parse(kToml, "test.toml");
  ASSERT_TRUE(c.ok());
  std::string s;
  EXPECT_EQ(c->Require("nope", &s).code(), StatusCode::kNotFound);
}

TEST(ConfigTest, AFloatWhereAnIntegerIsReadIsATypeErrorWhateverItsSize) {
  auto c = Config::Parse("big = 1e24\nsmall = 2.0\n", "f.toml");
  ASSERT_TRUE(c.ok());
  int64_t i = 7;
  Status s = c->Get("big", &i);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("f.toml:1: key 'big' must be an integer"), std::string::npos) << s.message();
  EXPECT_EQ(c->Get("small", &i).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(i, 7);
}

TEST(ConfigTest, AMisspeltKeyIsNamedBeforeTheMissingRequiredOne) {
  auto c = Config::Parse("[model]\nnmae = \"dcnv2\"\ndropout = 0.1\n", "typo.toml");
  ASSERT_TRUE(c.ok());
  std::string name;
  Status s = c->Require("model.name", &name);
  ASSERT_EQ(s.code(), StatusCode::kNotFound);
  const std::string& m = s.message();
  const size_t unknown = m.find("unknown key 'model.nmae'"), missing = m.find("'model.name' is missing");
  ASSERT_NE(unknown, std::string::npos) << m;
  ASSERT_NE(missing, std::string::npos) << m;
  EXPECT_LT(unknown, missing) << m;
  EXPECT_NE(m.find("typo.toml:2"), std::string::npos) << m;
  // Nothing near the missing key: the plain message.
  Status far = c->Require("train.epochs", &name);
  EXPECT_EQ(far.message(), "typo.toml: missing required key 'train.epochs'");
}

TEST(ConfigTest, UnknownKeysNameTheClosestKeyAReaderAskedFor) {
  auto c = Config::Parse("[model]\ndropuot = 0.1\nzzzzzzzzzz = 1\n[train]\nepochz = 2\n", "typo.toml");
  ASSERT_TRUE(c.ok());
  double d = 0;
  int64_t e = 0, h = 0;
  ASSERT_TRUE(c->Get("model.dropout", &d).ok());  // absent: the reader's default stays
  ASSERT_TRUE(c->Get("model.hidden", &h).ok());
  ASSERT_TRUE(c->Get("train.epochs", &e).ok());
  Status s = c->CheckNoUnknownKeys();
  ASSERT_EQ(s.code(), StatusCode::kInvalidArgument);
  const std::string& m = s.message();
  EXPECT_NE(m.find("typo.toml:2: unknown key 'model.dropuot' (did you mean 'model.dropout'?)"), std::string::npos) << m;
  EXPECT_NE(m.find("typo.toml:5: unknown key 'train.epochz' (did you mean 'train.epochs'?)"), std::string::npos) << m;
  // A key like no asked one gets no suggestion.
  EXPECT_NE(m.find("unknown key 'model.zzzzzzzzzz';"), std::string::npos) << m;
}

TEST(ConfigTest, SetStringOverridesOrCreates) {
  auto c = Config::Parse(kToml, "test.toml");
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->SetString("model", "name", "hstu").ok());
  ASSERT_TRUE(c->SetString("train", "loss", "bce").ok());
  std::string name, loss;
  ASSERT_TRUE(c->Get("model.name", &name).ok());
  ASSERT_TRUE(c->Get("train.loss", &loss).ok());
  EXPECT_EQ(name, "hstu");
  EXPECT_EQ(loss, "bce");
  int64_t cross = 0;
  ASSERT_TRUE(c->Get("model.cross", &cross).ok());  // the rest of the section is kept
  EXPECT_EQ(cross, 3);
  EXPECT_EQ(c->SetString("name", "x", "y").code(), StatusCode::kInvalidArgument);  // a string, not a table
}

TEST(ConfigTest, SetOverridesAndAddsKeysFromTheCommandLine) {
  auto c = Config::Parse("[train]\nlr = 0.001\nepochs = 5\nname = \"adam\"\n[[features.fields]]\nname = \"u\"\n", "t.toml");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->Set("train.lr=3e-3").ok());
  EXPECT_TRUE(c->Set(" train.epochs = 20 ").ok());
  EXPECT_TRUE(c->Set("train.name=adamw").ok());  // a bare word is a string
  EXPECT_TRUE(c->Set("train.dims=[64, 32]").ok());
  EXPECT_TRUE(c->Set("model.deep.dropout=0.5").ok());  // tables on the path are made
  EXPECT_TRUE(c->Set("train.epochs=3.0").ok());        // numbers stand for numbers
  double lr = 0, dropout = 0;
  std::string name;
  std::vector<int64_t> dims;
  ASSERT_TRUE(c->Get("train.lr", &lr).ok());
  EXPECT_DOUBLE_EQ(lr, 3e-3);
  ASSERT_TRUE(c->Get("train.name", &name).ok());
  EXPECT_EQ(name, "adamw");
  ASSERT_TRUE(c->Get("train.dims", &dims).ok());
  EXPECT_EQ(dims, (std::vector<int64_t>{64, 32}));
  ASSERT_TRUE(c->Get("model.deep.dropout", &dropout).ok());
  EXPECT_DOUBLE_EQ(dropout, 0.5);

  const Status no_eq = c->Set("train.lr");
  EXPECT_NE(no_eq.message().find("want SECTION.KEY=VALUE"), std::string::npos) << no_eq.message();
  EXPECT_EQ(c->Set("lr=1").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->Set("train..lr=1").code(), StatusCode::kInvalidArgument);
  const Status type = c->Set("train.epochs=true");
  EXPECT_NE(type.message().find("'train.epochs' is a"), std::string::npos) << type.message();
  EXPECT_NE(type.message().find("t.toml"), std::string::npos) << type.message();
  EXPECT_EQ(c->Set("train.lr.x=1").code(), StatusCode::kInvalidArgument);  // lr is no table
  EXPECT_EQ(c->Set("features.fields.name=x").code(), StatusCode::kInvalidArgument);  // an array of tables
}

}  // namespace
}  // namespace adrec
