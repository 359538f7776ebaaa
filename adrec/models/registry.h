// Every model adrec builds by name, in one list: the factories (MakeRankingModel,
// MakeSequenceModel), `adrec train`'s dispatch to a trainer and the CLI's help all read it.
// Torch-free, so the CLI can list models without compiling libtorch.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace adrec::models {

// Which trainer and bundle kind a model has.
enum class ModelFamily {
  kRanking,        // CTR/CVR models over a feature spec (train/ranking_trainer.cc)
  kSequence,       // next-item models on leave-one-out (train/sequence_trainer.cc)
  kSequenceRanker  // the HSTU ranker over user-level event sequences (train/hstu_ranker_trainer.cc)
};

struct ModelEntry {
  std::string_view name;
  ModelFamily family;
  std::string_view summary;  // one line for help texts
};

std::span<const ModelEntry> RegisteredModels();
// nullptr for an unknown name.
const ModelEntry* FindModel(std::string_view name);
// "lr, fm, deepfm, …" of one family, in registry order.
std::string ModelNames(ModelFamily family);
std::string_view FamilyName(ModelFamily family);  // "ranking", "sequence", "sequence ranker"

}  // namespace adrec::models
