// adrec train: trains a ranking model (CTR/CVR) or a sequence model (SASRec, HSTU) from a
// config into a bundle (manifest.json + model.safetensors), with checkpoints, early stopping and
// --resume. adrec eval: evaluates a bundle (AUC family for ranking, leave-one-out for sequence).
#include "adrec/models/registry.h"
#include "adrec/train/trainer.h"
#include "apps/adrec/cli.h"

namespace adrec::cli {

void AddTrainCommand(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<train::TrainOptions>();
  using models::ModelFamily;
  CLI::App* cmd = app.add_subcommand(
      "train", "Train a ranking model (" + models::ModelNames(ModelFamily::kRanking) + "), a sequence model (" +
                   models::ModelNames(ModelFamily::kSequence) + ") or the HSTU ranker (" +
                   models::ModelNames(ModelFamily::kSequenceRanker) + ") into a bundle");
  cmd->add_option("--data", o->data, "Dataset directory")->required();
  cmd->add_option("--config", o->config, "Config TOML ([data], [features], [model], [train]; see configs/)")->required();
  cmd->add_option("--out", o->out, "Bundle directory to write")->required();
  cmd->add_option("--split", o->split_dir, "Split directory from `adrec split` (default: the config's [data] split)");
  cmd->add_option("--set", o->settings,
                  "A config setting over the file, SECTION.KEY=VALUE (TOML value; repeatable), e.g. --set "
                  "train.lr=3e-3; the bundle records it");
  cmd->add_option("--model", o->model, "Model name, overriding the config's model.name (e.g. sasrec or hstu)");
  cmd->add_option("--device", o->device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--threads", o->threads, "Threads for batches and math (0 = all cores)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed of initialisation, shuffling and dropout")->capture_default_str();
  cmd->add_flag("--resume", o->resume, "Continue from <out>/checkpoint (same config and seed)");
  cmd->add_flag("--overwrite", o->overwrite, "Replace an existing bundle in --out");
  cmd->add_flag("--deterministic", o->deterministic, "Deterministic algorithms only (slower on CUDA)");
  cmd->add_option("--max-steps", o->max_steps, "Stop after this many steps with a checkpoint (0 = no limit); the sequence models and the HSTU ranker train by whole epochs and stop at the end of the epoch that reaches it")
      ->capture_default_str();
  cmd->add_option("--max-seconds", o->max_seconds,
                  "Stop at the first evaluation after training this long, test the best weights and keep a "
                  "checkpoint for --resume (0 = no limit)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--scenes", o->scenes, "Ranking: train and evaluate on samples of these scenes only (comma-separated)")
      ->delimiter(',');
  cmd->add_option("--max-train-samples", o->max_train_samples,
                  "Ranking: train on at most this many samples, a seeded subset (little data, simulated; 0 = all)")
      ->capture_default_str();
  cmd->add_option("--init-from", o->init_from, "Ranking: start from this bundle's weights (same config), to fine-tune");
  cmd->add_option("--finetune", o->finetune,
                  "With --init-from: full (everything), head (output layers only) or lora (low-rank adapters on every "
                  "matrix)")
      ->capture_default_str()
      ->check(CLI::IsMember({"full", "head", "lora"}));
  cmd->add_option("--lora-rank", o->lora_rank, "LoRA's rank")->capture_default_str()->check(CLI::Range(1, 1024));
  cmd->add_option("--dp-epsilon", o->dp_epsilon,
                  "Ranking: train with DP-SGD for this privacy budget ε; the noise is chosen for the planned steps "
                  "(train.dp_epsilon)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--dp-delta", o->dp_delta, "With --dp-epsilon: δ (default train.dp_delta, 1e-5)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--federated-clients", o->federated_clients,
                  "Ranking: federated averaging with secure aggregation over this many clients, the train users dealt "
                  "among them; train.epochs counts rounds; with --dp-epsilon the budget is per client "
                  "(train.federated_clients)")
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--teacher", o->teacher,
                  "Ranking: distil this ranking bundle (same data and split; a larger model) into the one trained "
                  "(train.distill_weight, train.distill_temperature)");
  cmd->add_option("--dist-timeout", o->dist_timeout_s,
                  "Distributed runs (started by torchrun or with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set): "
                  "seconds a rank waits for the others before stopping with an error (0 = 300)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  AddJsonFlag(cmd, ctx);
  cmd->callback([o, &ctx] {
    ctx.run = [o, &ctx]() -> Status {
      o->show_progress = !ctx.quiet;
      o->stop = StopOnSignals();
      ADREC_ASSIGN_OR_RETURN(nlohmann::ordered_json summary, train::Train(*o));
      PrintResult(ctx, summary);
      return Status::Ok();
    };
  });
}

void AddEvalCommand(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<train::EvalOptions>();
  CLI::App* cmd = app.add_subcommand("eval", "Evaluate a bundle on a dataset: AUC, GAUC, log loss, NE per target and scene (ranking); HR@K, NDCG@K, MRR on leave-one-out (sequence)");
  cmd->add_option("--data", o->data, "Dataset directory")->required();
  cmd->add_option("--bundle", o->bundle, "Bundle directory from `adrec train`")->required();
  cmd->add_option("--split", o->part, "Part evaluated: test, valid, train or all")
      ->capture_default_str()
      ->check(CLI::IsMember({"test", "valid", "train", "all"}));
  cmd->add_option("--split-dir", o->split_dir, "Split directory (default: the split recorded in the bundle)");
  cmd->add_option("--protocol", o->protocol,
                  "ctr (ranking bundles), retrieval (two-tower bundles: HR@K over the catalogue) or loo (sequence "
                  "bundles); default: the bundle's")
      ->check(CLI::IsMember({"ctr", "retrieval", "loo"}));
  cmd->add_flag("--exclude-seen", o->exclude_seen, "loo: drop the user's history items from its ranking");
  cmd->add_option("--cold-threshold", o->cold_threshold,
                  "ctr: report items with fewer train samples than this as cold (0 = no cold/warm report)")
      ->capture_default_str();
  cmd->add_option("--device", o->device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--threads", o->threads, "Threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--batch-size", o->batch_size, "Samples per forward pass")->capture_default_str();
  cmd->add_option("--precision", o->precision,
                  "Dense layers' arithmetic: fp32, bf16 (oneDNN, as `adrec serve` may score), int8 (FBGEMM, weights "
                  "quantised once, activations per batch) or auto (bf16 where the CPU multiplies bf16 natively)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "bf16", "int8", "auto"}));
  cmd->add_option("--scenes", o->scenes, "ctr: evaluate samples of these scenes only (default: those the bundle was trained on)")
      ->delimiter(',');
  cmd->add_option("--perturb", o->perturb,
                  "ctr: also score at adversarially perturbed embeddings (fgsm or pgd) and report the AUC under it")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "fgsm", "pgd"}));
  cmd->add_option("--perturb-eps", o->perturb_eps, "Perturbation radius, relative to each sample's embedding norm")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--perturb-steps", o->perturb_steps, "PGD steps")->capture_default_str()->check(CLI::Range(1, 100));
  AddJsonFlag(cmd, ctx);
  cmd->callback([o, &ctx] {
    ctx.run = [o, &ctx]() -> Status {
      ADREC_ASSIGN_OR_RETURN(nlohmann::ordered_json result, train::Evaluate(*o));
      PrintResult(ctx, result);
      return Status::Ok();
    };
  });
}

}  // namespace adrec::cli
