#include "adrec/serve/pipeline/service.h"

#include <gtest/gtest.h>

#include <set>

#include "adrec/core/build_paths.h"
#include "adrec/core/file.h"
#include "adrec/tensor/runtime.h"

namespace adrec::serve {
namespace {

// The server links FAISS, which brings the system BLAS: the ranker's matmuls must still run on
// libtorch's own (cmake/Torch.cmake; the system OpenBLAS made them 2-3x slower here).
TEST(Service, ModelsRunOnTorchsOwnBlasBesideFaiss) {
  EXPECT_NE(tensor::BlasLibrary().find("libtorch_cpu"), std::string::npos) << tensor::BlasLibrary();
}

// docs/openapi.json documents exactly the routes the server has: a route added to one and not
// the other fails here.
TEST(Service, EveryRouteIsInTheOpenApiFileAndViceVersa) {
  Service service(nullptr, nullptr, {});  // routes only: no handler runs
  std::set<std::string> served;
  for (const std::string& r : service.MakeRouter()->Routes()) served.insert(r);
  auto text = ReadFile(std::string(build_paths::SourceDir()) + "/docs/openapi.json");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  const nlohmann::json doc = nlohmann::json::parse(*text);
  std::set<std::string> documented;
  for (const auto& [path, ops] : doc["paths"].items()) {
    for (const auto& [method, op] : ops.items()) {
      std::string m = method;
      for (char& ch : m) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      documented.insert(m + " " + path);
      EXPECT_TRUE(op.contains("responses")) << m << " " << path;
    }
  }
  EXPECT_EQ(served, documented);
  EXPECT_GE(served.size(), 8u);
  // docs/API.md names every route too.
  auto api = ReadFile(std::string(build_paths::SourceDir()) + "/docs/API.md");
  ASSERT_TRUE(api.ok()) << api.status().ToString();
  for (const std::string& r : served) EXPECT_NE(api->find("`" + r + "`"), std::string::npos) << r << " is not in docs/API.md";
}

TEST(Service, AdminTokenFilesMustBePrivateAndNonEmpty) {
  ScopedTempDir tmp;
  const std::string f = (tmp.path() / "token").string();
  ASSERT_TRUE(AtomicWriteFile(f, "  abc \n").ok());
  std::filesystem::permissions(f, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto t = ReadAdminToken(f);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t, "abc");
  std::filesystem::permissions(f, std::filesystem::perms::others_read, std::filesystem::perm_options::add);
  EXPECT_EQ(ReadAdminToken(f).status().code(), StatusCode::kFailedPrecondition);
  std::filesystem::permissions(f, std::filesystem::perms::others_read, std::filesystem::perm_options::remove);
  ASSERT_TRUE(AtomicWriteFile(f, "\n").ok());
  std::filesystem::permissions(f, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_EQ(ReadAdminToken(f).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadAdminToken((tmp.path() / "none").string()).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace adrec::serve
