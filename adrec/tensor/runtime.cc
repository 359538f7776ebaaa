#include "adrec/tensor/runtime.h"

#include <dlfcn.h>

namespace adrec::tensor {

std::string BlasLibrary() {
  // RTLD_DEFAULT searches the global scope in load order: the definition the PLT binds to.
  void* sym = ::dlsym(RTLD_DEFAULT, "sgemm_");
  Dl_info info{};
  if (!sym || !::dladdr(sym, &info) || !info.dli_fname) return "none";
  return info.dli_fname;
}

}  // namespace adrec::tensor
