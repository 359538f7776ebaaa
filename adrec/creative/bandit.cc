#include "adrec/creative/bandit.h"

#include <algorithm>
#include <cmath>

namespace adrec::creative {

void ArmCounts::Add(uint32_t arm, double reward) {
  auto& c = counts_[arm];
  ++c.first;
  c.second += reward;
}
void ArmCounts::AddClick(uint32_t arm) { counts_[arm].second += 1; }
uint64_t ArmCounts::impressions(uint32_t arm) const {
  auto it = counts_.find(arm);
  return it == counts_.end() ? 0 : it->second.first;
}
double ArmCounts::clicks(uint32_t arm) const {
  auto it = counts_.find(arm);
  return it == counts_.end() ? 0 : it->second.second;
}

namespace {

class RandomPolicy final : public CreativePolicy {
 public:
  explicit RandomPolicy(uint64_t seed) : rng_(seed) {}
  uint32_t Choose(std::span<const uint32_t> arms, const BanditContext&, double) override { return arms[rng_() % arms.size()]; }
  void Update(uint32_t, const BanditContext&, double) override {}
  void Click(uint32_t, const BanditContext&) override {}
  std::string_view name() const override { return "random"; }

 private:
  std::mt19937_64 rng_;
};

class FirstPolicy final : public CreativePolicy {
 public:
  uint32_t Choose(std::span<const uint32_t> arms, const BanditContext&, double) override { return arms.front(); }
  void Update(uint32_t, const BanditContext&, double) override {}
  void Click(uint32_t, const BanditContext&) override {}
  std::string_view name() const override { return "first"; }
};

// Shared by the learning policies: the exploration limit over per-arm counts.
class LimitedPolicy : public CreativePolicy {
 public:
  explicit LimitedPolicy(const BanditOptions& o) : o_(o), rng_(o.seed) {}

  uint32_t Choose(std::span<const uint32_t> arms, const BanditContext& ctx, double pctr) final {
    const uint32_t pick = Pick(arms, ctx, pctr);
    if (o_.max_cold_share >= 1 || counts_.impressions(pick) >= o_.warm_impressions) return pick;
    if (std::uniform_real_distribution<double>(0, 1)(rng_) < o_.max_cold_share) return pick;
    // Over the limit: the warm arm with the best observed rate, if the ad has one.
    int64_t best = -1;
    double best_rate = -1;
    for (uint32_t a : arms) {
      const uint64_t n = counts_.impressions(a);
      if (n < o_.warm_impressions) continue;
      const double rate = counts_.clicks(a) / static_cast<double>(n);
      if (rate > best_rate) best_rate = rate, best = a;
    }
    return best < 0 ? pick : static_cast<uint32_t>(best);
  }

  void Update(uint32_t arm, const BanditContext& ctx, double reward) final {
    counts_.Add(arm, reward);
    Learn(arm, ctx, reward);
  }
  void Click(uint32_t arm, const BanditContext& ctx) final {
    counts_.AddClick(arm);
    LearnClick(arm, ctx);
  }

 protected:
  virtual void LearnClick(uint32_t arm, const BanditContext& ctx) = 0;
  virtual uint32_t Pick(std::span<const uint32_t> arms, const BanditContext& ctx, double pctr) = 0;
  virtual void Learn(uint32_t arm, const BanditContext& ctx, double reward) = 0;

  BanditOptions o_;
  std::mt19937_64 rng_;
  ArmCounts counts_;
};

double Clamp01(double p) { return std::clamp(p, 1e-4, 1 - 1e-4); }

class ThompsonPolicy final : public LimitedPolicy {
 public:
  using LimitedPolicy::LimitedPolicy;
  std::string_view name() const override { return "thompson"; }

 protected:
  uint32_t Pick(std::span<const uint32_t> arms, const BanditContext& ctx, double pctr) override {
    const double p = Clamp01(pctr), s = o_.prior_strength;
    uint32_t best = arms.front();
    double best_draw = -1;
    for (uint32_t a : arms) {
      // The segment's prior is the arm's pooled rate over every segment (itself shrunk to the
      // pCTR), so what one segment learns about a variant informs the others until they have
      // data of their own.
      const double m = Clamp01((counts_.clicks(a) + s * p) / (static_cast<double>(counts_.impressions(a)) + s));
      double alpha = s * m, beta = s * (1 - m);
      if (auto it = posts_.find(Key(a, ctx.segment)); it != posts_.end()) {
        alpha += it->second.first;
        beta += it->second.second;
      }
      // Beta(α, β) as X/(X+Y) with X ~ Gamma(α), Y ~ Gamma(β).
      const double x = std::gamma_distribution<double>(alpha, 1.0)(rng_), y = std::gamma_distribution<double>(beta, 1.0)(rng_);
      const double draw = x / std::max(x + y, 1e-300);
      if (draw > best_draw) best_draw = draw, best = a;
    }
    return best;
  }
  void Learn(uint32_t arm, const BanditContext& ctx, double reward) override {
    auto& post = posts_[Key(arm, ctx.segment)];
    post.first += reward;
    post.second += 1 - reward;
  }
  void LearnClick(uint32_t arm, const BanditContext& ctx) override {
    auto& post = posts_[Key(arm, ctx.segment)];
    post.first += 1;
    post.second = std::max(0.0, post.second - 1);
  }

 private:
  static uint64_t Key(uint32_t arm, uint32_t segment) { return (uint64_t{arm} << 32) | segment; }
  std::unordered_map<uint64_t, std::pair<double, double>> posts_;  // clicks, non-clicks
};

// Disjoint LinUCB (Li et al. 2010): per arm A = λI + Σ x xᵀ (kept as its inverse, updated by
// Sherman-Morrison) and b = Σ r x; score θᵀx + α √(xᵀA⁻¹x) with θ = A⁻¹b. The prior puts the
// ad's pCTR on the bias feature (index 0): b starts at λ·pCTR·e₀.
class LinUcbPolicy final : public LimitedPolicy {
 public:
  using LimitedPolicy::LimitedPolicy;
  std::string_view name() const override { return "linucb"; }

 protected:
  uint32_t Pick(std::span<const uint32_t> arms, const BanditContext& ctx, double pctr) override {
    const Features x = Of(ctx);
    uint32_t best = arms.front();
    double best_score = -1e300;
    for (uint32_t a : arms) {
      const double score = Score(ArmFor(a, pctr), x);
      if (score > best_score) best_score = score, best = a;
    }
    return best;
  }
  void Learn(uint32_t arm, const BanditContext& ctx, double reward) override {
    Arm& s = ArmFor(arm, -1);
    const Features x = Of(ctx);
    const size_t d = o_.dim;
    const std::vector<double> ax = AinvX(s, x);
    double xax = 0;
    for (const auto& [f, v] : x) xax += v * ax[f];
    const double k = 1.0 / (1.0 + xax);
    for (size_t i = 0; i < d; ++i) {
      for (size_t j = 0; j < d; ++j) s.a_inv[i * d + j] -= k * ax[i] * ax[j];
    }
    for (const auto& [f, v] : x) s.b[f] += reward * v;
  }
  void LearnClick(uint32_t arm, const BanditContext& ctx) override {
    Arm& s = ArmFor(arm, -1);
    for (const auto& [f, v] : Of(ctx)) s.b[f] += v;
  }

 private:
  struct Arm {
    std::vector<double> a_inv, b;
  };
  // x as (index, value) pairs: the one-hot features at 1, then the dense ones at the end.
  using Features = std::vector<std::pair<uint32_t, double>>;
  Features Of(const BanditContext& ctx) const {
    Features x;
    x.reserve(ctx.features.size() + ctx.dense.size());
    for (uint32_t f : ctx.features) x.emplace_back(f, 1.0);
    const uint32_t first = o_.dim - static_cast<uint32_t>(ctx.dense.size());
    for (size_t i = 0; i < ctx.dense.size(); ++i) x.emplace_back(first + static_cast<uint32_t>(i), ctx.dense[i]);
    return x;
  }
  std::vector<double> AinvX(const Arm& s, const Features& x) const {
    const size_t d = o_.dim;
    std::vector<double> ax(d, 0.0);
    for (const auto& [f, v] : x) {
      for (size_t i = 0; i < d; ++i) ax[i] += s.a_inv[i * d + f] * v;
    }
    return ax;
  }
  Arm& ArmFor(uint32_t arm, double pctr) {
    auto [it, fresh] = arms_.try_emplace(arm);
    if (fresh) {
      const size_t d = o_.dim;
      it->second.a_inv.assign(d * d, 0.0);
      for (size_t i = 0; i < d; ++i) it->second.a_inv[i * d + i] = 1.0 / o_.ridge;
      it->second.b.assign(d, 0.0);
      it->second.b[0] = o_.ridge * (pctr < 0 ? 0.0 : Clamp01(pctr));
    }
    return it->second;
  }
  double Score(const Arm& s, const Features& x) const {
    const size_t d = o_.dim;
    const std::vector<double> ax = AinvX(s, x);  // A⁻¹ is symmetric: θᵀx = bᵀ(A⁻¹x)
    double mean = 0, var = 0;
    for (size_t j = 0; j < d; ++j) mean += s.b[j] * ax[j];
    for (const auto& [f, v] : x) var += v * ax[f];
    return mean + o_.alpha * std::sqrt(std::max(var, 0.0));
  }
  std::unordered_map<uint32_t, Arm> arms_;
};

}  // namespace

StatusOr<std::unique_ptr<CreativePolicy>> MakeCreativePolicy(std::string_view name, const BanditOptions& options) {
  if (options.prior_strength <= 0 || options.ridge <= 0 || options.alpha < 0 || options.max_cold_share < 0 ||
      options.max_cold_share > 1 || options.dim == 0) {
    return InvalidArgumentError("bandit options out of range: prior_strength and ridge must be positive, alpha ≥ 0, "
                                "max_cold_share in [0, 1], dim ≥ 1");
  }
  if (name == "random") return std::unique_ptr<CreativePolicy>(new RandomPolicy(options.seed));
  if (name == "first") return std::unique_ptr<CreativePolicy>(new FirstPolicy());
  if (name == "thompson") return std::unique_ptr<CreativePolicy>(new ThompsonPolicy(options));
  if (name == "linucb") return std::unique_ptr<CreativePolicy>(new LinUcbPolicy(options));
  return InvalidArgumentError("unknown creative policy '" + std::string(name) + "' (known: " + kCreativePolicyNames + ")");
}

}  // namespace adrec::creative
