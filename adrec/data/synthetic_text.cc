// The words of the synthetic ad world: a bilingual 3-level taxonomy with two fictional products
// and a feature phrase per leaf, the hook phrases that carry the hidden text appeal, and the
// title/description templates of both languages.
#include "adrec/data/synthetic_text.h"

#include <iterator>

#include "adrec/data/synthetic.h"

namespace adrec::data {
namespace {

// Appeals average zero within each text type, so only the words (not text_type) reveal them.
constexpr SyntheticHook kHooks[] = {
    {"benefit", "free to start", "免费开始", 0.45f},
    {"benefit", "no hidden fees", "无隐藏费用", 0.15f},
    {"benefit", "pro quality", "专业品质", -0.20f},
    {"benefit", "standard plan available", "标准套餐可选", -0.40f},
    {"urgency", "today only", "仅限今日", 0.40f},
    {"urgency", "ends soon", "即将结束", 0.10f},
    {"urgency", "last chance", "最后机会", -0.10f},
    {"urgency", "while stocks last", "售完即止", -0.40f},
    {"social_proof", "loved by 10 million users", "千万用户好评", 0.50f},
    {"social_proof", "rated 4.9 stars", "4.9分高评", 0.15f},
    {"social_proof", "editor's choice", "编辑推荐", -0.20f},
    {"social_proof", "as seen on TV", "电视同款", -0.45f},
    {"question", "why wait?", "还在等什么？", 0.30f},
    {"question", "bored?", "无聊吗？", 0.10f},
    {"question", "ready for more?", "准备好了吗？", -0.05f},
    {"question", "did you know?", "你知道吗？", -0.35f},
    {"discount", "50% off", "五折优惠", 0.50f},
    {"discount", "new user gift", "新人礼包", 0.20f},
    {"discount", "coupons inside", "内含优惠券", -0.25f},
    {"discount", "members save more", "会员更省", -0.45f},
    {"story", "made for you", "为你而来", 0.35f},
    {"story", "a new journey begins", "新旅程由此开始", 0.10f},
    {"story", "the classic returns", "经典回归", -0.10f},
    {"story", "since 1998", "始于1998", -0.35f},
};

}  // namespace

std::span<const SyntheticHook> SyntheticHooks() { return kHooks; }

namespace synth {
namespace {

//                 en               zh          app   bid   conv  adv share
constexpr L1Spec kL1[] = {
    {"games", "游戏", 1.0, 8.0, 6.0, 0.22},
    {"ecommerce", "电商", 0.3, 4.0, 40.0, 0.20},
    {"lifestyle", "生活服务", 0.9, 5.0, 12.0, 0.10},
    {"finance", "金融", 0.6, 15.0, 80.0, 0.12},
    {"education", "教育", 0.7, 9.0, 60.0, 0.10},
    {"travel", "旅行", 0.4, 7.0, 120.0, 0.10},
    {"health", "健康", 0.8, 6.0, 25.0, 0.07},
    {"entertainment", "影音娱乐", 1.0, 5.0, 8.0, 0.09},
};

constexpr L2Spec kL2[] = {
    {0, "MOBA", "MOBA"},                         // 0
    {0, "casual", "休闲"},                        // 1
    {0, "RPG", "角色扮演"},                        // 2
    {0, "strategy", "策略"},                      // 3
    {0, "shooter", "射击"},                       // 4
    {1, "fashion", "时尚服饰"},                    // 5
    {1, "electronics", "数码电子"},                // 6
    {1, "groceries", "生鲜超市"},                  // 7
    {1, "beauty", "美妆"},                        // 8
    {1, "home & furniture", "家居"},              // 9
    {2, "food delivery", "外卖"},                 // 10
    {2, "ride hailing", "出行"},                  // 11
    {2, "home services", "家政服务"},              // 12
    {3, "loans", "贷款"},                         // 13
    {3, "investing", "投资理财"},                  // 14
    {3, "insurance", "保险"},                     // 15
    {3, "credit cards", "信用卡"},                 // 16
    {4, "language learning", "语言学习"},          // 17
    {4, "K-12 tutoring", "中小学辅导"},             // 18
    {4, "professional skills", "职业技能"},        // 19
    {5, "hotels", "酒店"},                        // 20
    {5, "flights", "机票"},                       // 21
    {5, "tours", "旅游度假"},                      // 22
    {6, "fitness", "健身"},                       // 23
    {6, "telemedicine", "在线问诊"},               // 24
    {7, "video streaming", "视频"},               // 25
    {7, "music", "音乐"},                         // 26
    {7, "live streaming", "直播"},                // 27
};

constexpr L3Spec kL3[] = {
    {0, "5v5 arena", "5v5竞技", {"Hero Arena", "Legends Clash"}, {"英雄竞技场", "传奇对决"}, "fair 5v5 battles", "5v5公平竞技"},
    {0, "3v3 brawl", "3v3乱斗", {"Pocket Brawl", "Rumble Squad"}, {"口袋乱斗", "乱斗小队"}, "3-minute team fights", "三分钟团战"},
    {1, "match-3", "三消", {"Candy Burst", "Jewel Garden"}, {"糖果爆爆", "宝石花园"}, "thousands of sweet levels", "上千个甜蜜关卡"},
    {1, "puzzle", "益智解谜", {"Mind Maze", "Block Logic"}, {"脑洞迷宫", "方块逻辑"}, "brain-teasing puzzles", "烧脑谜题"},
    {1, "idle", "放置挂机", {"Idle Kingdom", "Tap Tycoon"}, {"挂机王国", "点击大亨"}, "rewards even while offline", "离线也能领奖励"},
    {2, "fantasy MMO", "奇幻MMO", {"Dragon Realm", "Eternal Quest"}, {"龙之国度", "永恒征途"}, "open-world adventures", "开放世界冒险"},
    {2, "anime gacha", "二次元抽卡", {"Moonlight Summon", "Sakura Legends"}, {"月光召唤", "樱花传说"}, "100+ anime heroes to collect", "收集百位二次元英雄"},
    {3, "tower defense", "塔防", {"Castle Guard", "Bastion Line"}, {"城堡守卫", "堡垒防线"}, "build towers and stop the horde", "建塔御敌，守住防线"},
    {3, "4X war", "国战", {"Empire Dawn", "Three Kingdoms Saga"}, {"帝国黎明", "三国志传"}, "conquer cities with your alliance", "与盟友攻城略地"},
    {4, "battle royale", "大逃杀", {"Last Squad", "Drop Zone"}, {"最后小队", "空降战场"}, "100-player survival matches", "百人生存对决"},
    {4, "tactical FPS", "战术射击", {"Strike Ops", "Zero Hour"}, {"突击行动", "零点行动"}, "precise 5v5 gunfights", "精准5v5枪战"},
    {5, "sneakers", "运动鞋", {"AirStep", "Urban Kicks"}, {"轻步", "街头潮鞋"}, "limited-edition sneakers", "限量款球鞋"},
    {5, "dresses", "连衣裙", {"Bloom Dress", "Silk Lane"}, {"花漾", "丝路衣橱"}, "new-season dresses", "当季新款连衣裙"},
    {5, "watches", "手表", {"Chrono Lux", "TimeCraft"}, {"时光腕表", "匠心表"}, "Swiss-style watches", "瑞士风格腕表"},
    {6, "smartphones", "手机", {"Nova Phone", "Orbit X"}, {"星耀手机", "轨道X"}, "flagship cameras", "旗舰影像"},
    {6, "headphones", "耳机", {"SoundPods", "BassWave"}, {"声荚耳机", "低音浪"}, "noise-cancelling sound", "主动降噪好音质"},
    {6, "laptops", "笔记本电脑", {"AeroBook", "CodeStation"}, {"轻薄本Aero", "码力站"}, "all-day battery laptops", "超长续航笔记本"},
    {7, "fresh fruit", "新鲜水果", {"Orchard Fresh", "Daily Fruit"}, {"果园鲜到家", "每日鲜果"}, "fruit delivered in 30 minutes", "30分钟鲜果到家"},
    {7, "snacks", "零食", {"Snack Box", "Crunch Club"}, {"零食盒子", "脆脆俱乐部"}, "imported snacks", "进口零食"},
    {8, "skincare", "护肤", {"Glow Lab", "Pure Dew"}, {"焕颜实验室", "纯露"}, "hydrating serums", "补水精华"},
    {8, "makeup", "彩妆", {"Velvet Lips", "ColorPop Studio"}, {"丝绒唇", "彩妆工作室"}, "long-lasting lipsticks", "持久不脱色口红"},
    {9, "sofas", "沙发", {"Cozy Nest", "Loft Living"}, {"暖巢", "阁楼生活"}, "modular sofas", "模块化沙发"},
    {9, "kitchenware", "厨具", {"Chef Pro", "Wok Master"}, {"大厨之选", "炒锅大师"}, "non-stick cookware", "不粘锅具"},
    {10, "fast food", "快餐", {"QuickBite", "Burger Run"}, {"速食达", "汉堡快跑"}, "meals in 20 minutes", "20分钟送达"},
    {10, "bubble tea", "奶茶", {"Pearl Tea", "Boba Time"}, {"珍珠茶社", "波霸时光"}, "fresh-brewed bubble tea", "现煮珍珠奶茶"},
    {11, "taxi", "打车", {"GoRide", "CityCab"}, {"快行打车", "城市约车"}, "a car in 3 minutes", "3分钟接驾"},
    {11, "bike sharing", "共享单车", {"Pedal", "Green Bike"}, {"骑点单车", "小绿车"}, "unlock a bike with one scan", "扫码即骑"},
    {12, "cleaning", "保洁", {"Sparkle Home", "Tidy Hands"}, {"闪亮家政", "巧手保洁"}, "deep cleaning by vetted pros", "专业深度保洁"},
    {12, "moving", "搬家", {"MoveEasy", "Box & Go"}, {"轻松搬", "搬家帮"}, "stress-free moving", "省心搬家"},
    {13, "personal loans", "个人贷款", {"QuickCash", "LendWell"}, {"闪电借", "好借"}, "approval in minutes", "分钟级审批"},
    {13, "car loans", "车贷", {"AutoFund", "DriveNow Credit"}, {"车易贷", "驾享贷"}, "low-rate car loans", "低息购车贷款"},
    {14, "stock trading", "股票交易", {"TradeUp", "Bull Desk"}, {"涨乐交易", "牛市通"}, "zero-commission trades", "零佣金交易"},
    {14, "funds", "基金", {"Fund Garden", "Steady Yield"}, {"基金花园", "稳盈宝"}, "curated index funds", "精选指数基金"},
    {15, "health insurance", "健康险", {"CareShield", "Vita Cover"}, {"安心保", "健康守护"}, "cover for 100+ illnesses", "覆盖百种疾病"},
    {15, "car insurance", "车险", {"DriveSafe", "Road Guard"}, {"平安驾", "路路保"}, "quotes in 1 minute", "1分钟报价"},
    {16, "cashback cards", "返现信用卡", {"CashBack+", "Reward One"}, {"返现卡", "悦享卡"}, "5% cashback on dining", "餐饮5%返现"},
    {16, "travel cards", "旅行信用卡", {"SkyMiles Card", "Globe Card"}, {"飞行卡", "环球卡"}, "airport lounge access", "机场贵宾厅畅享"},
    {17, "English", "英语", {"Speakly", "Fluent Up"}, {"口语通", "流利说说"}, "speak English in 30 days", "30天开口说英语"},
    {17, "Japanese", "日语", {"Nihongo Go", "Kana Master"}, {"日语GO", "假名大师"}, "JLPT prep made easy", "轻松备考日语能力考"},
    {18, "math tutoring", "数学辅导", {"MathStar", "Sum Up"}, {"数学之星", "学霸数学"}, "1-on-1 math coaching", "一对一数学辅导"},
    {18, "coding for kids", "少儿编程", {"Code Kids", "Robo Camp"}, {"编程小子", "机器人营"}, "build games with code", "用代码做游戏"},
    {19, "data science", "数据科学", {"DataPath", "Learn ML"}, {"数据之路", "机器学习营"}, "job-ready data skills", "就业级数据技能"},
    {19, "design", "设计", {"Design Loop", "Pixel School"}, {"设计环", "像素学院"}, "a UI/UX portfolio in 8 weeks", "8周做出UI作品集"},
    {20, "luxury hotels", "豪华酒店", {"Grand Stay", "Palace Suites"}, {"君悦住", "宫廷套房"}, "5-star stays", "五星级入住"},
    {20, "budget hotels", "经济型酒店", {"SleepWell Inn", "Easy Inn"}, {"好眠连锁", "易居"}, "clean rooms under $50", "300元内干净好房"},
    {21, "domestic flights", "国内机票", {"SkyHop", "AirDeal"}, {"飞跃机票", "特价机票通"}, "fares from $39", "特价机票199元起"},
    {21, "international flights", "国际机票", {"GlobeJet", "WorldWing"}, {"环球飞", "世界之翼"}, "fly to 200+ cities", "飞往200多个城市"},
    {22, "island holidays", "海岛度假", {"Blue Lagoon Trips", "Island Hop"}, {"蓝色泻湖游", "跳岛游"}, "all-inclusive beach packages", "海岛全包套餐"},
    {22, "theme parks", "主题乐园", {"FunPass", "Magic Park"}, {"乐园通票", "魔法乐园"}, "skip-the-line tickets", "免排队门票"},
    {23, "home workouts", "居家健身", {"FitHome", "Sweat 15"}, {"居家练", "燃脂15分钟"}, "15-minute home workouts", "15分钟居家训练"},
    {23, "running", "跑步", {"RunLog", "Pace Pal"}, {"跑步记", "配速伙伴"}, "GPS running plans", "GPS跑步计划"},
    {24, "online doctors", "在线医生", {"DocNow", "MediChat"}, {"好医生在线", "医聊"}, "see a doctor in 5 minutes", "5分钟接诊"},
    {24, "pharmacy delivery", "送药上门", {"PillPost", "MedExpress"}, {"送药侠", "药急送"}, "medicines delivered in 1 hour", "1小时送药上门"},
    {25, "dramas", "电视剧", {"DramaBox", "Binge TV"}, {"剧好看", "追剧TV"}, "hit dramas, new episodes daily", "热播剧每日更新"},
    {25, "anime", "动漫", {"AniStream", "Otaku Play"}, {"番剧站", "宅宅播"}, "simulcast anime", "新番同步更新"},
    {26, "music streaming", "音乐播放", {"Tunely", "BeatBox Music"}, {"悦听", "节拍音乐"}, "100 million songs, no ads", "亿首歌曲无广告"},
    {26, "karaoke", "K歌", {"Mic Up", "Karaoke Night"}, {"麦霸K歌", "K歌之夜"}, "sing with pro sound effects", "专业音效K歌"},
    {27, "game streams", "游戏直播", {"StreamPlay", "LiveArena"}, {"游播", "直播竞技场"}, "top players live", "高手实况直播"},
    {27, "variety shows", "综艺直播", {"ShowTime Live", "Party Room"}, {"秀场直播", "派对房"}, "live variety shows every night", "每晚综艺直播"},
};

constexpr const char* kCtaAppEn[kNumCtas] = {"download now", "install now", "get the app", "try it free"};
constexpr const char* kCtaAppZh[kNumCtas] = {"立即下载", "马上安装", "获取应用", "免费试用"};
constexpr const char* kCtaWebEn[kNumCtas] = {"shop now", "learn more", "book now", "order now"};
constexpr const char* kCtaWebZh[kNumCtas] = {"立即抢购", "了解详情", "立即预订", "马上下单"};

std::string Capitalized(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

const char* Cta(const AdTextSpec& t) {
  uint32_t i = t.cta % kNumCtas;
  if (t.app) return t.zh ? kCtaAppZh[i] : kCtaAppEn[i];
  return t.zh ? kCtaWebZh[i] : kCtaWebEn[i];
}

}  // namespace

std::span<const L1Spec> L1Nodes() { return kL1; }
std::span<const L2Spec> L2Nodes() { return kL2; }
std::span<const L3Spec> L3Nodes() { return kL3; }

std::string ProductName(const AdTextSpec& t) {
  const L3Spec& l3 = kL3[t.l3];
  return t.zh ? l3.product_zh[t.product & 1] : l3.product_en[t.product & 1];
}

std::string RenderTitle(const AdTextSpec& t) {
  const L3Spec& l3 = kL3[t.l3];
  const std::string hen(kHooks[t.hook].en), hzh(kHooks[t.hook].zh);
  std::string p = ProductName(t);
  switch ((t.title_template % kNumTitleTemplates) * 2 + (t.zh ? 1 : 0)) {
    case 0: return p + ": " + l3.feature_en + " — " + hen + ", " + Cta(t);
    case 1: return p + "：" + l3.feature_zh + "，" + hzh + "，" + Cta(t);
    case 2: return Capitalized(hen) + " " + p + ": " + l3.feature_en;
    case 3: return hzh + "｜" + p + "，" + l3.feature_zh;
    case 4: return p + " | " + l3.en + " — " + hen;
    default: return std::string("【") + l3.zh + "】" + p + "——" + hzh;
  }
}

std::string RenderDescription(const AdTextSpec& t) {
  const L3Spec& l3 = kL3[t.l3];
  const L2Spec& l2 = kL2[l3.l2];
  const L1Spec& l1 = kL1[l2.l1];
  const std::string hen(kHooks[t.hook2].en), hzh(kHooks[t.hook2].zh);
  std::string p = ProductName(t);
  if (t.zh) {
    return p + "为你带来" + l3.feature_zh + "。" + hzh + "，" + Cta(t) + "！" + l1.zh + " · " + l2.zh + " · " + l3.zh;
  }
  return p + " brings you " + l3.feature_en + ". " + Capitalized(hen) + " — " + Cta(t) + ". " + l1.en + " › " +
         l2.en + " › " + l3.en;
}

}  // namespace synth
}  // namespace adrec::data
