// Internal to the synthetic world: the bilingual taxonomy, product names, hook phrases and the
// title/description templates (synthetic_text.cc). Not a public API.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace adrec::data::synth {

struct L1Spec {
  const char* en;
  const char* zh;
  double app_share;    // share of campaigns whose objective is an app (else a web page)
  double bid_cpm;      // median bid, currency units per 1000 impressions
  double conv_value;   // median worth of a conversion
  double advertiser_share;  // share of advertisers whose home vertical this is
};
struct L2Spec {
  int l1;
  const char* en;
  const char* zh;
};
struct L3Spec {
  int l2;
  const char* en;
  const char* zh;
  const char* product_en[2];
  const char* product_zh[2];
  const char* feature_en;
  const char* feature_zh;
};

std::span<const L1Spec> L1Nodes();
std::span<const L2Spec> L2Nodes();
std::span<const L3Spec> L3Nodes();

// Everything that decides an ad's words.
struct AdTextSpec {
  bool zh = false;
  bool app = true;
  uint32_t l3 = 0;        // index into L3Nodes()
  uint32_t product = 0;   // 0 or 1
  uint32_t hook = 0;      // title hook, index into SyntheticHooks()
  uint32_t hook2 = 0;     // description hook
  uint32_t title_template = 0;
  uint32_t cta = 0;
};
inline constexpr uint32_t kNumTitleTemplates = 3;
inline constexpr uint32_t kNumCtas = 4;  // per objective

std::string ProductName(const AdTextSpec& t);
std::string RenderTitle(const AdTextSpec& t);
std::string RenderDescription(const AdTextSpec& t);

}  // namespace adrec::data::synth
