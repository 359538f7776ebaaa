// Content tagging: each ad's 3-level taxonomy node from its text alone (title and description;
// never the taxonomy columns it is scored against), as the seed's production system tags ads
// with a language model. Zero-shot: hierarchical nearest label description (level 1 among the
// roots, level 2 among the chosen node's children, then level 3). Few-shot: the same walk with
// the logits of a softmax head per level, trained on k labelled ads per leaf node, scored on the
// other ads.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "adrec/core/status.h"
#include "adrec/data/dataset.h"
#include "adrec/text/text_encoder.h"

namespace adrec::text {

struct TagOptions {
  std::string mode = "zero-shot";  // zero-shot | few-shot
  int shots = 5;                   // few-shot: labelled ads per node
  uint64_t seed = 42;              // few-shot: which ads are labelled
};

struct TagLevel {
  size_t evaluated = 0;
  size_t correct = 0;              // the predicted path is right down to this level
  size_t correct_given_parent = 0; // right when choosing among the true parent's children
  double accuracy() const { return evaluated ? double(correct) / evaluated : 0.0; }
  double conditional_accuracy() const { return evaluated ? double(correct_given_parent) / evaluated : 0.0; }
};

struct TagResult {
  std::vector<std::array<uint32_t, 3>> predicted;  // per item: nodes at levels 1-3 (0: none)
  std::vector<uint8_t> evaluated;                  // per item: 1 when scored (few-shot: not a labelled ad)
  std::array<TagLevel, 3> levels;
  size_t labelled = 0;  // few-shot support ads
};

// The item's text without its taxonomy: title, then description.
std::vector<std::string> TaggingTexts(const data::Dataset& ds);

// Needs a taxonomy and the items' cat1..cat3 columns (the ground truth); FailedPrecondition
// naming what is missing otherwise.
StatusOr<TagResult> TagTaxonomy(const data::Dataset& ds, const TextEncoder& encoder, const TagOptions& options);

// A creative attribute read from the ad's text, scored against a categorical item column (the
// synthetic world's text_type: which kind of hook the copy uses; lang; objective).
struct AttributeResult {
  std::string column;
  std::vector<std::string> classes;  // class c is code c + 1 of the column
  std::vector<uint32_t> predicted;   // per item: predicted code (0: none)
  std::vector<uint8_t> evaluated;    // per item: 1 when scored (not labelled, not missing)
  size_t correct = 0, evaluated_count = 0;
  size_t majority_correct = 0;  // the most frequent class of the column, always predicted: the floor
  size_t labelled = 0;
  double accuracy() const { return evaluated_count ? double(correct) / evaluated_count : 0.0; }
  double majority_accuracy() const { return evaluated_count ? double(majority_correct) / evaluated_count : 0.0; }
};

// Zero-shot: the class whose name ("social_proof" read as "social proof") is nearest to the text;
// few-shot: a softmax head trained on `shots` labelled ads per class, scored on the others. A column that is missing or not categorical is InvalidArgument naming it.
StatusOr<std::vector<AttributeResult>> TagAttributes(const data::Dataset& ds, const TextEncoder& encoder,
                                                     const std::vector<std::string>& columns, const TagOptions& options);

}  // namespace adrec::text
