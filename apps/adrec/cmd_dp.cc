// adrec dp-epsilon: the privacy a DP-SGD run spends (ε at δ, from the RDP accountant, equal to
// Opacus'), or with --epsilon the noise multiplier that keeps a run within that budget.
#include <cmath>

#include "adrec/train/dp_accountant.h"
#include "apps/adrec/cli.h"

namespace adrec::cli {

void AddDpEpsilonCommand(CLI::App& app, Context& ctx) {
  struct Flags {
    double sample_rate = 0, noise = -1, delta = 1e-5, epsilon = 0, epochs = 0, tolerance = 0.01;
    int64_t steps = -1;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "dp-epsilon", "Privacy of DP-SGD: ε at δ for a noise multiplier, sample rate and steps (RDP accountant), or "
                    "with --epsilon the noise multiplier for that budget");
  cmd->add_option("--sample-rate", f->sample_rate, "Probability q that a sample is in a batch (batch size / samples)")
      ->required()
      ->check(CLI::Range(0.0, 1.0));
  auto* noise = cmd->add_option("--noise-multiplier", f->noise,
                                "σ: the noise's standard deviation over the clipping norm");
  auto* eps = cmd->add_option("--epsilon", f->epsilon, "A budget: print the noise multiplier that keeps within it");
  noise->excludes(eps);
  auto* steps = cmd->add_option("--steps", f->steps, "Optimiser steps");
  auto* epochs = cmd->add_option("--epochs", f->epochs, "Epochs instead of steps (steps = epochs / sample rate)");
  steps->excludes(epochs);
  cmd->add_option("--delta", f->delta, "δ (below 1 / the number of users is the usual choice)")->capture_default_str();
  cmd->add_option("--tolerance", f->tolerance, "With --epsilon: how close below the budget the search stops")
      ->capture_default_str();
  AddJsonFlag(cmd, ctx);
  cmd->callback([f, noise, eps, steps, epochs, &ctx] {
    ctx.run = [f, noise, eps, steps, epochs, &ctx]() -> Status {
      if (noise->count() == 0 && eps->count() == 0) {
        return InvalidArgumentError("dp-epsilon: give --noise-multiplier (to get ε) or --epsilon (to get the noise)");
      }
      if (steps->count() == 0 && epochs->count() == 0) return InvalidArgumentError("dp-epsilon: give --steps or --epochs");
      if (epochs->count() > 0 && !(f->epochs >= 0)) return InvalidArgumentError("dp-epsilon: --epochs must be ≥ 0");
      if (epochs->count() > 0 && f->sample_rate == 0) {
        return InvalidArgumentError("dp-epsilon: --epochs needs a sample rate above 0");
      }
      // Opacus' conversion: int(epochs / sample_rate).
      const int64_t n = steps->count() > 0 ? f->steps : static_cast<int64_t>(f->epochs / f->sample_rate);
      nlohmann::ordered_json out;
      out["sample_rate"] = f->sample_rate;
      out["steps"] = n;
      out["delta"] = f->delta;
      double sigma = f->noise;
      if (eps->count() > 0) {
        ADREC_ASSIGN_OR_RETURN(sigma, train::NoiseMultiplierFor(f->epsilon, f->delta, f->sample_rate, n, f->tolerance));
      }
      const train::DpSteps s{.noise_multiplier = sigma, .sample_rate = f->sample_rate, .steps = n};
      ADREC_ASSIGN_OR_RETURN(train::PrivacySpent spent, train::EpsilonOf(std::span<const train::DpSteps>(&s, 1), f->delta));
      out["noise_multiplier"] = sigma;
      if (eps->count() > 0) out["target_epsilon"] = f->epsilon;
      // JSON has no infinity: no noise (or no finite bound) is reported as null with a note.
      if (std::isinf(spent.epsilon)) {
        out["epsilon"] = nullptr;
        out["note"] = "no finite ε: without noise DP-SGD gives no privacy guarantee";
      } else {
        out["epsilon"] = spent.epsilon;
      }
      out["order"] = spent.order;
      PrintResult(ctx, out);
      return Status::Ok();
    };
  });
}

}  // namespace adrec::cli
