// Trains the HSTU ranker (models/hstu_ranker.h) on user-level samples — each user's log as one
// token sequence, every impression's click / download / conversion predicted in one causal
// pass — and evaluates it with the CTR report the other ranking models get (AUC, GAUC, log
// loss, NE per target and scene, the Bayes ceiling on the synthetic world). Torch-free header;
// reached through train::Train / train::Evaluate (trainer.h) for model.name = "hstu_ranker".
#pragma once

#include <nlohmann/json.hpp>

#include "adrec/core/status.h"
#include "adrec/train/trainer.h"

namespace adrec::train {

// Config: [data] as the ranking configs (the split); [features] samples and targets (fields are
// not read: the model sees raw events); [model] name = "hstu_ranker", max_len (events per
// window), dim, blocks, heads, dropout, attention_dim, linear_dim, time_buckets, head_hidden;
// [train] epochs, batch_size (windows), lr, weight_decay, clip_norm, patience, primary_target,
// bf16. The bundle (kind "sequence_ranking") keeps the weights of the best valid AUC; a
// checkpoint is written after every epoch (SIGINT/SIGTERM loses at most the epoch under way,
// --max-steps stops at the end of the epoch that reaches it) and --resume continues from it.
// Returns the summary of TrainRanking ("valid" and "test" CTR reports, "windows_per_s").
StatusOr<nlohmann::ordered_json> TrainSequenceRanker(const TrainOptions& options);

// EvaluateRanking's report for a "sequence_ranking" bundle.
StatusOr<nlohmann::ordered_json> EvaluateSequenceRanker(const EvalOptions& options);

}  // namespace adrec::train
