#include "adrec/core/process.h"

#include <cstdio>

namespace adrec {

int RunCommand(const std::string& command, std::string* output, bool merge_stderr) {
  FILE* pipe = popen((command + (merge_stderr ? " 2>&1" : "")).c_str(), "r");
  if (!pipe) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) output->append(buf, n);
  return pclose(pipe);
}

}  // namespace adrec
