#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "adrec/core/file.h"
#include "adrec/data/import.h"
#include "adrec/data/import_test_util.h"

namespace adrec::data {
namespace {

// Fixtures are written by the tests themselves: no MovieLens data is committed.
void Write(const std::filesystem::path& p, std::string_view text) { ASSERT_TRUE(AtomicWriteFile(p, text).ok()); }

std::vector<std::string> Tags(const Dataset& ds, uint32_t item) {
  const Column* c = ds.item_table.Find(cols::kTags);
  std::vector<std::string> out;
  for (uint32_t code : c->ListAt(item)) out.push_back(c->vocab->Name(code));
  return out;
}

std::string Cat(const Dataset& ds, const Table& t, std::string_view col, uint32_t row) {
  const Column* c = t.Find(col);
  return c->vocab->Name(c->u32[row]);
}

// Events of one user as (item name, time, value), in stored order.
std::vector<std::tuple<std::string, uint32_t, float>> History(const Dataset& ds, std::string_view user) {
  std::vector<std::tuple<std::string, uint32_t, float>> out;
  auto u = ds.users.Find(user);
  if (!u) return out;
  auto [b, e] = ds.UserRange(*u);
  for (uint64_t i = b; i < e; ++i) out.emplace_back(ds.items.Name(ds.events.item[i]), ds.events.time[i], ds.events.value[i]);
  return out;
}

void Write100k(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  // User 196's events are out of time order; user 22 comes between them.
  Write(dir / "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n196\t302\t5\t881250000\n");
  std::string flags_action = "0|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0";
  std::string flags_comedy_drama = "0|0|0|0|0|1|0|0|1|0|0|0|0|0|0|0|0|0|0";
  Write(dir / "u.item", "242|Kolya (1996)|24-Jan-1997||http://x|" + flags_comedy_drama + "\n" +
                            "302|L.A. Confidential (1997)|01-Jan-1997||http://x|" + flags_action + "\n" +
                            "377|Mis\xE9rables, Les (1995)|01-Jan-1995||http://x|" + flags_comedy_drama + "\n" +
                            "999|Never Rated (1990)|01-Jan-1990||http://x|" + std::string(flags_action) + "\n");
  Write(dir / "u.user", "196|49|M|writer|55105\n186|39|F|executive|00000\n22|25|M|writer|40206\n");
}

TEST(ImportMovieLensTest, Reads100kWithAttributesGenresAndLatin1) {
  ScopedTempDir tmp("ml");
  auto dir = tmp.path() / "ml-100k";
  Write100k(dir);
  auto ds = ImportMovieLens(Opts(dir));
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->info.name, "movielens-100k");
  EXPECT_EQ(ds->info.source_format, "movielens");
  EXPECT_EQ(ds->info.provenance, "movielens: ml-100k/u.data, u.item, u.user");
  EXPECT_EQ(ds->info.provenance.find(tmp.path().string()), std::string::npos);
  EXPECT_EQ(ds->num_events(), 4u);
  EXPECT_EQ(ds->num_users(), 3u);
  EXPECT_EQ(ds->num_items(), 4u);  // the never-rated catalog item counts
  EXPECT_EQ(ds->scenes, std::vector<std::string>{"default"});
  EXPECT_TRUE(ds->Validate().ok());
  // Sorted by user, then time; values are ratings.
  auto h = History(*ds, "196");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0], std::make_tuple(std::string("302"), 881250000u, 5.f));
  EXPECT_EQ(h[1], std::make_tuple(std::string("242"), 881250949u, 3.f));
  for (size_t i = 0; i < ds->num_events(); ++i) EXPECT_EQ(ds->events.action[i], uint8_t(Action::kRating));
  // Items.
  uint32_t kolya = *ds->items.Find("242"), mis = *ds->items.Find("377"), la = *ds->items.Find("302");
  const Column* title = ds->item_table.Find(cols::kTitle);
  EXPECT_EQ(title->str[kolya], "Kolya (1996)");
  EXPECT_EQ(title->str[mis], "Misérables, Les (1995)");  // latin-1 → UTF-8
  EXPECT_EQ(Tags(*ds, kolya), (std::vector<std::string>{"Comedy", "Drama"}));
  EXPECT_EQ(Tags(*ds, la), (std::vector<std::string>{"Action"}));
  const Column* cat1 = ds->item_table.Find(cols::kCategory1);
  EXPECT_EQ(ds->taxonomy.Path(cat1->u32[kolya]), "Comedy");
  EXPECT_EQ(ds->taxonomy.Path(cat1->u32[la]), "Action");
  EXPECT_EQ(ds->taxonomy.nodes[cat1->u32[la]].level, 1);
  EXPECT_EQ(Cat(*ds, ds->item_table, cols::kLanguage, mis), "en");
  // Users.
  uint32_t u186 = *ds->users.Find("186");
  EXPECT_EQ(Cat(*ds, ds->user_table, cols::kAge, u186), "39");
  EXPECT_EQ(Cat(*ds, ds->user_table, cols::kGender, u186), "F");
  EXPECT_EQ(Cat(*ds, ds->user_table, cols::kOccupation, u186), "executive");
  EXPECT_EQ(Cat(*ds, ds->user_table, cols::kRegion, u186), "000");
}

TEST(ImportMovieLensTest, GenreNamesComeFromUGenre) {
  ScopedTempDir tmp("ml");
  auto dir = tmp.path() / "ml-100k";
  std::filesystem::create_directories(dir);
  Write(dir / "u.genre", "Zero|0\nOne|1\n\n");
  Write(dir / "u.item", "7|Seven|x||y|0|1\n");
  Write(dir / "u.data", "1\t7\t4\t100\n");
  auto ds = ImportMovieLens(Opts(dir / "u.data"));  // a path to one of the files works too
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(Tags(*ds, 0), std::vector<std::string>{"One"});
  EXPECT_EQ(ds->info.provenance, "movielens: ml-100k/u.data, u.item, u.genre");
}

TEST(ImportMovieLensTest, Reads1mWithCodedUsers) {
  ScopedTempDir tmp("ml");
  auto dir = tmp.path() / "ml-1m";
  std::filesystem::create_directories(dir);
  Write(dir / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n");
  Write(dir / "movies.dat", "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::James and the Giant Peach (1996)::Animation|Children's|Musical\n");
  Write(dir / "users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n");
  auto ds = ImportMovieLens(Opts(dir));
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->info.name, "movielens-1m");
  EXPECT_EQ(ds->num_events(), 3u);
  uint32_t u1 = *ds->users.Find("1"), u2 = *ds->users.Find("2");
  EXPECT_EQ(Cat(*ds, ds->user_table, cols::kAge, u1), "under 18");
  EXPECT_EQ(Cat(*ds, ds->user_table, cols::kOccupation, u1), "K-12 student");
  EXPECT_EQ(Cat(*ds, ds->user_table, cols::kGender, u2), "M");
  EXPECT_EQ(Cat(*ds, ds->user_table, cols::kOccupation, u2), "self-employed");
  EXPECT_EQ(Cat(*ds, ds->user_table, cols::kRegion, u2), "700");
  EXPECT_EQ(Tags(*ds, *ds->items.Find("661")), (std::vector<std::string>{"Animation", "Children's", "Musical"}));
  EXPECT_EQ(History(*ds, "1").size(), 2u);
}

TEST(ImportMovieLensTest, Reads10mHalfStarsWithoutUsers) {
  ScopedTempDir tmp("ml");
  auto dir = tmp.path() / "ml-10M100K";
  std::filesystem::create_directories(dir);
  Write(dir / "ratings.dat", "1::122::5::838985046\n1::185::4.5::838983525\n");
  Write(dir / "movies.dat", "122::Boomerang (1992)::Comedy|Romance\n185::Net, The (1995)::(no genres listed)\n");
  auto ds = ImportMovieLens(Opts(dir));
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->info.name, "movielens-10m");
  auto h = History(*ds, "1");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(std::get<2>(h[0]), 4.5f);
  EXPECT_TRUE(Tags(*ds, *ds->items.Find("185")).empty());
  EXPECT_EQ(ds->item_table.Find(cols::kCategory1)->u32[*ds->items.Find("185")], 0u);
  EXPECT_TRUE(ds->user_table.columns.empty());
}

TEST(ImportMovieLensTest, ReadsCsvLayoutWithQuotedTitles) {
  ScopedTempDir tmp("ml");
  auto dir = tmp.path() / "ml-20m";
  std::filesystem::create_directories(dir);
  Write(dir / "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3.5,1112486027\n1,29,3.5,1112484676\n2,2,4.0,974820889\n");
  Write(dir / "movies.csv",
        "movieId,title,genres\n2,Jumanji (1995),Adventure|Children|Fantasy\n"
        "29,\"City of Lost Children, The (Cité des enfants perdus, La) (1995)\",Adventure|Drama\n"
        "30,\"Say \"\"Hi\"\" (2001)\",(no genres listed)\n");
  auto ds = ImportMovieLens(Opts(dir));
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->info.name, "movielens-20m");
  EXPECT_EQ(ds->info.provenance, "movielens: ml-20m/ratings.csv, movies.csv");
  EXPECT_EQ(ds->num_events(), 3u);
  EXPECT_EQ(ds->num_items(), 3u);
  const Column* title = ds->item_table.Find(cols::kTitle);
  EXPECT_EQ(title->str[*ds->items.Find("29")], "City of Lost Children, The (Cité des enfants perdus, La) (1995)");
  EXPECT_EQ(title->str[*ds->items.Find("30")], "Say \"Hi\" (2001)");
  auto h = History(*ds, "1");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(std::get<0>(h[0]), "29");  // earlier timestamp first
  EXPECT_EQ(Tags(*ds, *ds->items.Find("2")), (std::vector<std::string>{"Adventure", "Children", "Fantasy"}));
  // Genre taxonomy: one level, one node per distinct genre.
  EXPECT_EQ(ds->taxonomy.Children(0).size(), 4u);
}

TEST(ImportMovieLensTest, MalformedRowFailsNamingFileAndLine) {
  ScopedTempDir tmp("ml");
  auto dir = tmp.path() / "ml-20m";
  std::filesystem::create_directories(dir);
  Write(dir / "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3.5,1112486027\n1,3,9,1112486027\n1,4\n1,x,3,5\n1,5,3,-4\n1,6,3,5\n");
  auto ds = ImportMovieLens(Opts(dir));
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(ds.status().message().find("ratings.csv:3: rating '9' outside [0.5, 5]"), std::string::npos)
      << ds.status().message();

  auto ds2 = ImportMovieLens(Opts(dir, 3));
  EXPECT_FALSE(ds2.ok());
  EXPECT_NE(ds2.status().message().find("ratings.csv:6: timestamp '-4'"), std::string::npos) << ds2.status().message();

  auto ds3 = ImportMovieLens(Opts(dir, 4));
  ASSERT_TRUE(ds3.ok()) << ds3.status().ToString();
  EXPECT_EQ(ds3->info.malformed_rows, 4u);
  EXPECT_EQ(ds3->num_events(), 2u);
}

TEST(ImportMovieLensTest, EmptyOrAllInvalidInputIsAnError) {
  ScopedTempDir tmp("ml");
  auto dir = tmp.path() / "ml-20m";
  std::filesystem::create_directories(dir);
  Write(dir / "ratings.csv", "");
  auto ds = ImportMovieLens(Opts(dir));
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("ratings.csv: no events"), std::string::npos) << ds.status().message();
  Write(dir / "ratings.csv", "userId,movieId,rating,timestamp\n1,2,0,1\n");
  ds = ImportMovieLens(Opts(dir, 10));
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("every row was invalid"), std::string::npos) << ds.status().message();
}

TEST(ImportMovieLensTest, MissingInputIsNotFound) {
  ScopedTempDir tmp("ml");
  EXPECT_EQ(ImportMovieLens(Opts(tmp.path() / "nope")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ImportMovieLens(Opts(tmp.path())).status().code(), StatusCode::kNotFound);
}

TEST(ImportMovieLensTest, DuplicateCatalogRowsAreMalformed) {
  ScopedTempDir tmp("ml");
  auto dir = tmp.path() / "ml-1m";
  std::filesystem::create_directories(dir);
  Write(dir / "ratings.dat", "1::1::5::1\n");
  Write(dir / "movies.dat", "1::A::Drama\n1::B::Drama\n");
  Write(dir / "users.dat", "1::F::1::10::48067\n");
  auto ds = ImportMovieLens(Opts(dir));
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("movies.dat:2: movie '1' listed twice"), std::string::npos);
  ds = ImportMovieLens(Opts(dir, 1));
  ASSERT_TRUE(ds.ok());
  EXPECT_EQ(ds->item_table.Find(cols::kTitle)->str[0], "A");
}

TEST(ImportMovieLensTest, BufferEntryMatchesFiles) {
  MovieLensBuffers b;
  b.layout = MovieLensLayout::k100k;
  b.ratings = "5\t6\t2\t10\n";
  b.items = "6|Six|x||y|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|1\n";
  b.users = "5|30|F|other|1234\n";
  auto ds = ImportMovieLensFromBuffers(b, Opts(""));
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(Tags(*ds, 0), std::vector<std::string>{"Western"});
  EXPECT_EQ(Cat(*ds, ds->user_table, cols::kRegion, 0), "123");
}

TEST(ImportDispatchTest, ParsesFormatNames) {
  EXPECT_EQ(*ParseImportFormat("criteo"), ImportFormat::kCriteo);
  EXPECT_EQ(ImportFormatName(ImportFormat::kJsonl), "jsonl");
  EXPECT_FALSE(ParseImportFormat("parquet").ok());
  ScopedTempDir tmp("ml");
  EXPECT_EQ(Import(ImportFormat::kMovieLens, Opts(tmp.path())).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace adrec::data
