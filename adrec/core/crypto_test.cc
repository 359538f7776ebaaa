#include "adrec/core/crypto.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "adrec/core/file.h"

namespace adrec {
namespace {

SecretKey CountingKey() {
  SecretKey k;
  for (size_t i = 0; i < k.bytes.size(); ++i) k.bytes[i] = static_cast<uint8_t>(i);
  return k;
}

TEST(Crypto, KeyedHashIsKeyedBlake2b) {
  // Known answers from Python's hashlib.blake2b(message, key=key, digest_size=n), the same
  // function as libsodium's crypto_generichash.
  EXPECT_EQ(KeyedHashHex(CountingKey(), "user-42"), "9ea4048a00eb6f5dd196882e24b5659f");
  EXPECT_EQ(KeyedHashHex(CountingKey(), "", 32), "4e51e7a913fc80137da52880fecca175bf81e117d5c68126dc2774033517ea0d");
  EXPECT_EQ(KeyedHashHex(SecretKey{}, "user-42"), "0d2233bf36dc615181f361448c1796db");
  EXPECT_NE(KeyedHashHex(CountingKey(), "user-43"), KeyedHashHex(CountingKey(), "user-42"));
}

TEST(Crypto, KeyFilesAreWrittenOnceOwnerOnlyAndReadBack) {
  ScopedTempDir tmp("crypto");
  const auto path = tmp.path() / "users.key";
  ASSERT_TRUE(WriteNewKeyFile(path).ok());
  const auto perms = std::filesystem::status(path).permissions();
  EXPECT_EQ(perms & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  StatusOr<SecretKey> key = ReadKeyFile(path);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  const std::string before = *ReadFile(path);
  Status again = WriteNewKeyFile(path);  // never replaced
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(*ReadFile(path), before);
  // Two fresh keys differ, and so do the pseudonyms they make.
  ASSERT_TRUE(WriteNewKeyFile(tmp.path() / "other.key").ok());
  StatusOr<SecretKey> other = ReadKeyFile(tmp.path() / "other.key");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(KeyedHashHex(*key, "u1"), KeyedHashHex(*other, "u1"));
  EXPECT_EQ(KeyedHashHex(*key, "u1"), KeyedHashHex(*ReadKeyFile(path), "u1"));
}

TEST(Crypto, BadKeyFilesNameWhatIsWrong) {
  ScopedTempDir tmp("crypto-bad");
  EXPECT_EQ(ReadKeyFile(tmp.path() / "missing.key").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(AtomicWriteFile(tmp.path() / "short.key", "abcd\n").ok());
  StatusOr<SecretKey> shorter = ReadKeyFile(tmp.path() / "short.key");
  ASSERT_FALSE(shorter.ok());
  EXPECT_NE(shorter.status().message().find("64 hex digits"), std::string::npos) << shorter.status().ToString();
  ASSERT_TRUE(AtomicWriteFile(tmp.path() / "nothex.key", std::string(63, 'a') + "g\n").ok());
  StatusOr<SecretKey> nothex = ReadKeyFile(tmp.path() / "nothex.key");
  ASSERT_FALSE(nothex.ok());
  EXPECT_NE(nothex.status().message().find("not hex"), std::string::npos) << nothex.status().ToString();
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// Sets the process's at-rest key for one test and clears it after.
struct AtRestKeyForTest {
  explicit AtRestKeyForTest(const SecretKey& k) { SetAtRestKey(k); }
  ~AtRestKeyForTest() { SetAtRestKey(std::nullopt); }
};

TEST(Crypto, EncryptedBytesRoundTripInOneOrManyChunks) {
  const SecretKey key = CountingKey();
  for (size_t n : {size_t{0}, size_t{1}, size_t{1000}, size_t{1} << 20, (size_t{5} << 19) + 7}) {
    const std::string plain = RandomBytes(n, n);
    const std::string enc = EncryptBytes(key, plain);
    EXPECT_TRUE(IsEncrypted(enc));
    StatusOr<std::string> back = DecryptBytes(key, enc, "f");
    ASSERT_TRUE(back.ok()) << n << ": " << back.status().ToString();
    EXPECT_EQ(*back, plain) << n;
    if (n >= 1000) {
      EXPECT_EQ(enc.find(plain.substr(0, 64)), std::string::npos);  // no plaintext shows
    }
  }
  // The same bytes encrypt differently each time (a fresh nonce per file).
  EXPECT_NE(EncryptBytes(key, "same"), EncryptBytes(key, "same"));
}

TEST(Crypto, AChangedTruncatedExtendedOrWrongKeyFileIsAnErrorNeverGarbage) {
  const SecretKey key = CountingKey();
  const std::string plain = RandomBytes((size_t{3} << 19) + 11, 7);  // two chunks
  const std::string enc = EncryptBytes(key, plain);
  auto fails = [&](const std::string& bytes, const SecretKey& k, const char* want) {
    StatusOr<std::string> r = DecryptBytes(k, bytes, "data/events.bin");
    ASSERT_FALSE(r.ok()) << want;
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
    EXPECT_NE(r.status().message().find("data/events.bin"), std::string::npos) << r.status().ToString();
    EXPECT_NE(r.status().message().find(want), std::string::npos) << r.status().ToString();
  };
  SecretKey other = key;
  other.bytes[5] ^= 1;
  fails(enc, other, "not the one it was written with");
  for (size_t at : {size_t{9}, size_t{13} + 3, size_t{40}, size_t{1} << 20, enc.size() - 1}) {  // preamble, header, chunks, tag
    std::string changed = enc;
    changed[at] = static_cast<char>(changed[at] ^ 0x40);
    StatusOr<std::string> r = DecryptBytes(key, changed, "data/events.bin");
    EXPECT_FALSE(r.ok()) << "a byte changed at " << at;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << at;
    }
  }
  fails(enc.substr(0, enc.size() - 1), key, "changed");
  const size_t first_chunk_end = 13 + 24 + (size_t{1} << 20) + 17;
  fails(enc.substr(0, first_chunk_end), key, "truncated");  // cut at a chunk boundary
  fails(enc + "x", key, "changed");  // the extra byte joins the last chunk, which then fails
  fails(enc.substr(0, 20), key, "truncated");
}

TEST(Crypto, FilesAreWrittenEncryptedAndReadBackOnlyWithTheKey) {
  ScopedTempDir tmp("crypto-files");
  const std::string plain = "user_id,item\nu1,i9\n" + RandomBytes(5000, 3);
  ASSERT_TRUE(AtomicWriteFile(tmp.path() / "plain.bin", plain).ok());  // no key: plain
  EXPECT_EQ(*ReadFile(tmp.path() / "plain.bin"), plain);
  {
    AtRestKeyForTest guard(CountingKey());
    ASSERT_TRUE(AtomicWriteFile(tmp.path() / "sealed.bin", plain).ok());
    EXPECT_EQ(*ReadFile(tmp.path() / "sealed.bin"), plain);
    StatusOr<MappedFile> mapped = MappedFile::Open(tmp.path() / "sealed.bin");
    ASSERT_TRUE(mapped.ok()) << mapped.status().ToString();
    EXPECT_EQ(mapped->data(), plain);
    MappedFile moved = std::move(*mapped);  // the decrypted bytes outlive the move
    EXPECT_EQ(moved.data(), plain);
    EXPECT_EQ(*ReadFile(tmp.path() / "plain.bin"), plain);  // plain files still read
    // Files for other processes, and key files, are written plain even with a key set.
    ASSERT_TRUE(AtomicWriteFile(tmp.path() / "port", "8080\n", /*plain=*/true).ok());
    ASSERT_TRUE(WriteNewKeyFile(tmp.path() / "new.key").ok());
    for (const char* f : {"port", "new.key"}) {
      std::ifstream in(tmp.path() / f, std::ios::binary);
      EXPECT_FALSE(IsEncrypted(std::string(std::istreambuf_iterator<char>(in), {}))) << f;
    }
  }
  // Without the key: an error that says so, for both readers; the bytes on disk hold no plaintext.
  const std::string raw = [&] {
    std::ifstream in(tmp.path() / "sealed.bin", std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  EXPECT_TRUE(IsEncrypted(raw));
  EXPECT_EQ(raw.find("user_id,item"), std::string::npos);
  StatusOr<std::string> no_key = ReadFile(tmp.path() / "sealed.bin");
  ASSERT_FALSE(no_key.ok());
  EXPECT_EQ(no_key.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(no_key.status().message().find("--at-rest-key"), std::string::npos) << no_key.status().ToString();
  EXPECT_FALSE(MappedFile::Open(tmp.path() / "sealed.bin").ok());
  SecretKey wrong = CountingKey();
  wrong.bytes[0] ^= 0xff;
  AtRestKeyForTest guard(wrong);
  StatusOr<std::string> wrong_key = ReadFile(tmp.path() / "sealed.bin");
  ASSERT_FALSE(wrong_key.ok());
  EXPECT_EQ(wrong_key.status().code(), StatusCode::kDataLoss) << wrong_key.status().ToString();
}

}  // namespace
}  // namespace adrec
