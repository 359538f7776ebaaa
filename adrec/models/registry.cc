#include "adrec/models/registry.h"

namespace adrec::models {
namespace {

constexpr ModelEntry kModels[] = {
    {"lr", ModelFamily::kRanking, "logistic regression over every field (FTRL by default)"},
    {"fm", ModelFamily::kRanking, "factorisation machine (Rendle 2010)"},
    {"deepfm", ModelFamily::kRanking, "FM beside an MLP over shared embeddings (Guo et al. 2017)"},
    {"dcnv2", ModelFamily::kRanking, "cross network V2 and an MLP (Wang et al. 2021)"},
    {"mmoe", ModelFamily::kRanking, "multi-gate mixture of experts, a tower per target (Ma et al. 2018)"},
    {"ple", ModelFamily::kRanking, "progressive layered extraction (Tang et al. 2020)"},
    {"split_moe", ModelFamily::kRanking, "experts over field groups"},
    {"two_tower", ModelFamily::kRanking, "query and item towers scored by a dot product (retrieval)"},
    {"sasrec", ModelFamily::kSequence, "self-attentive sequential recommendation (Kang & McAuley 2018)"},
    {"hstu", ModelFamily::kSequence, "hierarchical sequential transduction units (Zhai et al. 2024)"},
    {"bsarec", ModelFamily::kSequence, "self-attention beside a frequency filter (Shin et al. 2024)"},
    {"wearec", ModelFamily::kSequence, "an adaptive frequency filter beside a Haar wavelet, no attention (AAAI 2026)"},
    {"hstu_ranker", ModelFamily::kSequenceRanker, "HSTU over each user's event log, one output per impression"},
};

}  // namespace

std::span<const ModelEntry> RegisteredModels() { return kModels; }

const ModelEntry* FindModel(std::string_view name) {
  for (const ModelEntry& m : kModels) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

std::string ModelNames(ModelFamily family) {
  std::string out;
  for (const ModelEntry& m : kModels) {
    if (m.family != family) continue;
    if (!out.empty()) out += ", ";
    out += m.name;
  }
  return out;
}

std::string_view FamilyName(ModelFamily family) {
  switch (family) {
    case ModelFamily::kRanking: return "ranking";
    case ModelFamily::kSequence: return "sequence";
    case ModelFamily::kSequenceRanker: return "sequence ranker";
  }
  return "?";
}

}  // namespace adrec::models
