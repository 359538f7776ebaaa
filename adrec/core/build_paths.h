#pragma once

// Where this build's source tree and Python are. CMake writes them into one generated file
// (build_paths.cc in the build tree), so no other object file holds a machine path and ccache
// serves every other object to another checkout of the tree (a clean CI clone).

namespace adrec::build_paths {

// The source tree: configs/, the reference scripts, the .venv with the default text model.
const char* SourceDir();
// The project venv's Python that the reference tests run.
const char* Python();

}  // namespace adrec::build_paths
