// MovieLens-20M-shaped import benchmark: writes a synthetic ratings.csv (userId,movieId,rating,
// timestamp; ~138k users with heavy-tailed activity, ~27k movies with Zipf popularity, rows
// grouped by user and sorted by movieId like the real file) into a temp dir, then times
// ImportMovieLens against a plain line scan of the same file (the reference), and, when
// dataset_io.h is there, WriteDataset + ReadDataset.
//
//   import_bench [--lines=N]   (or ADREC_IMPORT_BENCH_LINES=N; default 20M)
// Target (DESIGN/issue): >= 2M lines/s on one core. The file is in the page cache when timed.
#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "adrec/core/file.h"
#include "adrec/data/import.h"
#include "adrec/data/line_reader.h"
#if __has_include("adrec/data/dataset_io.h")
#include "adrec/data/dataset_io.h"
#define ADREC_BENCH_HAVE_IO 1
#endif

namespace {
using namespace adrec;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Peak resident set (VmHWM) in MiB; ResetPeakRss() starts a new window (Linux clear_refs 5).
double PeakRssMiB() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}
double RssMiB() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  }
  return 0;
}
void ResetPeakRss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
}

// Writes `lines` rating rows shaped like ml-20m and returns the byte count.
uint64_t WriteRatings(const std::filesystem::path& path, uint64_t lines) {
  constexpr uint32_t kUsers20m = 138493, kMovies20m = 26744;
  constexpr uint64_t kLines20m = 20000263;
  const double scale = static_cast<double>(lines) / kLines20m;
  const auto users = std::max<uint32_t>(10, static_cast<uint32_t>(kUsers20m * std::min(1.0, std::sqrt(scale) * 1.0)));
  const uint32_t movies = kMovies20m;
  std::mt19937_64 rng(20);
  // Movie IDs are sparse in ml-20m (1..131262): spread the dense ones over that range.
  std::vector<uint32_t> movie_id(movies);
  for (uint32_t m = 0; m < movies; ++m) movie_id[m] = 1 + static_cast<uint32_t>(uint64_t{m} * 131262 / movies);
  // Zipf(1.0) popularity over a shuffled order, sampled by inverse CDF.
  std::vector<double> cdf(movies);
  double acc = 0;
  for (uint32_t m = 0; m < movies; ++m) cdf[m] = acc += 1.0 / (m + 1.0);
  for (auto& c : cdf) c /= acc;
  std::vector<uint32_t> rank_to_movie(movies);
  for (uint32_t m = 0; m < movies; ++m) rank_to_movie[m] = m;
  std::shuffle(rank_to_movie.begin(), rank_to_movie.end(), rng);
  // Heavy-tailed activity: lognormal counts, at least 20 (ml-20m's floor), rescaled to `lines`.
  std::lognormal_distribution<double> act(4.3, 1.0);
  std::vector<double> w(users);
  double wsum = 0;
  for (auto& x : w) wsum += x = act(rng);
  std::vector<uint32_t> count(users);
  uint64_t total = 0;
  for (uint32_t u = 0; u < users; ++u) {
    count[u] = std::min<uint32_t>(movies / 2, std::max<uint32_t>(1, static_cast<uint32_t>(w[u] / wsum * lines)));
    total += count[u];
  }
  for (uint32_t u = 0; total < lines; u = (u + 1) % users) ++count[u], ++total;
  for (uint32_t u = 0; total > lines; u = (u + 1) % users) {
    if (count[u] > 1) --count[u], --total;
  }
  // Ratings: the ml-20m half-star histogram (roughly).
  std::discrete_distribution<int> stars({1.2, 3.3, 1.6, 7.2, 4.4, 21.0, 11.0, 28.0, 7.6, 14.0});
  std::uniform_real_distribution<double> uni(0, 1);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::string buf = "userId,movieId,rating,timestamp\n";
  uint64_t bytes = 0;
  std::vector<uint32_t> picked;
  std::unordered_set<uint32_t> seen;
  for (uint32_t u = 0; u < users; ++u) {
    picked.clear();
    seen.clear();
    while (picked.size() < count[u]) {
      auto r = static_cast<uint32_t>(std::lower_bound(cdf.begin(), cdf.end(), uni(rng)) - cdf.begin());
      uint32_t m = rank_to_movie[std::min(r, movies - 1)];
      if (seen.insert(m).second) picked.push_back(m);
    }
    std::sort(picked.begin(), picked.end());
    uint32_t t0 = 789652009 + static_cast<uint32_t>(uni(rng) * 6.3e8);  // 1995..2015
    for (uint32_t m : picked) {
      int s = stars(rng) + 1;  // half stars 1..10
      unsigned ts = t0 + static_cast<uint32_t>(uni(rng) * 3.0e7);
      char line[64];
      int n = std::snprintf(line, sizeof(line), "%u,%u,%d.%c,%u\n", u + 1, movie_id[m], s / 2, (s % 2) ? '5' : '0', ts);
      buf.append(line, static_cast<size_t>(n));
    }
    if (buf.size() > (1u << 22)) {
      bytes += std::fwrite(buf.data(), 1, buf.size(), f);
      buf.clear();
    }
  }
  bytes += std::fwrite(buf.data(), 1, buf.size(), f);
  std::fclose(f);
  return bytes;
}
}  // namespace

int main(int argc, char** argv) {
  uint64_t lines = 20'000'000;
  if (const char* e = std::getenv("ADREC_IMPORT_BENCH_LINES")) lines = std::strtoull(e, nullptr, 10);
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--lines=", 8) == 0) lines = std::strtoull(argv[i] + 8, nullptr, 10);
    else {
      std::fprintf(stderr, "usage: %s [--lines=N]\n", argv[0]);
      return 2;
    }
  }
  ScopedTempDir tmp("import-bench");
  auto dir = tmp.path() / "ml-bench";
  std::filesystem::create_directories(dir);
  auto tg = Clock::now();
  uint64_t bytes = WriteRatings(dir / "ratings.csv", lines);
  std::printf("generated %llu rating lines, %.1f MiB, in %.1f s (%s)\n", static_cast<unsigned long long>(lines),
              bytes / 1048576.0, Seconds(tg), dir.c_str());

  // Reference: a plain LineReader scan of the same (cached) file.
  auto ts = Clock::now();
  uint64_t scanned = 0;
  {
    auto r = data::LineReader::Open(dir / "ratings.csv");
    std::string_view l;
    while ((*r)->Next(&l)) ++scanned;
  }
  double scan_s = Seconds(ts);

  double rss_before = RssMiB();
  ResetPeakRss();
  data::ImportOptions opt;
  opt.input = dir;
  opt.show_progress = false;
  auto ti = Clock::now();
  auto ds = data::ImportMovieLens(opt);
  double import_s = Seconds(ti);
  double peak = PeakRssMiB();
  if (!ds.ok()) {
    std::fprintf(stderr, "import failed: %s\n", ds.status().ToString().c_str());
    return 1;
  }
  const double n = static_cast<double>(ds->num_events());
  size_t mem = ds->events.MemoryBytes() + ds->users.MemoryBytes() + ds->items.MemoryBytes() +
               ds->user_offsets.capacity() * sizeof(uint64_t);
  std::printf("line scan (reference): %.2f s, %.2fM lines/s, %.0f MiB/s\n", scan_s, scanned / scan_s / 1e6,
              bytes / 1048576.0 / scan_s);
  std::printf("ImportMovieLens: %.2f s, %.2fM lines/s, %.0f MiB/s, %.2fx the line scan time\n", import_s,
              scanned / import_s / 1e6, bytes / 1048576.0 / import_s, import_s / scan_s);
  std::printf("  events %zu, users %u, items %u\n", ds->num_events(), ds->num_users(), ds->num_items());
  const auto& ev = ds->events;
  size_t used = ev.size() * (3 * sizeof(uint32_t) + 3 + sizeof(float));
  std::printf("  in-memory dataset %.2f bytes/event by capacity (event columns %.2f used, %.2f reserved -- "
              "reserved pages never touched are not resident; vocabularies+offsets %.2f)\n",
              mem / n, used / n, ev.MemoryBytes() / n, (mem - ev.MemoryBytes()) / n);
  std::printf("  peak RSS during import %.0f MiB (RSS before %.0f MiB; input file %.0f MiB)\n", peak, rss_before,
              bytes / 1048576.0);
#ifdef ADREC_BENCH_HAVE_IO
  auto out = tmp.path() / "dataset";
  auto tw = Clock::now();
  Status ws = data::WriteDataset(*ds, out);
  double write_s = Seconds(tw);
  if (!ws.ok()) {
    std::fprintf(stderr, "WriteDataset failed: %s\n", ws.ToString().c_str());
    return 1;
  }
  uint64_t on_disk = 0;
  for (const auto& e : std::filesystem::directory_iterator(out)) on_disk += e.file_size();
  auto tr = Clock::now();
  auto back = data::ReadDataset(out);
  double read_s = Seconds(tr);
  if (!back.ok()) {
    std::fprintf(stderr, "ReadDataset failed: %s\n", back.status().ToString().c_str());
    return 1;
  }
  std::printf("WriteDataset: %.2f s; on disk %.1f MiB (%.2f bytes/event)\n", write_s, on_disk / 1048576.0,
              on_disk / n);
  std::printf("ReadDataset: %.2f s; load/import time ratio %.3f (import is %.1fx slower than loading)\n", read_s,
              read_s / import_s, import_s / read_s);
#endif
  return 0;
}
