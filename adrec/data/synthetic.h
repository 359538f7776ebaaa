// The synthetic "ad world": the embedded default dataset (`adrec gen`) whose ground truth
// (true click / download / install / conversion probabilities) lets tests and benchmarks check
// that models learn. Everything below is the generator's contract; the numbers live as named
// constants in synthetic.cc.
//
// WORLD MODEL
//  Taxonomy   3 levels, bilingual (name_en, name_zh): 8 level-1 verticals (games, ecommerce,
//             lifestyle, finance, education, travel, health, entertainment), 28 level-2 and
//             59 level-3 nodes (games › MOBA › 5v5 arena, ecommerce › fashion › sneakers, ...).
//  Catalog    advertisers (home level-1 vertical, hidden quality) → campaigns (one level-3 node,
//             one product, one objective: "app" = click → download → install → conversion, or
//             "web" = click → conversion) → ads. An ad has cat1/cat2/cat3, advertiser, campaign,
//             bid (CPM), creative attributes (format, orientation, duration, colour, text_type),
//             lang (en/zh, about half each), a title and description rendered from templates
//             with the product name, the taxonomy names, a feature phrase, a call to action and a
//             "hook" phrase (see below), launch_time and cold_start (launched late in the range).
//  Users      age, gender, region, device (columns); hidden: language preference (from region),
//             activity level, and an interest distribution over the 28 level-2 nodes (sparse,
//             Dirichlet-like, shaped by age and gender) that drifts daily and jumps sometimes.
//  Sessions   Poisson sessions per day at diurnal hours; each picks a scene (feed, search, splash,
//             app_store, rewarded_video, banner: the first `scenes` of them) and shows a ranked
//             list of distinct live ads chosen by a logging policy: a share `exploration` of
//             uniformly random live ads (so every ad gets impressions), a boost for new ads, the
//             rest targeted at a blurred copy of the user's interest; ranked by bid and noise.
//
// GROUND-TRUTH CLICK MODEL (logit, summed; every learnable term is scaled by signal_scale)
//   scene base CTR
//   + position bias        -eta_scene * log(1 + position)
//   + interest             w_scene * log-affinity of the user's current interest for the ad's
//                          level-2 node (with a share for its level-1 siblings)
//   + text semantics       the hidden appeal of the hook phrases in the title (full weight) and
//                          description (half weight): see SyntheticHooks(). Only the words carry
//                          it: appeals average ~0 within each text_type, so the text_type column
//                          does not reveal it; a text model does.
//   + language match       +/- when the ad's lang matches the user's hidden language preference
//   + sequence / intent    after a click on level-3 node c, ads of c (full), its level-2 node
//                          (less) and level-1 node (least) gain a boost decaying with a 30-minute
//                          time constant (last 8 clicks, capped)
//   + fatigue              minus per earlier impression of the same ad to the user in 24 h
//   + creative × taste     format × age, playable × games, orientation × scene and × device,
//                          colour × gender, text_type × age, long videos penalised
//   + ad quality           hidden ad + campaign + advertiser quality (Gaussian)
//
// FUNNEL AND THE TRUTH COLUMN (EventColumns::truth = true P(next stage | this event))
//   impression  → truth = P(click)
//   click       → truth = P(download | click) for "app" ads, P(conversion | click) for "web" ads
//   download    → truth = P(install | download)
//   install     → truth = P(conversion | install)
//   conversion  → truth = 0 (the last stage); value = the conversion's worth (currency units)
//   Every funnel stage has its own logit (scene, interest, landing quality, device, advertiser).
//   Event times: click 1-5 s after its impression, download 5-90 s after the click, install
//   20-300 s later, conversion minutes to hours later; all of a user's events in time order.
//   NextStageLabels() recovers the realised label that each truth value predicts.
//
// DETERMINISM: every random draw comes from xoshiro256** streams seeded from (seed, stream, user),
// so the same options give byte-identical datasets whatever the thread count.
// MEMORY: events are produced user by user in time order (no sort), with capacity reserved from
// the expected count: ~25 bytes per event in all; 1M users × 100M impressions take about 31 s
// and 2.4 GiB peak RSS on a 2-core machine (bench/gen_bench.cc, docs/BENCHMARKS.md). StreamSyntheticWorld keeps
// only one block of users' events (tens of MiB).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "adrec/core/status.h"
#include "adrec/data/dataset.h"

namespace adrec::data {

// Scenes in the order options.scenes takes them.
inline constexpr std::string_view kSyntheticScenes[] = {"feed",      "search",         "splash",
                                                        "app_store", "rewarded_video", "banner"};
inline constexpr uint32_t kNumSyntheticScenes = 6;

// Item columns the generator adds beside the cols:: ones.
namespace synthetic_cols {
inline constexpr std::string_view kObjective = "objective";      // categorical: app, web
inline constexpr std::string_view kLaunchTime = "launch_time";   // u32 unix seconds the ad goes live
inline constexpr std::string_view kProduct = "product";          // string: product name in the ad's language
}  // namespace synthetic_cols

struct SyntheticOptions {
  uint32_t users = 5000;
  uint32_t ads = 1000;
  uint32_t advertisers = 100;      // each has at least one ad, so ≤ ads
  uint32_t days = 14;
  uint32_t scenes = 4;             // the first `scenes` of kSyntheticScenes
  uint64_t seed = 42;
  // Mean impressions per user and day (users' activity varies around it); 3.0 gives ~210k
  // impressions at the defaults.
  double impressions_per_user_day = 3.0;
  double cold_start_fraction = 0.1;  // ads launched in the second half of the range
  bool show_progress = true;
  double campaigns_per_advertiser = 3.0;  // mean
  double zh_fraction = 0.5;               // share of ads written in Chinese
  double exploration = 0.2;               // share of uniformly random live ads in the lists
  // Multiplies every learnable term of the click model: 0 leaves only scene and position, larger
  // makes the world easier (higher Bayes AUC).
  double signal_scale = 1.0;
  double interest_drift = 0.03;     // share of a user's interest that moves each day
  double interest_jump_rate = 0.02; // chance per user and day of a sudden new interest
  int64_t start_time = 1735689600;  // 2025-01-01T00:00:00Z: first day of logs
  uint32_t threads = 0;             // 0 = all cores; the output does not depend on it
};

// Builds the whole world in memory. InvalidArgument on bad options (zero users, ads, advertisers,
// days or scenes, more scenes than named, more advertisers than ads, rates out of range).
StatusOr<Dataset> GenerateSyntheticWorld(const SyntheticOptions& options);

// The streaming form: fills `catalog` with everything but events (users, items, tables,
// taxonomy, scenes; user_offsets empty) and hands the events to `sink` in blocks of whole users,
// in (user, time) order, so a caller can write them out without holding them all. The block is
// reused after sink returns; a sink error stops generation and is returned.
using SyntheticEventSink = std::function<Status(const EventColumns& block)>;
Status StreamSyntheticWorld(const SyntheticOptions& options, Dataset* catalog, const SyntheticEventSink& sink);

// Expected number of impressions for these options (what the generator reserves for).
double ExpectedSyntheticImpressions(const SyntheticOptions& options);

// A hook phrase of the text-semantic term: titles and descriptions carry one each; `appeal` is
// its hidden logit contribution (ground truth for tests; models must learn it from the words).
struct SyntheticHook {
  std::string_view text_type;
  std::string_view en;
  std::string_view zh;
  float appeal;
};
std::span<const SyntheticHook> SyntheticHooks();

// Ground truth for creative variants (adrec simulate): the part of the click logit that a
// creative's looks and words carry, as the generator scores it. A variant of an ad changes its
// colour, orientation and title; the rest of the ad's logit stays.
struct SyntheticCreativeTraits {
  uint32_t colour = 0, orientation = 0, text_type = 0;
  double appeal = 0;  // the title's hook phrase (0: none of SyntheticHooks() in it)
};
struct SyntheticViewer {
  uint32_t age = 0, gender = 0, device = 0, scene = 0;
};
// From the catalogue's values (the generator's names: "red", "portrait", ...) and the title's
// words (the first hook phrase found in it, English or Chinese, gives appeal and text type; none:
// `fallback_text_type`). InvalidArgument names an unknown value.
StatusOr<SyntheticCreativeTraits> SyntheticCreativeTraitsOf(std::string_view title, std::string_view colour,
                                                            std::string_view orientation,
                                                            std::string_view fallback_text_type);
StatusOr<SyntheticViewer> SyntheticViewerOf(std::string_view age, std::string_view gender, std::string_view device,
                                            std::string_view scene);
// Colour × gender + orientation × (device, scene) + text type × age + title hook appeal, before
// signal_scale.
double SyntheticCreativeLogit(const SyntheticCreativeTraits& creative, const SyntheticViewer& viewer);

// For every event, 1 when the next funnel stage that its truth predicts did happen (impression →
// its click, click → its download (app) or conversion (web), download → install, install →
// conversion), else 0. Needs the objective item column. AUC(truth, label) over impressions is
// the Bayes-optimal click AUC.
std::vector<uint8_t> NextStageLabels(const Dataset& ds);

}  // namespace adrec::data
