#include "adrec/core/file.h"

#include <gtest/gtest.h>

#include <fstream>

namespace adrec {
namespace {
namespace fs = std::filesystem;

TEST(FileTest, AtomicWriteReplacesWholeFile) {
  ScopedTempDir tmp;
  fs::path p = tmp.path() / "a.txt";
  ASSERT_TRUE(AtomicWriteFile(p, "first").ok());
  ASSERT_TRUE(AtomicWriteFile(p, "second version").ok());
  EXPECT_EQ(*ReadFile(p), "second version");
  // No temp files left behind.
  size_t n = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(tmp.path())) ++n;
  EXPECT_EQ(n, 1u);
}

TEST(FileTest, ReadMissingIsNotFound) {
  ScopedTempDir tmp;
  auto r = ReadFile(tmp.path() / "nope");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("nope"), std::string::npos);
}

TEST(FileTest, StagingDirIsRemovedUnlessCommitted) {
  ScopedTempDir tmp;
  fs::path staged;
  {
    auto d = StagingDir::Create(tmp.path() / "out");
    ASSERT_TRUE(d.ok());
    staged = d->path();
    std::ofstream(staged / "x") << "x";
  }
  EXPECT_FALSE(fs::exists(staged));
  EXPECT_FALSE(fs::exists(tmp.path() / "out"));

  auto d = StagingDir::Create(tmp.path() / "out");
  ASSERT_TRUE(d.ok());
  std::ofstream(d->path() / "x") << "x";
  ASSERT_TRUE(d->Commit().ok());
  EXPECT_TRUE(fs::exists(tmp.path() / "out" / "x"));
}

TEST(FileTest, StagingDirRefusesToReplaceUnlessAsked) {
  ScopedTempDir tmp;
  fs::create_directories(tmp.path() / "out");
  std::ofstream(tmp.path() / "out" / "old") << "old";
  auto d = StagingDir::Create(tmp.path() / "out");
  ASSERT_TRUE(d.ok());
  std::ofstream(d->path() / "new") << "new";
  EXPECT_EQ(d->Commit().code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(fs::exists(tmp.path() / "out" / "old"));
  ASSERT_TRUE(d->Commit(/*overwrite=*/true).ok());
  EXPECT_TRUE(fs::exists(tmp.path() / "out" / "new"));
  EXPECT_FALSE(fs::exists(tmp.path() / "out" / "old"));
}

}  // namespace
}  // namespace adrec

namespace adrec {
namespace {

TEST(FileTest, MappedFileSeesTheBytesAndSurvivesReplacement) {
  ScopedTempDir tmp;
  std::filesystem::path p = tmp.path() / "m.bin";
  ASSERT_TRUE(AtomicWriteFile(p, std::string("mapped \0bytes", 13)).ok());
  auto m = MappedFile::Open(p);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->data(), std::string_view("mapped \0bytes", 13));
  // A writer replaces files by rename: the mapping keeps the old contents.
  ASSERT_TRUE(AtomicWriteFile(p, "new").ok());
  EXPECT_EQ(m->data().size(), 13u);
  MappedFile moved = std::move(m).value();
  EXPECT_EQ(moved.data().substr(0, 6), "mapped");
  ASSERT_TRUE(AtomicWriteFile(tmp.path() / "empty", "").ok());
  auto e = MappedFile::Open(tmp.path() / "empty");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->data().empty());
  EXPECT_EQ(MappedFile::Open(tmp.path() / "absent").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace adrec
