// Generates a synthetic ad world of a given size and reports time, events/s, peak RSS and bytes
// per event; with --stats also CTR per scene, funnel rates and the Bayes-optimal click AUC.
//
//   gen_bench --users 100000 --impressions-target 10000000 --stats
//   gen_bench --users 1000000 --impressions-target 100000000 --ads 100000 --advertisers 5000
//   gen_bench --users 1000000 --impressions-target 100000000 --stream   (events counted, not kept)
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "adrec/data/synthetic.h"

namespace {

using adrec::data::Action;

double PeakRssMiB() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux: KiB
}

// AUC of truth vs label over impressions, with truth binned on the logit scale (2^20 bins: ties
// inside a bin count half, an error far below the digits printed).
double BinnedAuc(const std::vector<float>& score, const std::vector<uint8_t>& label) {
  constexpr int kBins = 1 << 20;
  constexpr double kLo = -16, kHi = 8;  // logit range covered
  std::vector<uint64_t> pos(kBins), neg(kBins);
  for (size_t i = 0; i < score.size(); ++i) {
    double p = std::clamp<double>(score[i], 1e-7, 1 - 1e-7), z = std::log(p / (1 - p));
    int b = std::clamp(static_cast<int>((z - kLo) / (kHi - kLo) * kBins), 0, kBins - 1);
    (label[i] ? pos : neg)[b]++;
  }
  double area = 0, neg_below = 0, total_pos = 0, total_neg = 0;
  for (int b = 0; b < kBins; ++b) {
    area += pos[b] * (neg_below + 0.5 * neg[b]);
    neg_below += neg[b];
    total_pos += pos[b];
    total_neg += neg[b];
  }
  return total_pos > 0 && total_neg > 0 ? area / (total_pos * total_neg) : 0.5;
}

void Usage() {
  std::fprintf(stderr,
               "usage: gen_bench [--users N] [--ads N] [--advertisers N] [--days N] [--scenes N]\n"
               "                 [--impressions-target N] [--threads N] [--seed N] [--stats] [--stream]\n");
}

}  // namespace

int main(int argc, char** argv) {
  adrec::data::SyntheticOptions opt;
  opt.show_progress = true;
  double target = 0;
  bool stats = false, stream = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> double {
      if (i + 1 >= argc) {
        Usage();
        std::exit(2);
      }
      return std::atof(argv[++i]);
    };
    if (a == "--users") opt.users = static_cast<uint32_t>(next());
    else if (a == "--ads") opt.ads = static_cast<uint32_t>(next());
    else if (a == "--advertisers") opt.advertisers = static_cast<uint32_t>(next());
    else if (a == "--days") opt.days = static_cast<uint32_t>(next());
    else if (a == "--scenes") opt.scenes = static_cast<uint32_t>(next());
    else if (a == "--impressions-target") target = next();
    else if (a == "--threads") opt.threads = static_cast<uint32_t>(next());
    else if (a == "--seed") opt.seed = static_cast<uint64_t>(next());
    else if (a == "--signal-scale") opt.signal_scale = next();
    else if (a == "--stats") stats = true;
    else if (a == "--stream") stream = true;
    else if (a == "--quiet") opt.show_progress = false;
    else {
      Usage();
      return 2;
    }
  }
  if (target > 0) opt.impressions_per_user_day = target / (static_cast<double>(opt.users) * opt.days);

  auto t0 = std::chrono::steady_clock::now();
  uint64_t events = 0, impressions = 0;
  size_t event_bytes = 0;
  adrec::data::Dataset ds;
  if (stream) {
    adrec::Status st = adrec::data::StreamSyntheticWorld(opt, &ds, [&](const adrec::data::EventColumns& b) {
      events += b.size();
      for (uint8_t a : b.action) impressions += a == 0;
      return adrec::Status::Ok();
    });
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.ToString().c_str());
      return 1;
    }
  } else {
    auto r = adrec::data::GenerateSyntheticWorld(opt);
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
      return 1;
    }
    ds = std::move(r).value();
    events = ds.num_events();
    for (uint8_t a : ds.events.action) impressions += a == 0;
    event_bytes = ds.events.MemoryBytes();
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("gen_bench: users=%u ads=%u advertisers=%u days=%u scenes=%u impressions/user/day=%.3f threads=%u%s\n",
              opt.users, opt.ads, opt.advertisers, opt.days, opt.scenes, opt.impressions_per_user_day, opt.threads,
              stream ? " (streaming, events not kept)" : "");
  std::printf("  events        %llu (impressions %llu)\n", static_cast<unsigned long long>(events),
              static_cast<unsigned long long>(impressions));
  std::printf("  time          %.2f s\n", secs);
  std::printf("  events/s      %.3g\n", events / secs);
  std::printf("  peak RSS      %.1f MiB\n", PeakRssMiB());
  std::printf("  bytes/event   %.1f (peak RSS / events)", PeakRssMiB() * 1048576.0 / std::max<uint64_t>(1, events));
  if (event_bytes) std::printf(", %.1f (event columns)", static_cast<double>(event_bytes) / events);
  std::printf("\n");

  if (stats && !stream) {
    const auto& ev = ds.events;
    std::vector<uint8_t> label = adrec::data::NextStageLabels(ds);
    std::vector<uint64_t> imp(ds.scenes.size()), clk(ds.scenes.size()), per_action(8);
    std::vector<float> truth_imp;
    std::vector<uint8_t> label_imp;
    truth_imp.reserve(impressions);
    label_imp.reserve(impressions);
    double sum_truth = 0;
    for (size_t i = 0; i < ev.size(); ++i) {
      per_action[ev.action[i]]++;
      if (ev.action[i] == 0) {
        imp[ev.scene[i]]++;
        clk[ev.scene[i]] += label[i];
        truth_imp.push_back(ev.truth[i]);
        label_imp.push_back(label[i]);
        sum_truth += ev.truth[i];
      }
    }
    std::printf("  CTR           overall %.4f (mean truth %.4f)\n",
                static_cast<double>(per_action[1]) / std::max<uint64_t>(1, per_action[0]), sum_truth / impressions);
    for (size_t s = 0; s < ds.scenes.size(); ++s) {
      std::printf("    %-15s %.4f over %llu impressions\n", ds.scenes[s].c_str(),
                  static_cast<double>(clk[s]) / std::max<uint64_t>(1, imp[s]), static_cast<unsigned long long>(imp[s]));
    }
    std::printf("  funnel        clicks %llu, downloads %llu, installs %llu, conversions %llu\n",
                static_cast<unsigned long long>(per_action[1]), static_cast<unsigned long long>(per_action[2]),
                static_cast<unsigned long long>(per_action[3]), static_cast<unsigned long long>(per_action[4]));
    const auto* obj = ds.item_table.Find(adrec::data::synthetic_cols::kObjective);
    uint64_t app_clicks = 0;
    for (size_t i = 0; i < ev.size(); ++i) app_clicks += ev.action[i] == 1 && obj->u32[ev.item[i]] == 1;
    std::printf("  rates         download/app-click %.3f, install/download %.3f, conversion/click %.4f\n",
                static_cast<double>(per_action[2]) / std::max<uint64_t>(1, app_clicks),
                static_cast<double>(per_action[3]) / std::max<uint64_t>(1, per_action[2]),
                static_cast<double>(per_action[4]) / std::max<uint64_t>(1, per_action[1]));
    std::printf("  Bayes AUC     %.4f (truth vs click, impressions)\n", BinnedAuc(truth_imp, label_imp));
  }
  return 0;
}
