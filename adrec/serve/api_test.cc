#include "adrec/serve/api.h"

#include <gtest/gtest.h>

namespace adrec::serve {
namespace {

std::string ErrorOf(std::string_view body, bool events) {
  const Status s = events ? ParseEventsRequest(body).status() : ParseRecommendRequest(body).status();
  EXPECT_FALSE(s.ok()) << body;
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  return s.message();
}

TEST(ServeApi, RecommendRequestsParseWithDefaults) {
  auto r = ParseRecommendRequest(R"({"user_id": "u1", "context": {"scene": "feed", "hour": 13}, "k": 5})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->user_id, "u1");
  EXPECT_EQ(r->k, 5);
  EXPECT_EQ(r->context.at("scene"), "feed");
  EXPECT_EQ(r->context.at("hour"), "13");
  auto d = ParseRecommendRequest(R"({"user_id": "用户 7"})");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->k, 10);
  EXPECT_TRUE(d->context.empty());
  EXPECT_FALSE(d->explain);
  auto e = ParseRecommendRequest(R"({"user_id": "u", "explain": true})");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->explain);
}

TEST(ServeApi, RecommendErrorsNameTheField) {
  EXPECT_NE(ErrorOf("", false).find("empty"), std::string::npos);
  EXPECT_NE(ErrorOf("{", false).find("not valid JSON"), std::string::npos);
  EXPECT_NE(ErrorOf("[1]", false).find("an array; expected a JSON object"), std::string::npos);
  EXPECT_EQ(ErrorOf("{}", false), "user_id: missing");
  EXPECT_EQ(ErrorOf(R"({"user_id": 7})", false), "user_id: expected a string, got an integer");
  EXPECT_EQ(ErrorOf(R"({"user_id": ""})", false), "user_id: empty");
  EXPECT_EQ(ErrorOf(R"({"user_id": "u", "k": 0})", false), "k: 0 is outside [1, 1000]");
  EXPECT_EQ(ErrorOf(R"({"user_id": "u", "k": "5"})", false), "k: expected an integer, got a string");
  EXPECT_EQ(ErrorOf(R"({"user_id": "u", "k": 2.5})", false), "k: expected an integer, got a number");
  EXPECT_EQ(ErrorOf(R"({"user_id": "u", "explain": 1})", false), "explain: expected true or false, got an integer");
  EXPECT_EQ(ErrorOf(R"({"user_id": "u", "context": {"scene": [1]}})", false),
            "context.scene: expected a string or an integer, got an array");
  EXPECT_NE(ErrorOf(R"({"usr_id": "u"})", false).find("usr_id: unknown field"), std::string::npos);
  EXPECT_NE(ErrorOf("{\"user_id\": \"" + std::string(300, 'x') + "\"}", false).find("300 bytes; at most 256"),
            std::string::npos);
  EXPECT_NE(ErrorOf("{\"user_id\": \"a\xff\"}", false).find("JSON"), std::string::npos);  // the parser refuses bad UTF-8
}

TEST(ServeApi, EventsParseAndErrorsNameTheEvent) {
  auto r = ParseEventsRequest(R"({"events": [
      {"event_id": "e1", "user_id": "u1", "item_id": "ad9", "action": "click", "ts": 1700000000, "scene": "feed", "position": 3, "creative_id": "ad9~t2"},
      {"event_id": "e2", "user_id": "u1", "item_id": "ad9", "action": "conversion", "ts": 1700000100, "value": 2.5}]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].action, data::Action::kClick);
  EXPECT_EQ((*r)[0].scene, "feed");
  EXPECT_EQ((*r)[1].ts, 1700000100u);
  EXPECT_FLOAT_EQ((*r)[1].value, 2.5f);
  EXPECT_EQ((*r)[1].scene, "");
  EXPECT_EQ((*r)[0].position, 3);
  EXPECT_EQ((*r)[1].position, 0);  // absent: the top
  EXPECT_EQ((*r)[0].creative_id, "ad9~t2");
  EXPECT_EQ((*r)[1].creative_id, "");

  const std::string ok = R"("event_id": "e", "user_id": "u", "item_id": "i", "action": "click")";
  EXPECT_EQ(ErrorOf(R"({"events": []})", true), "events: empty; send at least one event");
  EXPECT_EQ(ErrorOf(R"({"events": {}})", true), "events: expected an array, got an object");
  EXPECT_EQ(ErrorOf(R"({"events": [{)" + ok + "}]}", true), "events[0].ts: missing");
  EXPECT_EQ(ErrorOf(R"({"events": [{)" + ok + R"(, "ts": "now"}]})", true),
            "events[0].ts: expected an integer number of seconds, got a string");
  EXPECT_EQ(ErrorOf(R"({"events": [{)" + ok + R"(, "ts": -1}]})", true), "events[0].ts: -1 is outside [0, 4294967295] (unix seconds)");
  EXPECT_EQ(ErrorOf(R"({"events": [{)" + ok + R"(, "ts": 18446744073709551615}]})", true),
            "events[0].ts: 18446744073709551615 is outside [0, 4294967295] (unix seconds)");
  EXPECT_NE(ErrorOf(R"({"events": [{"event_id": "e", "user_id": "u", "item_id": "i", "action": "clack", "ts": 1}]})", true)
                .find("events[0].action"),
            std::string::npos);
  EXPECT_EQ(ErrorOf(R"({"events": [{)" + ok + R"(, "ts": 1}, 3]})", true), "events[1]: expected an object, got an integer");
  EXPECT_EQ(ErrorOf(R"({"events": [{)" + ok + R"(, "ts": 1, "value": 1e300}]})", true), "events[0].value: not a finite float");
  for (const char* bad : {"256", "-1", "1.5", "\"2\""}) {
    EXPECT_EQ(ErrorOf(R"({"events": [{)" + ok + R"(, "ts": 1, "position": )" + bad + "}]}", true),
              "events[0].position: expected an integer in [0, 255] (the ad's 0-based place in the list), got " + std::string(bad));
  }
  EXPECT_NE(ErrorOf(R"({"events": [{)" + ok + R"(, "ts": 1, "sceen": "x"}]})", true).find("events[0].sceen: unknown field"),
            std::string::npos);
  std::string many = R"({"events": [)";
  for (int i = 0; i < 1001; ++i) many += std::string(i ? "," : "") + "{" + ok + R"(, "ts": 1})";
  EXPECT_EQ(ErrorOf(many + "]}", true), "events: 1001 events; at most 1000 per request");
}

}  // namespace
}  // namespace adrec::serve
