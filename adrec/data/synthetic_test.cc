#include "adrec/data/synthetic.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>

// Options structs are filled with designated initializers; unnamed fields keep their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace adrec::data {
namespace {

constexpr auto kImp = static_cast<uint8_t>(Action::kImpression);
constexpr auto kClick = static_cast<uint8_t>(Action::kClick);
constexpr auto kDownload = static_cast<uint8_t>(Action::kDownload);
constexpr auto kInstall = static_cast<uint8_t>(Action::kInstall);
constexpr auto kConversion = static_cast<uint8_t>(Action::kConversion);

// Exact AUC with ties counted half (rank-sum / Mann-Whitney U).
double Auc(const std::vector<float>& score, const std::vector<uint8_t>& label) {
  std::vector<uint32_t> order(score.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return score[a] < score[b]; });
  double rank_sum = 0, pos = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && score[order[j]] == score[order[i]]) ++j;
    double mid_rank = (i + 1 + j) / 2.0;  // 1-based average rank of the tie group
    for (size_t k = i; k < j; ++k) {
      if (label[order[k]]) {
        rank_sum += mid_rank;
        pos += 1;
      }
    }
    i = j;
  }
  double neg = static_cast<double>(order.size()) - pos;
  return (rank_sum - pos * (pos + 1) / 2) / (pos * neg);
}

bool HasCjk(const std::string& s) {
  // UTF-8 lead bytes E4..E9 start the CJK Unified Ideographs block (U+4E00..U+9FFF).
  for (size_t i = 0; i + 2 < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0xE4 && c <= 0xE9) return true;
  }
  return false;
}

double Logit(double p) { return std::log(p / (1 - p)); }

SyntheticOptions Quiet(SyntheticOptions o) {
  o.show_progress = false;
  return o;
}

SyntheticOptions Small(uint64_t seed = 7) {
  return Quiet({.users = 400, .ads = 120, .advertisers = 12, .days = 5, .seed = seed});
}

void ExpectSameEvents(const Dataset& a, const Dataset& b) {
  EXPECT_EQ(a.events.user, b.events.user);
  EXPECT_EQ(a.events.item, b.events.item);
  EXPECT_EQ(a.events.time, b.events.time);
  EXPECT_EQ(a.events.scene, b.events.scene);
  EXPECT_EQ(a.events.position, b.events.position);
  EXPECT_EQ(a.events.action, b.events.action);
  EXPECT_EQ(a.events.value, b.events.value);
  EXPECT_EQ(a.events.truth, b.events.truth);
}

// The default world, generated once for the whole suite (~0.1 s).
class SyntheticWorldTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto r = GenerateSyntheticWorld(Quiet({}));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ds_ = new Dataset(std::move(r).value());
    labels_ = new std::vector<uint8_t>(NextStageLabels(*ds_));
  }
  static void TearDownTestSuite() {
    delete ds_;
    delete labels_;
    ds_ = nullptr;
    labels_ = nullptr;
  }
  static const Dataset& ds() { return *ds_; }
  static const std::vector<uint8_t>& labels() { return *labels_; }
  static const Column& ItemCol(std::string_view name) {
    const Column* c = ds_->item_table.Find(name);
    EXPECT_NE(c, nullptr) << name;
    return *c;
  }
  static std::string_view CatName(const Column& c, uint32_t row) { return c.vocab->Name(c.u32[row]); }

  static Dataset* ds_;
  static std::vector<uint8_t>* labels_;
};
Dataset* SyntheticWorldTest::ds_ = nullptr;
std::vector<uint8_t>* SyntheticWorldTest::labels_ = nullptr;

TEST_F(SyntheticWorldTest, CountsMatchOptionsAndValidates) {
  SyntheticOptions o;
  EXPECT_TRUE(ds().Validate().ok()) << ds().Validate().ToString();
  EXPECT_EQ(ds().num_users(), o.users);
  EXPECT_EQ(ds().num_items(), o.ads);
  ASSERT_EQ(ds().scenes.size(), o.scenes);
  for (uint32_t s = 0; s < o.scenes; ++s) EXPECT_EQ(ds().scenes[s], kSyntheticScenes[s]);
  EXPECT_EQ(ds().info.name, "synthetic");
  EXPECT_EQ(ds().info.source_format, "gen");
  EXPECT_NE(ds().info.provenance.find("seed=42"), std::string::npos);
  uint64_t imps = std::count(ds().events.action.begin(), ds().events.action.end(), kImp);
  double expected = ExpectedSyntheticImpressions(o);
  EXPECT_GT(imps, 0.85 * expected);
  EXPECT_LT(imps, 1.15 * expected);
  EXPECT_GT(imps, 200000u);  // the documented default size
  for (uint32_t u = 0; u < ds().num_users(); ++u) {
    auto [b, e] = ds().UserRange(u);
    ASSERT_LT(b, e) << "user " << u << " has no events";
  }
  std::set<uint32_t> advertisers(ItemCol(cols::kAdvertiser).u32.begin(), ItemCol(cols::kAdvertiser).u32.end());
  EXPECT_EQ(advertisers.size(), o.advertisers);  // every advertiser has an ad
  for (auto name : {cols::kAge, cols::kGender, cols::kRegion, cols::kDevice}) {
    const Column* c = ds().user_table.Find(name);
    ASSERT_NE(c, nullptr) << name;
    EXPECT_EQ(c->rows(), o.users);
    EXPECT_EQ(std::count(c->u32.begin(), c->u32.end(), 0u), 0) << name << " has missing values";
  }
}

TEST_F(SyntheticWorldTest, TruthIsAProbabilityOfTheNextStage) {
  const auto& ev = ds().events;
  ASSERT_TRUE(ds().has_truth());
  ASSERT_EQ(ev.truth.size(), ev.size());
  for (size_t i = 0; i < ev.size(); ++i) {
    if (ev.action[i] == kConversion) {
      ASSERT_EQ(ev.truth[i], 0.f) << "conversion is the last stage";
      ASSERT_GT(ev.value[i], 0.f) << "a conversion has a worth";
    } else {
      ASSERT_GT(ev.truth[i], 0.f) << i;
      ASSERT_LT(ev.truth[i], 1.f) << i;
    }
  }
  // Each click follows an impression of the same ad, each download a click, ...
  const auto& lab = labels();
  uint64_t per_action[8] = {}, labelled[8] = {};
  for (size_t i = 0; i < ev.size(); ++i) {
    per_action[ev.action[i]]++;
    labelled[ev.action[i]] += lab[i];
  }
  EXPECT_EQ(labelled[kImp], per_action[kClick]);
  EXPECT_EQ(labelled[kDownload], per_action[kInstall]);
  EXPECT_EQ(labelled[kClick] + labelled[kInstall], per_action[kDownload] + per_action[kConversion]);
}

TEST_F(SyntheticWorldTest, RatesAreAdLike) {
  const auto& ev = ds().events;
  const Column& objective = ItemCol(synthetic_cols::kObjective);
  std::vector<uint64_t> imp(ds().scenes.size()), clk(ds().scenes.size());
  uint64_t app_clicks = 0, web_clicks = 0, downloads = 0, installs = 0, conversions = 0;
  for (size_t i = 0; i < ev.size(); ++i) {
    uint8_t a = ev.action[i];
    if (a == kImp) imp[ev.scene[i]]++;
    if (a == kClick) {
      clk[ev.scene[i]]++;
      (CatName(objective, ev.item[i]) == "app" ? app_clicks : web_clicks)++;
    }
    downloads += a == kDownload;
    installs += a == kInstall;
    conversions += a == kConversion;
  }
  uint64_t clicks = app_clicks + web_clicks, imps = std::accumulate(imp.begin(), imp.end(), uint64_t{0});
  double ctr = static_cast<double>(clicks) / imps;
  EXPECT_GT(ctr, 0.01);
  EXPECT_LT(ctr, 0.05);
  for (size_t s = 0; s < imp.size(); ++s) {
    double c = static_cast<double>(clk[s]) / imp[s];
    EXPECT_GT(c, 0.005) << ds().scenes[s];
    EXPECT_LT(c, 0.08) << ds().scenes[s];
  }
  double download_rate = static_cast<double>(downloads) / app_clicks;
  EXPECT_GT(download_rate, 0.2);
  EXPECT_LT(download_rate, 0.4);
  double install_rate = static_cast<double>(installs) / downloads;
  EXPECT_GT(install_rate, 0.6);
  EXPECT_LT(install_rate, 0.95);
  double conversion_rate = static_cast<double>(conversions) / clicks;  // sparse: a few % of clicks
  EXPECT_GT(conversion_rate, 0.01);
  EXPECT_LT(conversion_rate, 0.08);
  EXPECT_GT(web_clicks, 0u);
}

TEST_F(SyntheticWorldTest, BayesAucIsHighButNotPerfect) {
  std::vector<float> truth;
  std::vector<uint8_t> label;
  for (size_t i = 0; i < ds().num_events(); ++i) {
    if (ds().events.action[i] != kImp) continue;
    truth.push_back(ds().events.truth[i]);
    label.push_back(labels()[i]);
  }
  double auc = Auc(truth, label);
  std::printf("Bayes-optimal click AUC of the default world: %.4f\n", auc);
  EXPECT_GT(auc, 0.7);
  EXPECT_LT(auc, 0.95);
  // With every learnable term off, only scene and position remain: much less to learn.
  auto flat = GenerateSyntheticWorld(Quiet({.users = 2000, .signal_scale = 0.0}));
  ASSERT_TRUE(flat.ok());
  auto flat_labels = NextStageLabels(*flat);
  truth.clear();
  label.clear();
  for (size_t i = 0; i < flat->num_events(); ++i) {
    if (flat->events.action[i] != kImp) continue;
    truth.push_back(flat->events.truth[i]);
    label.push_back(flat_labels[i]);
  }
  EXPECT_LT(Auc(truth, label), auc - 0.1);
}

TEST_F(SyntheticWorldTest, TruthIsCalibrated) {
  struct Obs {
    float truth;
    uint8_t label;
  };
  std::vector<Obs> obs;
  for (size_t i = 0; i < ds().num_events(); ++i) {
    if (ds().events.action[i] == kImp) obs.push_back({ds().events.truth[i], labels()[i]});
  }
  std::sort(obs.begin(), obs.end(), [](const Obs& a, const Obs& b) { return a.truth < b.truth; });
  constexpr int kDeciles = 10;
  double prev = -1;
  int inversions = 0;
  double total_truth = 0, total_label = 0;
  for (int d = 0; d < kDeciles; ++d) {
    size_t b = obs.size() * d / kDeciles, e = obs.size() * (d + 1) / kDeciles;
    double t = 0, l = 0;
    for (size_t i = b; i < e; ++i) {
      t += obs[i].truth;
      l += obs[i].label;
    }
    double n = static_cast<double>(e - b), mean_t = t / n, mean_l = l / n;
    total_truth += t;
    total_label += l;
    // Binomial standard error of the realised rate; 4 SE plus 10% leaves room for chance only.
    double se = std::sqrt(mean_t * (1 - mean_t) / n);
    EXPECT_NEAR(mean_l, mean_t, 4 * se + 0.1 * mean_t) << "decile " << d;
    if (mean_l < prev) ++inversions;
    prev = std::max(prev, mean_l);
  }
  EXPECT_LE(inversions, 2) << "realised CTR should rise with the true CTR";
  EXPECT_NEAR(total_label / total_truth, 1.0, 0.05);
  // The funnel is calibrated too: downloads per app click, conversions per web click.
  double click_truth = 0, click_label = 0;
  for (size_t i = 0; i < ds().num_events(); ++i) {
    if (ds().events.action[i] != kClick) continue;
    click_truth += ds().events.truth[i];
    click_label += labels()[i];
  }
  EXPECT_NEAR(click_label / click_truth, 1.0, 0.1);
}

TEST_F(SyntheticWorldTest, PositionBias) {
  const auto& ev = ds().events;
  uint64_t imp[2] = {}, clk[2] = {};
  double truth[2] = {};
  for (size_t i = 0; i < ev.size(); ++i) {
    if (ev.action[i] != kImp || ev.scene[i] != 0) continue;  // feed
    int k = ev.position[i] == 0 ? 0 : ev.position[i] == 5 ? 1 : -1;
    if (k < 0) continue;
    imp[k]++;
    clk[k] += labels()[i];
    truth[k] += ev.truth[i];
  }
  ASSERT_GT(imp[1], 1000u);
  EXPECT_GT(static_cast<double>(clk[0]) / imp[0], static_cast<double>(clk[1]) / imp[1]);
  EXPECT_GT(truth[0] / imp[0], 1.3 * truth[1] / imp[1]);
}

TEST_F(SyntheticWorldTest, RecentClicksRaiseClicksInTheirCategory) {
  const auto& ev = ds().events;
  const Column& cat2 = ItemCol(cols::kCategory2);
  uint64_t imp[2] = {}, clk[2] = {};
  for (uint32_t u = 0; u < ds().num_users(); ++u) {
    auto [b, e] = ds().UserRange(u);
    std::vector<std::pair<uint32_t, uint32_t>> clicks;  // (time, cat2)
    for (uint64_t i = b; i < e; ++i) {
      if (ev.action[i] == kClick) clicks.emplace_back(ev.time[i], cat2.u32[ev.item[i]]);
      if (ev.action[i] != kImp) continue;
      bool recent = false;
      for (auto it = clicks.rbegin(); it != clicks.rend() && ev.time[i] - it->first <= 3600; ++it) {
        recent |= it->second == cat2.u32[ev.item[i]];
      }
      imp[recent]++;
      clk[recent] += labels()[i];
    }
  }
  ASSERT_GT(imp[1], 500u);
  double ctr_recent = static_cast<double>(clk[1]) / imp[1], ctr_other = static_cast<double>(clk[0]) / imp[0];
  std::printf("CTR after a click in the same level-2 node within 1 h: %.4f, otherwise %.4f\n", ctr_recent, ctr_other);
  EXPECT_GT(ctr_recent, 1.5 * ctr_other);
}

TEST_F(SyntheticWorldTest, HookWordsCarryTheTextTerm) {
  // Appeals average ~0 within a text type, so text_type alone cannot reveal them.
  std::map<std::string_view, std::pair<double, int>> by_type;
  for (const auto& h : SyntheticHooks()) {
    by_type[h.text_type].first += h.appeal;
    by_type[h.text_type].second++;
  }
  for (const auto& [type, sum] : by_type) EXPECT_NEAR(sum.first / sum.second, 0.0, 0.05) << type;

  // Which hook each title carries, found from the words alone.
  const Column& title = ItemCol(cols::kTitle);
  std::vector<float> appeal(ds().num_items(), 0.f);
  for (uint32_t i = 0; i < ds().num_items(); ++i) {
    int found = 0;
    for (const auto& h : SyntheticHooks()) {
      std::string en(h.en);
      if (!en.empty()) en[0] = static_cast<char>(std::tolower(en[0]));
      std::string t = title.str[i];
      if (!t.empty()) t[0] = static_cast<char>(std::tolower(t[0]));
      if (t.find(en) != std::string::npos || t.find(h.zh) != std::string::npos) {
        appeal[i] = h.appeal;
        ++found;
      }
    }
    ASSERT_GE(found, 1) << title.str[i];
  }
  // Mean true logit of impressions of appealing vs unappealing titles, within each
  // (scene, position) so placement cannot explain the gap.
  std::map<std::pair<int, int>, std::array<std::pair<double, int>, 2>> strata;
  const auto& ev = ds().events;
  for (size_t i = 0; i < ev.size(); ++i) {
    if (ev.action[i] != kImp) continue;
    float a = appeal[ev.item[i]];
    if (std::abs(a) < 0.3f) continue;
    auto& s = strata[{ev.scene[i], ev.position[i]}][a > 0];
    s.first += Logit(ev.truth[i]);
    s.second++;
  }
  double gap = 0, weight = 0;
  for (const auto& [key, s] : strata) {
    if (s[0].second < 50 || s[1].second < 50) continue;
    double w = std::min(s[0].second, s[1].second);
    gap += w * (s[1].first / s[1].second - s[0].first / s[0].second);
    weight += w;
  }
  ASSERT_GT(weight, 0);
  std::printf("true logit gap between appealing and unappealing hook words: %.3f\n", gap / weight);
  EXPECT_GT(gap / weight, 0.5);  // the hooks differ by ~0.9 in appeal
}

TEST_F(SyntheticWorldTest, TitlesAreBilingual) {
  const Column& title = ItemCol(cols::kTitle);
  const Column& desc = ItemCol(cols::kDescription);
  const Column& lang = ItemCol(cols::kLanguage);
  const Column& product = ItemCol(synthetic_cols::kProduct);
  uint32_t zh = 0;
  for (uint32_t i = 0; i < ds().num_items(); ++i) {
    ASSERT_FALSE(title.str[i].empty());
    ASSERT_FALSE(desc.str[i].empty());
    bool cjk = HasCjk(title.str[i]);
    zh += cjk;
    EXPECT_EQ(cjk, CatName(lang, i) == "zh") << title.str[i];
    EXPECT_EQ(HasCjk(desc.str[i]), cjk) << desc.str[i];
    EXPECT_NE(title.str[i].find(product.str[i]), std::string::npos) << title.str[i];
  }
  double share = static_cast<double>(zh) / ds().num_items();
  EXPECT_GT(share, 0.4);
  EXPECT_LT(share, 0.6);
  std::printf("e.g. \"%s\" / \"%s\"\n", title.str[0].c_str(), title.str[1].c_str());
}

TEST_F(SyntheticWorldTest, TaxonomyHasThreeBilingualLevels) {
  const Taxonomy& tax = ds().taxonomy;
  int per_level[4] = {};
  for (size_t n = 1; n < tax.nodes.size(); ++n) {
    const auto& node = tax.nodes[n];
    ASSERT_GE(node.level, 1);
    ASSERT_LE(node.level, 3);
    per_level[node.level]++;
    EXPECT_FALSE(node.name_en.empty());
    EXPECT_TRUE(HasCjk(node.name_zh) || node.name_zh == node.name_en) << node.name_en;  // "MOBA" stays MOBA
    EXPECT_EQ(tax.nodes[node.parent].level, node.level - 1);
  }
  EXPECT_EQ(per_level[1], 8);
  EXPECT_GE(per_level[2], 25);
  EXPECT_GE(per_level[3], 55);
  const Column &c1 = ItemCol(cols::kCategory1), &c2 = ItemCol(cols::kCategory2), &c3 = ItemCol(cols::kCategory3);
  for (uint32_t i = 0; i < ds().num_items(); ++i) {
    ASSERT_EQ(tax.nodes[c3.u32[i]].level, 3);
    ASSERT_EQ(tax.nodes[c3.u32[i]].parent, c2.u32[i]);
    ASSERT_EQ(tax.nodes[c2.u32[i]].parent, c1.u32[i]);
  }
  EXPECT_EQ(tax.Path(c3.u32[0]).find(tax.nodes[c1.u32[0]].name_en), 0u);
}

TEST_F(SyntheticWorldTest, ColdStartAdsHaveNoEventsBeforeLaunch) {
  const Column& cold = ItemCol(cols::kColdStart);
  const Column& launch = ItemCol(synthetic_cols::kLaunchTime);
  SyntheticOptions o;
  uint32_t n_cold = 0;
  for (uint32_t i = 0; i < ds().num_items(); ++i) {
    n_cold += cold.u32[i];
    if (cold.u32[i]) EXPECT_GT(launch.u32[i], o.start_time + o.days * 86400 / 4) << "cold ads launch late";
    else EXPECT_LE(launch.u32[i], o.start_time);
  }
  EXPECT_EQ(n_cold, static_cast<uint32_t>(o.cold_start_fraction * o.ads));
  std::vector<uint32_t> impressions(ds().num_items(), 0);
  const auto& ev = ds().events;
  for (size_t i = 0; i < ev.size(); ++i) {
    ASSERT_GE(ev.time[i], launch.u32[ev.item[i]]) << "event " << i << " before its ad's launch";
    impressions[ev.item[i]] += ev.action[i] == kImp;
  }
  for (uint32_t i = 0; i < ds().num_items(); ++i) EXPECT_GT(impressions[i], 0u) << "ad " << i << " never shown";
}

TEST_F(SyntheticWorldTest, CreativeAttributesAreFilled) {
  const Column& format = ItemCol(cols::kFormat);
  const Column& duration = ItemCol(cols::kDuration);
  const Column& bid = ItemCol(cols::kBid);
  std::set<std::string_view> formats, colours, types, orientations;
  for (uint32_t i = 0; i < ds().num_items(); ++i) {
    formats.insert(CatName(format, i));
    colours.insert(CatName(ItemCol(cols::kColour), i));
    types.insert(CatName(ItemCol(cols::kTextType), i));
    orientations.insert(CatName(ItemCol(cols::kOrientation), i));
    EXPECT_EQ(duration.f32[i] > 0, CatName(format, i) == "video");
    EXPECT_GT(bid.f32[i], 0.f);
  }
  EXPECT_EQ(formats.size(), 5u);
  EXPECT_EQ(orientations.size(), 3u);
  EXPECT_EQ(colours.size(), 8u);
  EXPECT_EQ(types.size(), 6u);
}

TEST(SyntheticWorld, SameSeedSameBytesWhateverTheThreads) {
  SyntheticOptions one = Small(), two = Small();
  one.threads = 1;
  two.threads = 2;
  one.users = two.users = 5000;  // more than one chunk of users, so threads really split the work
  one.days = two.days = 2;
  auto a = GenerateSyntheticWorld(one), b = GenerateSyntheticWorld(two);
  ASSERT_TRUE(a.ok() && b.ok());
  ExpectSameEvents(*a, *b);
  for (size_t c = 0; c < a->item_table.columns.size(); ++c) {
    EXPECT_EQ(a->item_table.columns[c].str, b->item_table.columns[c].str);
    EXPECT_EQ(a->item_table.columns[c].u32, b->item_table.columns[c].u32);
    EXPECT_EQ(a->item_table.columns[c].f32, b->item_table.columns[c].f32);
  }
  for (size_t c = 0; c < a->user_table.columns.size(); ++c) {
    EXPECT_EQ(a->user_table.columns[c].u32, b->user_table.columns[c].u32);
  }
  EXPECT_EQ(a->info.provenance, b->info.provenance);
}

TEST(SyntheticWorld, DifferentSeedsDiffer) {
  auto a = GenerateSyntheticWorld(Small(1)), b = GenerateSyntheticWorld(Small(2));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->events.item, b->events.item);
  EXPECT_NE(a->item_table.Find(cols::kTitle)->str, b->item_table.Find(cols::kTitle)->str);
}

TEST(SyntheticWorld, StreamingGivesTheSameEventsInUserBlocks) {
  SyntheticOptions o = Small();
  o.users = 5000;
  o.days = 2;
  auto whole = GenerateSyntheticWorld(o);
  ASSERT_TRUE(whole.ok());
  Dataset catalog;
  EventColumns all;
  int blocks = 0;
  uint32_t next_user = 0;
  Status st = StreamSyntheticWorld(o, &catalog, [&](const EventColumns& b) {
    ++blocks;
    if (b.size() > 0 && b.user.front() < next_user) return InternalError("blocks out of user order");
    if (b.size() > 0) next_user = b.user.back() + 1;
    all.user.insert(all.user.end(), b.user.begin(), b.user.end());
    all.item.insert(all.item.end(), b.item.begin(), b.item.end());
    all.truth.insert(all.truth.end(), b.truth.begin(), b.truth.end());
    return Status::Ok();
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_GT(blocks, 1);
  EXPECT_EQ(all.user, whole->events.user);
  EXPECT_EQ(all.item, whole->events.item);
  EXPECT_EQ(all.truth, whole->events.truth);
  EXPECT_EQ(catalog.num_users(), o.users);
  EXPECT_EQ(catalog.num_items(), o.ads);
  EXPECT_EQ(catalog.user_table.rows(), o.users);
  // A failing sink stops generation with its error.
  Dataset again;
  Status fail = StreamSyntheticWorld(o, &again, [](const EventColumns&) { return IoError("disk full"); });
  EXPECT_EQ(fail.code(), StatusCode::kIoError);
}

TEST(SyntheticWorld, TinyAndWideWorldsWork) {
  auto tiny = GenerateSyntheticWorld(Quiet({.users = 10, .ads = 5, .advertisers = 2, .days = 1}));
  ASSERT_TRUE(tiny.ok()) << tiny.status().ToString();
  EXPECT_EQ(tiny->num_users(), 10u);
  EXPECT_TRUE(tiny->Validate().ok());
  auto wide = GenerateSyntheticWorld(Quiet({.users = 300, .ads = 60, .advertisers = 60, .days = 3, .scenes = 6}));
  ASSERT_TRUE(wide.ok()) << wide.status().ToString();
  ASSERT_EQ(wide->scenes.size(), 6u);
  std::set<uint8_t> seen(wide->events.scene.begin(), wide->events.scene.end());
  EXPECT_EQ(seen.size(), 6u);
}

TEST(SyntheticWorld, BadOptionsAreInvalidArgument) {
  std::vector<SyntheticOptions> bad = {
      {.users = 0},          {.ads = 0},
      {.advertisers = 0},    {.ads = 5, .advertisers = 6},
      {.days = 0},           {.scenes = 0},
      {.scenes = kNumSyntheticScenes + 1},
      {.impressions_per_user_day = 0},
      {.impressions_per_user_day = std::nan("")},
      {.cold_start_fraction = 1.0},
      {.cold_start_fraction = -0.1},
  };
  SyntheticOptions neg_scale;
  neg_scale.signal_scale = -1;
  bad.push_back(neg_scale);
  SyntheticOptions late;
  late.start_time = 4294000000;
  bad.push_back(late);
  for (size_t i = 0; i < bad.size(); ++i) {
    auto r = GenerateSyntheticWorld(Quiet(bad[i]));
    ASSERT_FALSE(r.ok()) << "case " << i;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << "case " << i << ": " << r.status().ToString();
  }
}

}  // namespace
}  // namespace adrec::data
