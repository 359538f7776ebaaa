// The synthetic ad world: catalog, users, sessions and the ground-truth funnel (synthetic.h
// describes the model). Randomness comes only from the xoshiro256** streams below, never from
// std:: distributions, so output is identical across standard libraries and thread counts.
#include "adrec/data/synthetic.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <future>
#include <memory>
#include <numeric>

#include "adrec/core/progress.h"
#include "adrec/core/thread_pool.h"
#include "adrec/data/synthetic_text.h"

namespace adrec::data {
namespace {

using synth::L1Nodes;
using synth::L2Nodes;
using synth::L3Nodes;

// ---------------------------------------------------------------------------------------------
// Random numbers: splitmix64 seeding + xoshiro256** (Blackman & Vigna), own distributions.

inline uint64_t Mix64(uint64_t z) {  // splitmix64 finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& s : s_) {
      seed += 0x9e3779b97f4a7c15ULL;
      s = Mix64(seed);
    }
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }           // [0, 1)
  double UniformOpen() { return (static_cast<double>(Next() >> 11) + 0.5) * 0x1.0p-53; }  // (0, 1)
  // [0, n): multiply-shift (Lemire); the bias of at most n / 2^32 does not matter here.
  uint32_t Below(uint32_t n) { return static_cast<uint32_t>(((Next() >> 32) * static_cast<uint64_t>(n)) >> 32); }
  bool Bernoulli(double p) { return Uniform() < p; }
  double Normal() {  // Box-Muller, one value per call (no cached state to keep in sync)
    double r = std::sqrt(-2.0 * std::log(UniformOpen()));
    return r * std::cos(kTwoPi * Uniform());
  }
  // Mean 0, sd 1, bell-shaped (Irwin-Hall of 3 uniforms): cheap noise for the logging policy.
  double RoughNormal() { return (Uniform() + Uniform() + Uniform() - 1.5) * 2.0; }
  double Exponential(double mean) { return -mean * std::log(UniformOpen()); }
  double Gamma(double shape) {  // Marsaglia & Tsang (2000); shape < 1 via the u^(1/a) boost
    if (shape < 1.0) return Gamma(shape + 1.0) * std::pow(UniformOpen(), 1.0 / shape);
    const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
      double x = Normal(), v = 1.0 + c * x;
      if (v <= 0) continue;
      v = v * v * v;
      double u = UniformOpen();
      if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
    }
  }
  uint32_t Poisson(double lambda) {
    if (lambda <= 0) return 0;
    if (lambda < kPoissonKnuthMax) {  // Knuth: multiply uniforms until below e^-lambda
      const double limit = std::exp(-lambda);
      uint32_t k = 0;
      for (double p = Uniform(); p > limit; p *= Uniform()) ++k;
      return k;
    }
    return static_cast<uint32_t>(std::max(0.0, std::round(lambda + std::sqrt(lambda) * Normal())));
  }
  // Index drawn from a cumulative weight table.
  template <typename T>
  uint32_t FromCdf(const T* cdf, uint32_t n) {
    double r = Uniform() * cdf[n - 1];
    return static_cast<uint32_t>(std::min<size_t>(std::upper_bound(cdf, cdf + n, r) - cdf, n - 1));
  }

 private:
  static constexpr double kPoissonKnuthMax = 30.0;  // above: normal approximation
  static constexpr double kTwoPi = 6.283185307179586;
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// Independent streams: one for the catalog, one per user (so threads do not change output).
enum Stream : uint64_t { kCatalogStream = 1, kUserStream = 2 };
Rng StreamRng(uint64_t seed, Stream stream, uint64_t index) {
  return Rng(Mix64(seed ^ Mix64(stream * 0x9e3779b97f4a7c15ULL + index)));
}

inline double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// ---------------------------------------------------------------------------------------------
// World constants. Logit terms are in natural-log odds.

constexpr int64_t kDay = 86400;
constexpr uint32_t kNumL1 = 8, kNumL2 = 28;

constexpr const char* kAgeNames[] = {"18-24", "25-34", "35-44", "45-54", "55+"};
constexpr double kAgeWeights[] = {0.22, 0.30, 0.22, 0.15, 0.11};
constexpr uint32_t kNumAges = 5;
constexpr const char* kGenderNames[] = {"female", "male"};
constexpr uint32_t kNumGenders = 2;
struct Region {
  const char* name;
  double zh_pref;  // chance a user here prefers Chinese text
  double weight;
};
constexpr Region kRegions[] = {
    {"Beijing", 0.95, 0.12}, {"Shanghai", 0.93, 0.12},  {"Guangzhou", 0.95, 0.08},    {"Shenzhen", 0.90, 0.08},
    {"Chengdu", 0.97, 0.07}, {"Hangzhou", 0.95, 0.06},  {"Singapore", 0.50, 0.07},    {"Hong Kong", 0.70, 0.06},
    {"London", 0.05, 0.08},  {"New York", 0.05, 0.10},  {"Sydney", 0.08, 0.06},       {"Toronto", 0.10, 0.06},
    {"San Francisco", 0.10, 0.04},
};
constexpr uint32_t kNumRegions = std::size(kRegions);
constexpr const char* kDeviceNames[] = {"ios", "android_high", "android_low", "tablet"};
constexpr double kDeviceWeights[] = {0.30, 0.35, 0.30, 0.05};
constexpr uint32_t kNumDevices = 4;
enum Device { kIos = 0, kAndroidHigh, kAndroidLow, kTablet };

constexpr const char* kFormatNames[] = {"image", "video", "carousel", "playable", "text"};
constexpr double kFormatWeights[] = {0.40, 0.30, 0.12, 0.08, 0.10};
constexpr uint32_t kNumFormats = 5;
enum Format { kImage = 0, kVideo, kCarousel, kPlayable, kText };
constexpr const char* kOrientationNames[] = {"landscape", "portrait", "square"};
constexpr double kOrientationWeights[] = {0.35, 0.40, 0.25};
constexpr uint32_t kNumOrientations = 3;
constexpr const char* kColourNames[] = {"red", "blue", "green", "yellow", "black", "white", "purple", "orange"};
constexpr uint32_t kNumColours = 8;
constexpr const char* kTextTypeNames[] = {"benefit", "urgency", "social_proof", "question", "discount", "story"};
constexpr uint32_t kNumTextTypes = 6;

// Interest: a few active level-2 nodes plus a floor, so anyone may click anything sometimes.
constexpr double kActiveInterestsMean = 1.5;  // active nodes = 2 + Poisson(this), at most 6
constexpr uint32_t kMaxExtraInterests = 4;
constexpr double kInterestGammaShape = 1.0;   // Dirichlet(1) weights over the active nodes
constexpr double kInterestFloor = 0.03;       // mass spread over all 28 nodes
constexpr double kSiblingShare = 0.25;        // interest in a node leaks to its level-1 siblings
constexpr double kAffinityEps = 0.01;         // keeps log-affinity finite
constexpr double kInterestWeight = 0.55;      // logit per unit of log-affinity
constexpr double kJumpMass = 0.35;            // share a sudden new interest takes
constexpr double kPolicyTrueShare = 0.6;      // logging policy: blurred interest = this × truth + rest × prior

// Demographic prior over level-1 verticals (games … entertainment) per age bucket.
constexpr double kAgeL1Prior[kNumAges][kNumL1] = {
    {3.0, 1.5, 1.2, 0.4, 1.5, 0.6, 0.5, 2.5},
    {1.8, 1.8, 1.5, 1.0, 1.0, 1.0, 0.8, 1.5},
    {1.0, 1.6, 1.3, 1.5, 1.3, 1.2, 1.0, 1.0},
    {0.5, 1.4, 1.0, 1.8, 0.8, 1.4, 1.4, 0.8},
    {0.3, 1.2, 0.8, 1.6, 0.4, 1.5, 2.0, 0.8},
};
constexpr double kGenderL1Prior[kNumGenders][kNumL1] = {
    {0.8, 1.3, 1.0, 0.9, 1.1, 1.1, 1.1, 1.0},
    {1.25, 0.8, 1.0, 1.1, 0.9, 0.9, 0.9, 1.0},
};
constexpr uint32_t kL2Fashion = 5, kL2Beauty = 8;
constexpr double kFemaleStyleBoost = 1.8;  // fashion and beauty within ecommerce

// Creative × taste (logit).
constexpr double kFormatByAge[kNumAges][kNumFormats] = {
    {0.00, 0.30, 0.10, 0.25, -0.30},
    {0.00, 0.20, 0.10, 0.10, -0.20},
    {0.00, 0.00, 0.05, -0.10, 0.00},
    {0.10, -0.15, 0.00, -0.30, 0.10},
    {0.15, -0.25, -0.10, -0.40, 0.20},
};
constexpr double kPlayableGames = 0.30;      // playable ads work for games, not elsewhere
constexpr double kVideoLengthFree = 15.0;    // seconds before a video starts to bore
constexpr double kVideoLengthPenalty = 0.012;  // logit per second beyond that
constexpr double kOrientationByDevice[kNumDevices][kNumOrientations] = {
    {0, 0, 0}, {0, 0, 0}, {0, 0, 0.05}, {0.20, -0.15, 0}};
constexpr double kColourByGender[kNumGenders][kNumColours] = {
    {0.10, -0.05, 0.00, 0.05, -0.10, 0.05, 0.15, 0.00},
    {0.05, 0.10, 0.05, -0.05, 0.10, -0.05, -0.15, 0.00},
};
constexpr double kTextTypeByAge[kNumAges][kNumTextTypes] = {
    {0.00, 0.12, -0.05, 0.05, 0.10, 0.00},
    {0.00, 0.06, 0.00, 0.02, 0.08, 0.00},
    {0.05, 0.00, 0.05, 0.00, 0.05, 0.00},
    {0.05, -0.05, 0.10, -0.05, 0.00, 0.05},
    {0.05, -0.10, 0.15, -0.08, -0.03, 0.10},
};
constexpr double kTitleHookWeight = 1.0;  // text-semantic term: title hook appeal
constexpr double kDescHookWeight = 0.5;   // description hook appeal
constexpr double kLangMatch = 0.30;       // ± when the ad's language is (not) the user's
constexpr double kAdQualitySd = 0.35, kCampaignQualitySd = 0.25, kAdvertiserQualitySd = 0.20;

// Sequence / intent: recent clicks boost their category, decaying with kIntentTau.
constexpr uint32_t kRecentClicks = 8;
constexpr double kIntentTau = 1800.0;      // s
constexpr double kIntentWindow = 4 * 3600.0;  // s; older clicks are ignored
constexpr double kIntentSameL3 = 1.0, kIntentSameL2 = 0.7, kIntentSameL1 = 0.3, kIntentCap = 1.5;
// Fatigue: each impression of the same ad in the last day costs this much.
constexpr uint32_t kRecentImpressions = 32;
constexpr double kFatiguePerImpression = 0.15;

// Funnel (logit bases; scene-specific download bases are in kScenes).
constexpr double kFunnelInterest = 0.35;   // interest also lifts later stages
constexpr double kDownloadByDevice[kNumDevices] = {0.10, 0.0, -0.20, -0.10};
constexpr double kInstallBase = 1.5;
constexpr double kInstallByDevice[kNumDevices] = {0.40, 0.20, -0.60, 0.0};
constexpr double kInstallConvBase = -2.4;  // install → conversion (first purchase, sign-up)
constexpr double kWebConvBase = -3.3;      // click → conversion on a web page
constexpr double kLandingSd = 0.40, kConvQualitySd = 0.35;
constexpr double kConvValueSd = 0.5;       // log-normal spread of a conversion's worth

// Catalog.
constexpr double kBidSd = 0.4;               // log-normal spread of bids around the vertical's median
constexpr double kHomeVerticalShare = 0.85;  // campaigns in the advertiser's home vertical
constexpr double kAdvertiserSizeShape = 0.7; // Gamma shape of advertiser sizes (few big ones)
constexpr double kVideoMinSeconds = 6.0, kVideoMaxSeconds = 60.0, kVideoMeanExtra = 12.0;
constexpr uint32_t kWarmLaunchMaxDays = 90;  // warm ads went live up to this long before day 0
constexpr double kColdLaunchFrom = 0.4, kColdLaunchTo = 0.9;  // cold ads launch in this part of the range

// Logging policy.
constexpr double kNewAdBoost = 0.05;     // extra share of slots for live cold-start ads
constexpr double kPolicyInterest = 0.3;  // ranking score: log(bid) + this × affinity + noise
constexpr double kPolicyNoise = 0.7;
constexpr uint32_t kPickAttempts = 4;    // redraws for a duplicate or an off-scene ad

// Diurnal session start weights per hour (UTC treated as local time).
constexpr double kHourWeights[24] = {0.30, 0.15, 0.10, 0.08, 0.08, 0.15, 0.40, 0.80, 1.00, 0.90, 0.80, 0.90,
                                     1.30, 1.10, 0.90, 0.90, 0.90, 1.00, 1.20, 1.50, 1.80, 1.90, 1.50, 0.80};
constexpr int64_t kSessionGap = 60;  // s between the end of a session and the next
constexpr uint32_t kClickDelayMin = 1, kClickDelaySpan = 5;        // 1-5 s after the impression
constexpr uint32_t kDwellMin = 10, kDwellSpan = 50;                // landing page before scrolling on
constexpr uint32_t kDownloadDelayMin = 5, kDownloadDelaySpan = 86;  // 5-90 s after the click
constexpr uint32_t kInstallDelayMin = 20, kInstallDelaySpan = 281;  // 20-300 s after the download
constexpr double kConvDelayMin = 60, kConvDelayMean = 2 * 3600.0, kConvDelayMax = 2 * kDay;

struct SceneSpec {
  double base;           // logit
  double pos_eta;        // position bias: -eta × log(1 + position)
  double interest_mult;  // how much interest matters here (search: intent is explicit)
  uint32_t list_min, list_max;
  uint32_t slot_seconds;  // time between consecutive impressions of a list
  double session_weight;
  double download_base;   // click → download logit
  bool apps_only;
};
constexpr SceneSpec kScenes[kNumSyntheticScenes] = {
    {-4.45, 0.55, 1.0, 4, 10, 6, 0.50, -1.7, false},  // feed
    {-3.75, 0.90, 1.4, 3, 6, 4, 0.20, -1.4, false},   // search
    {-4.65, 0.00, 0.6, 1, 1, 5, 0.15, -2.2, false},   // splash
    {-3.95, 0.70, 1.0, 4, 8, 5, 0.15, -0.9, true},    // app_store
    {-3.70, 0.00, 0.8, 1, 1, 30, 0.10, -1.9, false},  // rewarded_video
    {-5.30, 0.30, 0.6, 1, 2, 20, 0.10, -2.1, false},  // banner
};
constexpr uint32_t kMaxList = 10;
constexpr double kOrientationByScene[kNumSyntheticScenes][kNumOrientations] = {
    {-0.10, 0.05, 0.10}, {0.05, -0.05, 0.00}, {-0.30, 0.30, -0.10},
    {0.10, -0.05, 0.00}, {0.20, 0.10, -0.20}, {0.20, -0.30, 0.00},
};

constexpr uint32_t kUsersPerChunk = 2048;  // one unit of parallel work / one sink block
constexpr double kFunnelEventsPerImpression = 0.08;  // reserve margin for clicks and later stages

// ---------------------------------------------------------------------------------------------
// The catalog as the simulation sees it.

struct Ad {
  uint32_t launch = 0;  // unix s
  uint8_t l1 = 0, l2 = 0, l3 = 0;  // indices into L1Nodes()/L2Nodes()/L3Nodes()
  uint8_t format = 0, orientation = 0, colour = 0, text_type = 0;
  bool zh = false, app = true, cold = false;
  float static_logit = 0;  // quality + text appeal + format-for-vertical + video length
  float bid = 0;
  float log_bid = 0;       // the policy ranks by it; cached to keep logs off the hot path
  float landing = 0;       // funnel quality of the landing page / store page
  float conv_quality = 0;
  float conv_value = 0;
};

// Ads of one pool ordered by launch time, so the live ones at time t are a prefix.
struct AdPool {
  std::vector<uint32_t> ads;
  std::vector<uint32_t> launch;
  uint32_t LiveCount(uint32_t t) const {
    return static_cast<uint32_t>(std::upper_bound(launch.begin(), launch.end(), t) - launch.begin());
  }
  void Add(uint32_t ad, uint32_t t) {
    ads.push_back(ad);
    launch.push_back(t);
  }
  void Sort() {
    std::vector<uint32_t> order(ads.size());
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return launch[a] < launch[b]; });
    std::vector<uint32_t> a2, l2;
    for (uint32_t i : order) {
      a2.push_back(ads[i]);
      l2.push_back(launch[i]);
    }
    ads.swap(a2);
    launch.swap(l2);
  }
};

struct World {
  SyntheticOptions opt;
  std::vector<Ad> ads;
  AdPool all, cold;
  std::array<AdPool, kNumL2> by_l2;
  std::array<uint8_t, kNumL2> l2_l1{};
  std::array<uint8_t, kNumL2> siblings{};           // level-2 nodes sharing the level-1 parent, minus one
  double prior[kNumAges][kNumGenders][kNumL2] = {};  // demographic prior over level-2 nodes (sums to 1)
  double prior_cdf[kNumAges][kNumGenders][kNumL2] = {};
  double scene_cdf[kNumSyntheticScenes] = {};
  double sessions_per_day = 0;  // for a user of activity 1
  double pos_bias[kNumSyntheticScenes][kMaxList] = {};
  double uniform_affinity = 0;  // log-affinity of a user with uniform interest (the zero point)
};

void BuildPriors(World& w) {
  auto l2s = L2Nodes();
  std::array<int, kNumL1> n_in_l1{};
  for (uint32_t c = 0; c < kNumL2; ++c) {
    w.l2_l1[c] = static_cast<uint8_t>(l2s[c].l1);
    n_in_l1[l2s[c].l1]++;
  }
  for (uint32_t c = 0; c < kNumL2; ++c) w.siblings[c] = static_cast<uint8_t>(n_in_l1[w.l2_l1[c]] - 1);
  for (uint32_t a = 0; a < kNumAges; ++a) {
    for (uint32_t g = 0; g < kNumGenders; ++g) {
      double sum = 0;
      for (uint32_t c = 0; c < kNumL2; ++c) {
        uint32_t l1 = w.l2_l1[c];
        double p = kAgeL1Prior[a][l1] * kGenderL1Prior[g][l1] / n_in_l1[l1];
        if (g == 0 && (c == kL2Fashion || c == kL2Beauty)) p *= kFemaleStyleBoost;
        w.prior[a][g][c] = p;
        sum += p;
      }
      double acc = 0;
      for (uint32_t c = 0; c < kNumL2; ++c) {
        w.prior[a][g][c] /= sum;
        acc += w.prior[a][g][c];
        w.prior_cdf[a][g][c] = acc;
      }
    }
  }
  double u0 = 1.0 / kNumL2;
  w.uniform_affinity = std::log(u0 + kSiblingShare * u0 + kAffinityEps);
}

void BuildScenes(World& w) {
  double acc = 0, mean_list = 0;
  for (uint32_t s = 0; s < w.opt.scenes; ++s) {
    acc += kScenes[s].session_weight;
    w.scene_cdf[s] = acc;
    mean_list += kScenes[s].session_weight * (kScenes[s].list_min + kScenes[s].list_max) / 2.0;
    for (uint32_t p = 0; p < kMaxList; ++p) w.pos_bias[s][p] = -kScenes[s].pos_eta * std::log1p(static_cast<double>(p));
  }
  mean_list /= acc;
  w.sessions_per_day = w.opt.impressions_per_user_day / mean_list;
}

// Catalog: advertisers → campaigns → ads, with every hidden quality drawn here.
struct CatalogText {
  std::vector<std::string> title, description, product;
  std::vector<uint32_t> advertiser, campaign;
  std::vector<float> duration;
};

void BuildCatalog(World& w, CatalogText& text) {
  const SyntheticOptions& o = w.opt;
  Rng rng = StreamRng(o.seed, kCatalogStream, 0);
  auto l1s = L1Nodes();
  auto l3s = L3Nodes();
  const uint32_t num_l3 = static_cast<uint32_t>(l3s.size());

  // Advertisers: home vertical, quality, size.
  std::vector<double> l1_cdf(kNumL1);
  double acc = 0;
  for (uint32_t i = 0; i < kNumL1; ++i) l1_cdf[i] = (acc += l1s[i].advertiser_share);
  std::vector<uint8_t> adv_home(o.advertisers);
  std::vector<float> adv_quality(o.advertisers);
  std::vector<double> adv_size_cdf(o.advertisers);
  acc = 0;
  for (uint32_t a = 0; a < o.advertisers; ++a) {
    adv_home[a] = static_cast<uint8_t>(rng.FromCdf(l1_cdf.data(), kNumL1));
    adv_quality[a] = static_cast<float>(kAdvertiserQualitySd * rng.Normal());
    adv_size_cdf[a] = (acc += rng.Gamma(kAdvertiserSizeShape) + 1e-9);
  }
  // Each advertiser gets one ad, the rest go by size; then shuffled so an ad's ID says nothing.
  std::vector<uint32_t> adv_of_ad(o.ads);
  for (uint32_t i = 0; i < o.ads; ++i) adv_of_ad[i] = i < o.advertisers ? i : rng.FromCdf(adv_size_cdf.data(), o.advertisers);
  for (uint32_t i = o.ads; i > 1; --i) std::swap(adv_of_ad[i - 1], adv_of_ad[rng.Below(i)]);
  std::vector<std::vector<uint32_t>> ads_of_adv(o.advertisers);
  for (uint32_t i = 0; i < o.ads; ++i) ads_of_adv[adv_of_ad[i]].push_back(i);

  // Campaigns: one level-3 node, one product, one objective each.
  struct Campaign {
    uint32_t l3;
    uint32_t product;
    bool app;
    float quality, landing, conv_quality, bid_mult;
  };
  std::vector<Campaign> campaigns;
  std::vector<uint32_t> campaign_of_ad(o.ads);
  std::vector<std::vector<uint32_t>> l3_by_l1(kNumL1);
  for (uint32_t i = 0; i < num_l3; ++i) l3_by_l1[L2Nodes()[l3s[i].l2].l1].push_back(i);
  for (uint32_t a = 0; a < o.advertisers; ++a) {
    const auto& mine = ads_of_adv[a];
    uint32_t n = std::min<uint32_t>(static_cast<uint32_t>(mine.size()), 1 + rng.Poisson(o.campaigns_per_advertiser - 1));
    uint32_t first = static_cast<uint32_t>(campaigns.size());
    for (uint32_t k = 0; k < n; ++k) {
      uint32_t l1 = rng.Bernoulli(kHomeVerticalShare) ? adv_home[a] : rng.Below(kNumL1);
      const auto& leaves = l3_by_l1[l1];
      Campaign c;
      c.l3 = leaves[rng.Below(static_cast<uint32_t>(leaves.size()))];
      c.product = rng.Below(2);
      c.app = rng.Bernoulli(l1s[l1].app_share);
      c.quality = static_cast<float>(kCampaignQualitySd * rng.Normal() + adv_quality[a]);
      c.landing = static_cast<float>(kLandingSd * rng.Normal());
      c.conv_quality = static_cast<float>(kConvQualitySd * rng.Normal() + adv_quality[a]);
      c.bid_mult = static_cast<float>(std::exp(kBidSd * rng.Normal()));
      campaigns.push_back(c);
    }
    for (size_t k = 0; k < mine.size(); ++k) campaign_of_ad[mine[k]] = first + (k < n ? k : rng.Below(n));
  }

  // Cold-start ads: a random subset, never all (some ad must be live on day 0).
  uint32_t n_cold = std::min<uint32_t>(o.ads - 1, static_cast<uint32_t>(o.cold_start_fraction * o.ads));
  std::vector<uint32_t> order(o.ads);
  std::iota(order.begin(), order.end(), 0u);
  for (uint32_t i = o.ads; i > 1; --i) std::swap(order[i - 1], order[rng.Below(i)]);
  std::vector<bool> is_cold(o.ads, false);
  for (uint32_t i = 0; i < n_cold; ++i) is_cold[order[i]] = true;

  std::vector<double> format_cdf(kNumFormats), orient_cdf(kNumOrientations);
  acc = 0;
  for (uint32_t i = 0; i < kNumFormats; ++i) format_cdf[i] = (acc += kFormatWeights[i]);
  acc = 0;
  for (uint32_t i = 0; i < kNumOrientations; ++i) orient_cdf[i] = (acc += kOrientationWeights[i]);
  auto hooks = SyntheticHooks();
  const uint32_t n_hooks = static_cast<uint32_t>(hooks.size());
  const double range_s = static_cast<double>(o.days) * kDay;

  w.ads.resize(o.ads);
  text.title.resize(o.ads);
  text.description.resize(o.ads);
  text.product.resize(o.ads);
  text.advertiser.resize(o.ads);
  text.campaign.resize(o.ads);
  text.duration.assign(o.ads, 0.f);
  for (uint32_t i = 0; i < o.ads; ++i) {
    const Campaign& c = campaigns[campaign_of_ad[i]];
    Ad& ad = w.ads[i];
    ad.l3 = static_cast<uint8_t>(c.l3);
    ad.l2 = static_cast<uint8_t>(l3s[c.l3].l2);
    ad.l1 = static_cast<uint8_t>(L2Nodes()[ad.l2].l1);
    ad.app = c.app;
    ad.cold = is_cold[i];
    ad.zh = rng.Bernoulli(o.zh_fraction);
    ad.format = static_cast<uint8_t>(rng.FromCdf(format_cdf.data(), kNumFormats));
    ad.orientation = static_cast<uint8_t>(rng.FromCdf(orient_cdf.data(), kNumOrientations));
    ad.colour = static_cast<uint8_t>(rng.Below(kNumColours));
    synth::AdTextSpec t;
    t.zh = ad.zh;
    t.app = ad.app;
    t.l3 = c.l3;
    t.product = c.product;
    t.hook = rng.Below(n_hooks);
    t.hook2 = rng.Below(n_hooks);
    t.title_template = rng.Below(synth::kNumTitleTemplates);
    t.cta = rng.Below(synth::kNumCtas);
    ad.text_type = static_cast<uint8_t>(std::find(std::begin(kTextTypeNames), std::end(kTextTypeNames),
                                                  hooks[t.hook].text_type) - std::begin(kTextTypeNames));
    double duration = 0;
    if (ad.format == kVideo) {
      duration = std::min(kVideoMaxSeconds, kVideoMinSeconds + rng.Exponential(kVideoMeanExtra));
      duration = std::round(duration);
    }
    double logit = kAdQualitySd * rng.Normal() + c.quality;
    logit += kTitleHookWeight * hooks[t.hook].appeal + kDescHookWeight * hooks[t.hook2].appeal;
    if (ad.format == kPlayable) logit += ad.l1 == 0 ? kPlayableGames : -kPlayableGames;
    logit -= kVideoLengthPenalty * std::max(0.0, duration - kVideoLengthFree);
    ad.static_logit = static_cast<float>(logit);
    ad.bid = static_cast<float>(l1s[ad.l1].bid_cpm * c.bid_mult * std::exp(0.5 * kBidSd * rng.Normal()));
    ad.log_bid = std::log(ad.bid);
    ad.landing = static_cast<float>(c.landing + 0.5 * kLandingSd * rng.Normal());
    ad.conv_quality = c.conv_quality;
    ad.conv_value = static_cast<float>(l1s[ad.l1].conv_value);
    int64_t launch;
    if (ad.cold) {
      launch = o.start_time +
               static_cast<int64_t>((kColdLaunchFrom + (kColdLaunchTo - kColdLaunchFrom) * rng.Uniform()) * range_s);
    } else {
      launch = std::max<int64_t>(0, o.start_time - static_cast<int64_t>(rng.Below(kWarmLaunchMaxDays)) * kDay -
                                        static_cast<int64_t>(rng.Below(kDay)));
    }
    ad.launch = static_cast<uint32_t>(launch);
    text.title[i] = synth::RenderTitle(t);
    text.description[i] = synth::RenderDescription(t);
    text.product[i] = synth::ProductName(t);
    text.advertiser[i] = adv_of_ad[i];
    text.campaign[i] = campaign_of_ad[i];
    text.duration[i] = static_cast<float>(duration);

    w.all.Add(i, ad.launch);
    if (ad.cold) w.cold.Add(i, ad.launch);
    w.by_l2[ad.l2].Add(i, ad.launch);
  }
  w.all.Sort();
  w.cold.Sort();
  for (auto& p : w.by_l2) p.Sort();
}

// ---------------------------------------------------------------------------------------------
// Users and their sessions.

struct RecentClick {
  uint32_t time;
  uint8_t l1, l2, l3;
};
struct RecentImpression {
  uint32_t time;
  uint32_t ad;
};
// A funnel event waiting for its time.
struct Pending {
  uint32_t time;
  uint32_t seq;  // tie-break, so the order never depends on the heap's internals
  uint32_t item;
  uint8_t scene, position, action;
  float value, truth;
};
struct PendingLater {
  bool operator()(const Pending& a, const Pending& b) const {
    return a.time != b.time ? a.time > b.time : a.seq > b.seq;
  }
};

// Per-worker buffers, reused from user to user and chunk to chunk (no per-event allocation).
struct Chunk {
  EventColumns events;
  std::vector<uint8_t> age, gender, region, device;
  std::vector<Pending> pending;
  std::vector<uint32_t> session_starts;
  std::vector<uint32_t> day_sessions;
};

class UserSimulator {
 public:
  UserSimulator(const World& w, uint32_t user, Chunk& out)
      : w_(w), o_(w.opt), rng_(StreamRng(w.opt.seed, kUserStream, user)), user_(user), out_(out) {}

  void Run() {
    DrawProfile();
    // Sessions per day, decided up front so a user with none at all gets one (every user appears).
    auto& per_day = out_.day_sessions;
    per_day.assign(o_.days, 0);
    uint64_t total = 0;
    for (uint32_t d = 0; d < o_.days; ++d) total += per_day[d] = rng_.Poisson(activity_ * w_.sessions_per_day);
    if (total == 0) per_day[rng_.Below(o_.days)] = 1;
    out_.pending.clear();
    seq_ = 0;
    int64_t busy_until = 0;
    for (uint32_t d = 0; d < o_.days; ++d) {
      if (d > 0) Drift();
      RefreshAffinity();
      auto& starts = out_.session_starts;
      starts.clear();
      const int64_t day0 = o_.start_time + static_cast<int64_t>(d) * kDay;
      for (uint32_t k = 0; k < per_day[d]; ++k) {
        uint32_t hour = rng_.FromCdf(hour_cdf_.data(), 24);
        starts.push_back(static_cast<uint32_t>(day0 + hour * 3600 + rng_.Below(3600)));
      }
      std::sort(starts.begin(), starts.end());
      for (uint32_t s : starts) busy_until = Session(std::max<int64_t>(s, busy_until)) + kSessionGap;
    }
    FlushPending(UINT32_MAX);
  }

 private:
  void DrawProfile() {
    age_ = Pick(kAgeWeights, kNumAges);
    gender_ = rng_.Below(kNumGenders);
    double region_w[kNumRegions];
    for (uint32_t i = 0; i < kNumRegions; ++i) region_w[i] = kRegions[i].weight;
    region_ = Pick(region_w, kNumRegions);
    device_ = Pick(kDeviceWeights, kNumDevices);
    zh_ = rng_.Bernoulli(kRegions[region_].zh_pref);
    activity_ = rng_.Gamma(kActivityShape) / kActivityShape;
    out_.age.push_back(static_cast<uint8_t>(age_));
    out_.gender.push_back(static_cast<uint8_t>(gender_));
    out_.region.push_back(static_cast<uint8_t>(region_));
    out_.device.push_back(static_cast<uint8_t>(device_));
    double acc = 0;
    for (int h = 0; h < 24; ++h) hour_cdf_[h] = (acc += kHourWeights[h]);

    // Sparse interest: a few active level-2 nodes drawn from the demographic prior, Dirichlet(1)
    // weights, plus a small floor everywhere.
    const double* cdf = w_.prior_cdf[age_][gender_];
    interest_.fill(0.0);
    uint32_t active = 2 + std::min(kMaxExtraInterests, rng_.Poisson(kActiveInterestsMean));
    double sum = 0;
    for (uint32_t k = 0; k < active; ++k) {
      double g = rng_.Gamma(kInterestGammaShape);
      interest_[rng_.FromCdf(cdf, kNumL2)] += g;
      sum += g;
    }
    for (auto& x : interest_) x = (1.0 - kInterestFloor) * x / sum + kInterestFloor / kNumL2;
  }

  // Slow drift towards a node of the demographic prior, and now and then a sudden new interest.
  void Drift() {
    uint32_t j = rng_.FromCdf(w_.prior_cdf[age_][gender_], kNumL2);
    for (auto& x : interest_) x *= 1.0 - o_.interest_drift;
    interest_[j] += o_.interest_drift;
    if (rng_.Bernoulli(o_.interest_jump_rate)) {
      uint32_t k = rng_.Below(kNumL2);
      for (auto& x : interest_) x *= 1.0 - kJumpMass;
      interest_[k] += kJumpMass;
    }
  }

  void RefreshAffinity() {
    std::array<double, kNumL1> l1_sum{};
    for (uint32_t c = 0; c < kNumL2; ++c) l1_sum[w_.l2_l1[c]] += interest_[c];
    double acc = 0;
    const double* prior = w_.prior[age_][gender_];
    for (uint32_t c = 0; c < kNumL2; ++c) {
      double sib = w_.siblings[c] ? (l1_sum[w_.l2_l1[c]] - interest_[c]) / w_.siblings[c] : 0.0;
      affinity_[c] = std::log(interest_[c] + kSiblingShare * sib + kAffinityEps) - w_.uniform_affinity;
      policy_cdf_[c] = (acc += kPolicyTrueShare * interest_[c] + (1.0 - kPolicyTrueShare) * prior[c]);
    }
  }

  uint32_t Pick(const double* weights, uint32_t n) {
    double total = 0;
    for (uint32_t i = 0; i < n; ++i) total += weights[i];
    double r = rng_.Uniform() * total;
    for (uint32_t i = 0; i + 1 < n; ++i) {
      if (r < weights[i]) return i;
      r -= weights[i];
    }
    return n - 1;
  }

  // A random live ad of a pool; UINT32_MAX when none is live.
  uint32_t FromPool(const AdPool& p, uint32_t t) {
    uint32_t live = p.LiveCount(t);
    return live ? p.ads[rng_.Below(live)] : UINT32_MAX;
  }

  uint32_t PickCandidate(uint32_t t) {
    double r = rng_.Uniform();
    uint32_t ad = UINT32_MAX;
    if (r < o_.exploration) {
      ad = FromPool(w_.all, t);
    } else if (r < o_.exploration + kNewAdBoost) {
      ad = FromPool(w_.cold, t);
    } else {
      ad = FromPool(w_.by_l2[rng_.FromCdf(policy_cdf_.data(), kNumL2)], t);
    }
    return ad != UINT32_MAX ? ad : FromPool(w_.all, t);
  }

  // Simulates one session from `start`; returns when it ends.
  int64_t Session(int64_t start) {
    const uint32_t scene = rng_.FromCdf(w_.scene_cdf, o_.scenes);
    const SceneSpec& sc = kScenes[scene];
    const uint32_t want = sc.list_min + rng_.Below(sc.list_max - sc.list_min + 1);
    const uint32_t t0 = static_cast<uint32_t>(start);
    // Candidates, then the policy's ranking.
    std::array<uint32_t, kMaxList> list{};
    std::array<double, kMaxList> score{};
    uint32_t n = 0;
    for (uint32_t k = 0; k < want; ++k) {
      uint32_t ad = UINT32_MAX;
      for (uint32_t attempt = 0; attempt < kPickAttempts; ++attempt) {
        uint32_t c = PickCandidate(t0);
        if (std::find(list.begin(), list.begin() + n, c) != list.begin() + n) continue;
        if (sc.apps_only && !w_.ads[c].app && attempt + 1 < kPickAttempts) continue;
        ad = c;
        break;
      }
      if (ad == UINT32_MAX) continue;
      const Ad& a = w_.ads[ad];
      double s = a.log_bid + kPolicyInterest * affinity_[a.l2] + kPolicyNoise * rng_.RoughNormal();
      uint32_t i = n++;
      for (; i > 0 && score[i - 1] < s; --i) {  // insertion sort, best first
        list[i] = list[i - 1];
        score[i] = score[i - 1];
      }
      list[i] = ad;
      score[i] = s;
    }
    int64_t t = start;
    for (uint32_t pos = 0; pos < n; ++pos) {
      const uint32_t ad_id = list[pos];
      const Ad& ad = w_.ads[ad_id];
      const uint32_t ti = static_cast<uint32_t>(t);
      const double p_click = Sigmoid(ClickLogit(scene, pos, ad_id, ti));
      Emit(ti, ad_id, scene, pos, Action::kImpression, 0.f, static_cast<float>(p_click));
      Remember(ti, ad_id);
      if (!rng_.Bernoulli(p_click)) {
        t += sc.slot_seconds;
        continue;
      }
      const uint32_t tc = ti + kClickDelayMin + rng_.Below(kClickDelaySpan);
      Funnel(scene, pos, ad_id, tc);
      clicks_[click_head_] = {tc, ad.l1, ad.l2, ad.l3};
      click_head_ = (click_head_ + 1) % kRecentClicks;
      num_clicks_ = std::min(num_clicks_ + 1, kRecentClicks);
      t = tc + kDwellMin + rng_.Below(kDwellSpan);
    }
    return t;
  }

  double ClickLogit(uint32_t scene, uint32_t pos, uint32_t ad_id, uint32_t t) const {
    const Ad& ad = w_.ads[ad_id];
    const SceneSpec& sc = kScenes[scene];
    double learnable = sc.interest_mult * kInterestWeight * affinity_[ad.l2] + ad.static_logit +
                       (ad.zh == zh_ ? kLangMatch : -kLangMatch) + kFormatByAge[age_][ad.format] +
                       kOrientationByScene[scene][ad.orientation] + kOrientationByDevice[device_][ad.orientation] +
                       kColourByGender[gender_][ad.colour] + kTextTypeByAge[age_][ad.text_type];
    // Sequence: recent clicks on the same node or its ancestors.
    double intent = 0;
    for (uint32_t k = 0; k < num_clicks_; ++k) {
      const RecentClick& c = clicks_[k];
      double age_s = static_cast<double>(t) - c.time;
      if (age_s < 0 || age_s > kIntentWindow) continue;
      double m = c.l3 == ad.l3 ? kIntentSameL3 : c.l2 == ad.l2 ? kIntentSameL2 : c.l1 == ad.l1 ? kIntentSameL1 : 0.0;
      if (m > 0) intent += m * std::exp(-age_s / kIntentTau);
    }
    learnable += std::min(intent, kIntentCap);
    uint32_t seen = 0;
    for (uint32_t k = 0; k < num_imps_; ++k) seen += imps_[k].ad == ad_id && t - imps_[k].time < kDay;
    learnable -= kFatiguePerImpression * seen;
    return sc.base + w_.pos_bias[scene][pos] + o_.signal_scale * learnable;
  }

  void Remember(uint32_t t, uint32_t ad) {
    imps_[imp_head_] = {t, ad};
    imp_head_ = (imp_head_ + 1) % kRecentImpressions;
    num_imps_ = std::min(num_imps_ + 1, kRecentImpressions);
  }

  // The click and everything after it: decided now, emitted in time order through the heap.
  void Funnel(uint32_t scene, uint32_t pos, uint32_t ad_id, uint32_t tc) {
    const Ad& ad = w_.ads[ad_id];
    const double s = o_.signal_scale;
    const double interest = kFunnelInterest * affinity_[ad.l2];
    const auto sc8 = static_cast<uint8_t>(scene), pos8 = static_cast<uint8_t>(pos);
    constexpr auto kDl = static_cast<uint8_t>(Action::kDownload), kInst = static_cast<uint8_t>(Action::kInstall),
                   kConv = static_cast<uint8_t>(Action::kConversion);
    auto conversion_value = [&] { return static_cast<float>(ad.conv_value * std::exp(kConvValueSd * rng_.Normal())); };
    auto conversion_delay = [&] {
      return static_cast<uint32_t>(std::min(kConvDelayMax, kConvDelayMin + rng_.Exponential(kConvDelayMean)));
    };
    if (!ad.app) {
      double p_conv = Sigmoid(kWebConvBase + s * (interest + ad.landing + ad.conv_quality));
      Emit(tc, ad_id, scene, pos, Action::kClick, 0.f, static_cast<float>(p_conv));
      if (rng_.Bernoulli(p_conv)) Schedule({tc + conversion_delay(), 0, ad_id, sc8, pos8, kConv, conversion_value(), 0.f});
      return;
    }
    double p_dl = Sigmoid(kScenes[scene].download_base + kDownloadByDevice[device_] + s * (interest + ad.landing));
    Emit(tc, ad_id, scene, pos, Action::kClick, 0.f, static_cast<float>(p_dl));
    if (!rng_.Bernoulli(p_dl)) return;
    double p_inst = Sigmoid(kInstallBase + kInstallByDevice[device_] + s * 0.5 * ad.landing);
    uint32_t td = tc + kDownloadDelayMin + rng_.Below(kDownloadDelaySpan);
    Schedule({td, 0, ad_id, sc8, pos8, kDl, 0.f, static_cast<float>(p_inst)});
    if (!rng_.Bernoulli(p_inst)) return;
    double p_conv = Sigmoid(kInstallConvBase + s * (interest + ad.conv_quality));
    uint32_t tn = td + kInstallDelayMin + rng_.Below(kInstallDelaySpan);
    Schedule({tn, 0, ad_id, sc8, pos8, kInst, 0.f, static_cast<float>(p_conv)});
    if (rng_.Bernoulli(p_conv)) Schedule({tn + conversion_delay(), 0, ad_id, sc8, pos8, kConv, conversion_value(), 0.f});
  }

  void Schedule(Pending p) {
    p.seq = seq_++;
    out_.pending.push_back(p);
    std::push_heap(out_.pending.begin(), out_.pending.end(), PendingLater());
  }

  void FlushPending(uint32_t until) {
    auto& h = out_.pending;
    while (!h.empty() && h.front().time <= until) {
      std::pop_heap(h.begin(), h.end(), PendingLater());
      const Pending p = h.back();
      h.pop_back();
      Append(p.time, p.item, p.scene, p.position, p.action, p.value, p.truth);
    }
  }

  void Emit(uint32_t t, uint32_t ad, uint32_t scene, uint32_t pos, Action a, float value, float truth) {
    FlushPending(t);
    Append(t, ad, static_cast<uint8_t>(scene), static_cast<uint8_t>(pos), static_cast<uint8_t>(a), value, truth);
  }

  void Append(uint32_t t, uint32_t ad, uint8_t scene, uint8_t pos, uint8_t action, float value, float truth) {
    EventColumns& e = out_.events;
    e.user.push_back(user_);
    e.item.push_back(ad);
    e.time.push_back(t);
    e.scene.push_back(scene);
    e.position.push_back(pos);
    e.action.push_back(action);
    e.value.push_back(value);
    e.truth.push_back(truth);
  }

  static constexpr double kActivityShape = 2.0;  // Gamma shape of user activity (mean 1)

  const World& w_;
  const SyntheticOptions& o_;
  Rng rng_;
  uint32_t user_;
  Chunk& out_;
  uint32_t age_ = 0, gender_ = 0, region_ = 0, device_ = 0;
  bool zh_ = false;
  double activity_ = 1.0;
  std::array<double, 24> hour_cdf_{};
  std::array<double, kNumL2> interest_{}, affinity_{}, policy_cdf_{};
  std::array<RecentClick, kRecentClicks> clicks_{};
  uint32_t click_head_ = 0, num_clicks_ = 0;
  std::array<RecentImpression, kRecentImpressions> imps_{};
  uint32_t imp_head_ = 0, num_imps_ = 0;
  uint32_t seq_ = 0;
};

void SimulateChunk(const World& w, uint32_t begin, uint32_t end, Chunk& out) {
  out.events.user.clear(); out.events.item.clear(); out.events.time.clear(); out.events.scene.clear();
  out.events.position.clear(); out.events.action.clear(); out.events.value.clear(); out.events.truth.clear();
  out.age.clear(); out.gender.clear(); out.region.clear(); out.device.clear();
  for (uint32_t u = begin; u < end; ++u) UserSimulator(w, u, out).Run();
}

Status CheckOptions(const SyntheticOptions& o) {
  auto bad = [](std::string m) { return InvalidArgumentError("synthetic world: " + m); };
  if (o.users == 0) return bad("users must be > 0");
  if (o.ads == 0) return bad("ads must be > 0");
  if (o.advertisers == 0) return bad("advertisers must be > 0");
  if (o.advertisers > o.ads) {
    return bad("advertisers (" + std::to_string(o.advertisers) + ") > ads (" + std::to_string(o.ads) +
               "): every advertiser needs an ad");
  }
  if (o.days == 0) return bad("days must be > 0");
  if (o.scenes == 0 || o.scenes > kNumSyntheticScenes) {
    return bad("scenes must be in 1.." + std::to_string(kNumSyntheticScenes) + " (feed, search, splash, app_store, "
               "rewarded_video, banner), got " + std::to_string(o.scenes));
  }
  auto in = [](double v, double lo, double hi) { return std::isfinite(v) && v >= lo && v <= hi; };
  if (!in(o.impressions_per_user_day, 1e-6, 1e4) || o.impressions_per_user_day <= 0) {
    return bad("impressions_per_user_day must be in (0, 10000]");
  }
  if (!in(o.cold_start_fraction, 0, 1) || o.cold_start_fraction >= 1) return bad("cold_start_fraction must be in [0, 1)");
  if (!in(o.zh_fraction, 0, 1)) return bad("zh_fraction must be in [0, 1]");
  if (!in(o.exploration, 0, 1)) return bad("exploration must be in [0, 1]");
  if (!in(o.signal_scale, 0, 100)) return bad("signal_scale must be in [0, 100]");
  if (!in(o.interest_drift, 0, 1)) return bad("interest_drift must be in [0, 1]");
  if (!in(o.interest_jump_rate, 0, 1)) return bad("interest_jump_rate must be in [0, 1]");
  if (!in(o.campaigns_per_advertiser, 1, 1e6)) return bad("campaigns_per_advertiser must be >= 1");
  // Conversions may land up to two days after the last day; all times must fit the u32 column.
  if (o.start_time < 0 || o.start_time + (static_cast<int64_t>(o.days) + 3) * kDay > static_cast<int64_t>(UINT32_MAX)) {
    return bad("start_time + days must fit in u32 unix seconds");
  }
  if (ExpectedSyntheticImpressions(o) * (1 + kFunnelEventsPerImpression) > 0.95 * UINT32_MAX) {
    return bad("more than 2^32 events expected; lower users, days or impressions_per_user_day");
  }
  return Status::Ok();
}

// Users, items, tables, taxonomy and scenes of the dataset (everything but events).
void FillCatalog(const World& w, const CatalogText& text, Dataset* ds) {
  const SyntheticOptions& o = w.opt;
  ds->info.name = "synthetic";
  ds->info.source_format = "gen";
  char prov[320];
  std::snprintf(prov, sizeof(prov),
                "adrec synthetic ad world: seed=%llu users=%u ads=%u advertisers=%u days=%u scenes=%u "
                "impressions_per_user_day=%g cold_start_fraction=%g signal_scale=%g",
                static_cast<unsigned long long>(o.seed), o.users, o.ads, o.advertisers, o.days, o.scenes,
                o.impressions_per_user_day, o.cold_start_fraction, o.signal_scale);
  ds->info.provenance = prov;
  ds->info.created_utc.clear();  // left empty: the same seed must give byte-identical output
  ds->scenes.assign(std::begin(kSyntheticScenes), std::begin(kSyntheticScenes) + o.scenes);

  // Taxonomy: level 1, then level 2, then level 3 (parents always come first).
  Taxonomy& tax = ds->taxonomy;
  tax.nodes.clear();
  std::vector<uint32_t> l1_node, l2_node, l3_node;
  for (const auto& n : L1Nodes()) l1_node.push_back(tax.Add(0, n.en, n.zh));
  for (const auto& n : L2Nodes()) l2_node.push_back(tax.Add(l1_node[n.l1], n.en, n.zh));
  for (const auto& n : L3Nodes()) l3_node.push_back(tax.Add(l2_node[n.l2], n.en, n.zh));

  char name[32];
  ds->users.Reserve(o.users);
  for (uint32_t u = 0; u < o.users; ++u) {
    std::snprintf(name, sizeof(name), "u%07u", u);
    ds->users.GetOrAdd(name);
  }
  ds->items.Reserve(o.ads);
  for (uint32_t i = 0; i < o.ads; ++i) {
    std::snprintf(name, sizeof(name), "ad%06u", i);
    ds->items.GetOrAdd(name);
  }

  // Categorical columns get their vocabularies in a fixed order, so codes are stable.
  auto categorical = [](Table& t, std::string_view col, std::span<const char* const> names) -> Column& {
    Column& c = t.Add(std::string(col), ColumnType::kCategorical);
    for (const char* n : names) c.vocab->GetOrAdd(n);
    return c;
  };
  Table& it = ds->item_table;
  it.columns.clear();
  it.columns.reserve(32);  // references into columns are held below
  Column& title = it.Add(std::string(cols::kTitle), ColumnType::kString);
  Column& desc = it.Add(std::string(cols::kDescription), ColumnType::kString);
  Column& product = it.Add(std::string(synthetic_cols::kProduct), ColumnType::kString);
  const char* langs[] = {"en", "zh"};
  Column& lang = categorical(it, cols::kLanguage, langs);
  Column& adv = it.Add(std::string(cols::kAdvertiser), ColumnType::kCategorical);
  for (uint32_t a = 0; a < o.advertisers; ++a) {
    std::snprintf(name, sizeof(name), "adv%05u", a);
    adv.vocab->GetOrAdd(name);
  }
  Column& cmp = it.Add(std::string(cols::kCampaign), ColumnType::kCategorical);
  Column& c1 = it.Add(std::string(cols::kCategory1), ColumnType::kUInt32);
  Column& c2 = it.Add(std::string(cols::kCategory2), ColumnType::kUInt32);
  Column& c3 = it.Add(std::string(cols::kCategory3), ColumnType::kUInt32);
  Column& bid = it.Add(std::string(cols::kBid), ColumnType::kFloat32);
  Column& format = categorical(it, cols::kFormat, kFormatNames);
  Column& orient = categorical(it, cols::kOrientation, kOrientationNames);
  Column& duration = it.Add(std::string(cols::kDuration), ColumnType::kFloat32);
  Column& colour = categorical(it, cols::kColour, kColourNames);
  Column& ttype = categorical(it, cols::kTextType, kTextTypeNames);
  Column& cold = it.Add(std::string(cols::kColdStart), ColumnType::kUInt32);
  const char* objectives[] = {"app", "web"};
  Column& objective = categorical(it, synthetic_cols::kObjective, objectives);
  Column& launch = it.Add(std::string(synthetic_cols::kLaunchTime), ColumnType::kUInt32);
  for (uint32_t i = 0; i < o.ads; ++i) {
    const Ad& a = w.ads[i];
    title.PushString(text.title[i]);
    desc.PushString(text.description[i]);
    product.PushString(text.product[i]);
    lang.PushU32(a.zh ? 2 : 1);
    adv.PushU32(1 + text.advertiser[i]);
    std::snprintf(name, sizeof(name), "cmp%06u", text.campaign[i]);
    cmp.PushCategorical(name);
    c1.PushU32(l1_node[a.l1]);
    c2.PushU32(l2_node[a.l2]);
    c3.PushU32(l3_node[a.l3]);
    bid.PushFloat(a.bid);
    format.PushU32(1 + a.format);
    orient.PushU32(1 + a.orientation);
    duration.PushFloat(text.duration[i]);
    colour.PushU32(1 + a.colour);
    ttype.PushU32(1 + a.text_type);
    cold.PushU32(a.cold ? 1 : 0);
    objective.PushU32(a.app ? 1 : 2);
    launch.PushU32(a.launch);
  }

  Table& ut = ds->user_table;
  ut.columns.clear();
  ut.columns.reserve(4);
  categorical(ut, cols::kAge, kAgeNames);
  categorical(ut, cols::kGender, kGenderNames);
  const char* regions[kNumRegions];
  for (uint32_t i = 0; i < kNumRegions; ++i) regions[i] = kRegions[i].name;
  categorical(ut, cols::kRegion, regions);
  categorical(ut, cols::kDevice, kDeviceNames);
  for (auto& c : ut.columns) c.u32.reserve(o.users);
}

}  // namespace

double ExpectedSyntheticImpressions(const SyntheticOptions& o) {
  return static_cast<double>(o.users) * o.days * o.impressions_per_user_day;
}

Status StreamSyntheticWorld(const SyntheticOptions& options, Dataset* catalog, const SyntheticEventSink& sink) {
  ADREC_RETURN_IF_ERROR(CheckOptions(options));
  auto world = std::make_unique<World>();
  world->opt = options;
  BuildPriors(*world);
  BuildScenes(*world);
  CatalogText text;
  BuildCatalog(*world, text);
  FillCatalog(*world, text, catalog);
  text = CatalogText();

  const uint32_t hw = std::max(1u, std::thread::hardware_concurrency());
  const uint32_t threads = std::max(1u, std::min(options.threads ? options.threads : hw, 64u));
  const uint32_t num_chunks = (options.users + kUsersPerChunk - 1) / kUsersPerChunk;
  std::vector<Chunk> chunks(std::min(threads, num_chunks));
  const size_t per_chunk_events = static_cast<size_t>(
      std::min<double>(options.impressions_per_user_day * options.days * kUsersPerChunk * (1 + kFunnelEventsPerImpression) * 1.2,
                       64e6));  // cap: very active users just grow the buffer
  for (auto& c : chunks) c.events.Reserve(per_chunk_events, true);
  std::unique_ptr<ThreadPool> pool;
  if (chunks.size() > 1) pool = std::make_unique<ThreadPool>(chunks.size() - 1);

  ProgressOptions po;
  po.unit = "users";
  po.enabled = options.show_progress;
  Progress progress("generating the synthetic ad world", options.users, po);
  Table& ut = catalog->user_table;
  for (uint32_t first = 0; first < num_chunks; first += static_cast<uint32_t>(chunks.size())) {
    const uint32_t batch = std::min<uint32_t>(static_cast<uint32_t>(chunks.size()), num_chunks - first);
    auto range = [&](uint32_t k) {
      uint32_t b = (first + k) * kUsersPerChunk;
      return std::pair<uint32_t, uint32_t>(b, std::min<uint32_t>(options.users, b + kUsersPerChunk));
    };
    std::vector<std::future<void>> done;
    for (uint32_t k = 1; k < batch; ++k) {
      done.push_back(pool->Submit([&, k] {
        auto [b, e] = range(k);
        SimulateChunk(*world, b, e, chunks[k]);
      }));
    }
    auto [b0, e0] = range(0);
    SimulateChunk(*world, b0, e0, chunks[0]);
    for (auto& f : done) f.get();
    for (uint32_t k = 0; k < batch; ++k) {
      const Chunk& c = chunks[k];
      for (uint8_t v : c.age) ut.columns[0].u32.push_back(1u + v);
      for (uint8_t v : c.gender) ut.columns[1].u32.push_back(1u + v);
      for (uint8_t v : c.region) ut.columns[2].u32.push_back(1u + v);
      for (uint8_t v : c.device) ut.columns[3].u32.push_back(1u + v);
      ADREC_RETURN_IF_ERROR(sink(c.events));
      auto [b, e] = range(k);
      progress.Add(e - b);
    }
  }
  progress.Finish();
  return Status::Ok();
}

StatusOr<Dataset> GenerateSyntheticWorld(const SyntheticOptions& options) {
  ADREC_RETURN_IF_ERROR(CheckOptions(options));
  DatasetBuilder builder({.name = "synthetic", .source_format = "gen", .provenance = "", .with_truth = true});
  Dataset& ds = builder.dataset();
  ds.events.Reserve(static_cast<size_t>(ExpectedSyntheticImpressions(options) * (1 + kFunnelEventsPerImpression) * 1.03),
                    true);
  auto append = [](auto& dst, const auto& src) { dst.insert(dst.end(), src.begin(), src.end()); };
  ADREC_RETURN_IF_ERROR(StreamSyntheticWorld(options, &ds, [&](const EventColumns& b) {
    append(ds.events.user, b.user);
    append(ds.events.item, b.item);
    append(ds.events.time, b.time);
    append(ds.events.scene, b.scene);
    append(ds.events.position, b.position);
    append(ds.events.action, b.action);
    append(ds.events.value, b.value);
    append(ds.events.truth, b.truth);
    return Status::Ok();
  }));
  return std::move(builder).Finish();
}

namespace {
StatusOr<uint32_t> IndexOf(std::span<const char* const> names, std::string_view value, std::string_view what) {
  for (size_t i = 0; i < names.size(); ++i) {
    if (value == names[i]) return static_cast<uint32_t>(i);
  }
  std::string known;
  for (const char* n : names) known += std::string(known.empty() ? "" : ", ") + n;
  return InvalidArgumentError("unknown " + std::string(what) + " '" + std::string(value) + "' (the synthetic world has " +
                              known + ")");
}
}  // namespace

StatusOr<SyntheticCreativeTraits> SyntheticCreativeTraitsOf(std::string_view title, std::string_view colour,
                                                            std::string_view orientation,
                                                            std::string_view fallback_text_type) {
  SyntheticCreativeTraits t;
  ADREC_ASSIGN_OR_RETURN(t.colour, IndexOf(kColourNames, colour, "colour"));
  ADREC_ASSIGN_OR_RETURN(t.orientation, IndexOf(kOrientationNames, orientation, "orientation"));
  std::string_view type = fallback_text_type;
  for (const SyntheticHook& h : SyntheticHooks()) {
    if (title.find(h.en) != std::string_view::npos || title.find(h.zh) != std::string_view::npos) {
      t.appeal = h.appeal;
      type = h.text_type;
      break;
    }
  }
  ADREC_ASSIGN_OR_RETURN(t.text_type, IndexOf(kTextTypeNames, type, "text type"));
  return t;
}

StatusOr<SyntheticViewer> SyntheticViewerOf(std::string_view age, std::string_view gender, std::string_view device,
                                            std::string_view scene) {
  SyntheticViewer v;
  ADREC_ASSIGN_OR_RETURN(v.age, IndexOf(kAgeNames, age, "age"));
  ADREC_ASSIGN_OR_RETURN(v.gender, IndexOf(kGenderNames, gender, "gender"));
  ADREC_ASSIGN_OR_RETURN(v.device, IndexOf(kDeviceNames, device, "device"));
  for (uint32_t s = 0; s < kNumSyntheticScenes; ++s) {
    if (scene == kSyntheticScenes[s]) {
      v.scene = s;
      return v;
    }
  }
  return InvalidArgumentError("unknown scene '" + std::string(scene) + "' (the synthetic world has feed, search, splash, "
                              "app_store, rewarded_video, banner)");
}

double SyntheticCreativeLogit(const SyntheticCreativeTraits& c, const SyntheticViewer& v) {
  return kColourByGender[v.gender][c.colour] + kOrientationByDevice[v.device][c.orientation] +
         kOrientationByScene[v.scene][c.orientation] + kTextTypeByAge[v.age][c.text_type] + kTitleHookWeight * c.appeal;
}

std::vector<uint8_t> NextStageLabels(const Dataset& ds) {
  const auto& ev = ds.events;
  std::vector<uint8_t> label(ev.size(), 0);
  const Column* objective = ds.item_table.Find(synthetic_cols::kObjective);
  auto is_web = [&](uint32_t item) {
    return objective && item < objective->u32.size() && objective->vocab->Name(objective->u32[item]) == "web";
  };
  const auto imp = static_cast<uint8_t>(Action::kImpression), click = static_cast<uint8_t>(Action::kClick),
             dl = static_cast<uint8_t>(Action::kDownload), inst = static_cast<uint8_t>(Action::kInstall),
             conv = static_cast<uint8_t>(Action::kConversion);
  for (uint32_t u = 0; u < ds.num_users(); ++u) {
    auto [b, e] = ds.UserRange(u);
    for (uint64_t i = b; i < e; ++i) {
      uint8_t a = ev.action[i], prev;
      if (a == click) prev = imp;
      else if (a == dl) prev = click;
      else if (a == inst) prev = dl;
      else if (a == conv) prev = is_web(ev.item[i]) ? click : inst;
      else continue;
      // The nearest earlier unresolved event of the previous stage for the same ad.
      for (uint64_t j = i; j-- > b;) {
        if (ev.item[j] == ev.item[i] && ev.action[j] == prev && !label[j]) {
          label[j] = 1;
          break;
        }
      }
    }
  }
  return label;
}

}  // namespace adrec::data
