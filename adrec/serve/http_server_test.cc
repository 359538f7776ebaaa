#include "adrec/serve/http_server.h"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

namespace adrec::serve {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;

// A real HTTP/1.1 client over loopback (Beast's synchronous API), one connection.
class Client {
 public:
  explicit Client(uint16_t port) : stream_(ioc_) {
    stream_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    stream_.expires_after(std::chrono::seconds(20));
  }
  http::response<http::string_body> Request(http::verb method, const std::string& target, const std::string& body = "") {
    http::request<http::string_body> req(method, target, 11);
    req.set(http::field::host, "127.0.0.1");
    req.keep_alive(true);
    if (!body.empty() || method == http::verb::post) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
    }
    http::write(stream_, req);
    return Read();
  }
  http::response<http::string_body> Read() {
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    http::read(stream_, buffer, parser);
    return parser.release();
  }
  void WriteRaw(const std::string& bytes) { asio::write(stream_.socket(), asio::buffer(bytes)); }
  // True once the server has closed the connection (a read returns end of stream).
  bool Closed() {
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    beast::error_code ec;
    http::read(stream_, buffer, res, ec);
    return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset;
  }

 private:
  asio::io_context ioc_;
  beast::tcp_stream stream_;
};

// Blocks handlers until released: requests that stay in flight on purpose.
class Gate {
 public:
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }
  void WaitForWaiters(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(20), [&] { return waiting_ >= n; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int waiting_ = 0;
  bool open_ = false;
};

HttpResponse Ok(std::string body) {
  HttpResponse r;
  r.body = std::move(body);
  return r;
}

std::shared_ptr<Router> TestRouter(Gate* gate) {
  auto r = std::make_shared<Router>();
  r->Add("GET", "/healthz", [](const HttpRequest&) { return Ok(R"({"ok":true})"); });
  r->Add("GET", "/v1/users/{id}", [](const HttpRequest& q) {
    return Ok(json{{"id", q.params.at("id")}, {"query", q.query}}.dump());
  });
  r->Add("POST", "/v1/echo", [](const HttpRequest& q) {
    const json body = json::parse(q.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) return JsonError(400, "InvalidArgument", "the body is not JSON");
    return Ok(json{{"echo", body}, {"type", q.Header("content-type")}}.dump());
  });
  r->Add("POST", "/slow", [gate](const HttpRequest&) {
    gate->Wait();
    return Ok(R"({"slow":true})");
  });
  r->Add("GET", "/boom", [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("handler bug"); });
  return r;
}

std::unique_ptr<HttpServer> MustStart(HttpServerOptions o, std::shared_ptr<Router> router) {
  auto s = HttpServer::Start(std::move(o), std::move(router));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(*s);
}

TEST(HttpServer, KeepAliveRoutesParamsAndJsonErrors) {
  Gate gate;
  std::atomic<int> responses{0};
  HttpServerOptions o;
  o.on_response = [&](const std::string&, int, double) { ++responses; };
  auto server = MustStart(o, TestRouter(&gate));
  ASSERT_GT(server->port(), 0);
  Client c(server->port());
  for (int i = 0; i < 3; ++i) {  // one connection, three requests
    auto res = c.Request(http::verb::get, "/healthz");
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(res.body(), R"({"ok":true})");
    EXPECT_TRUE(res.keep_alive());
  }
  auto user = c.Request(http::verb::get, "/v1/users/u%2042?verbose=1");
  EXPECT_EQ(json::parse(user.body())["id"], "u%2042");
  EXPECT_EQ(json::parse(user.body())["query"], "verbose=1");
  auto echo = c.Request(http::verb::post, "/v1/echo", R"({"a":[1,2]})");
  EXPECT_EQ(json::parse(echo.body())["echo"]["a"][1], 2);
  EXPECT_EQ(json::parse(echo.body())["type"], "application/json");
  auto bad = c.Request(http::verb::post, "/v1/echo", "{nope");
  EXPECT_EQ(bad.result_int(), 400);
  EXPECT_EQ(json::parse(bad.body())["error"]["code"], "InvalidArgument");
  auto missing = c.Request(http::verb::get, "/v2/nothing");
  EXPECT_EQ(missing.result_int(), 404);
  EXPECT_EQ(json::parse(missing.body())["error"]["code"], "NotFound");
  auto method = c.Request(http::verb::delete_, "/v1/echo");
  EXPECT_EQ(method.result_int(), 405);
  EXPECT_EQ(method[http::field::allow], "POST");
  auto boom = c.Request(http::verb::get, "/boom");
  EXPECT_EQ(boom.result_int(), 500);
  EXPECT_NE(json::parse(boom.body())["error"]["message"].get<std::string>().find("handler bug"), std::string::npos);
  EXPECT_EQ(c.Request(http::verb::get, "/healthz").result_int(), 200);  // still serving after the bug
  EXPECT_EQ(responses.load(), 10);
  // A queue slot is released once the write completes, a moment after the client has the bytes.
  for (int i = 0; i < 200 && server->in_flight() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(server->in_flight(), 0u);
}

TEST(HttpServer, OversizedAndMalformedRequestsAreAnsweredThenClosed) {
  Gate gate;
  HttpServerOptions o;
  o.max_body_bytes = 1024;
  auto server = MustStart(o, TestRouter(&gate));
  {
    Client c(server->port());
    auto res = c.Request(http::verb::post, "/v1/echo", "[" + std::string(5000, '1') + "]");
    EXPECT_EQ(res.result_int(), 413);
    EXPECT_EQ(json::parse(res.body())["error"]["code"], "PayloadTooLarge");
    EXPECT_TRUE(c.Closed());
  }
  {
    Client c(server->port());
    c.WriteRaw("NOT HTTP AT ALL\r\n\r\n");
    auto res = c.Read();
    EXPECT_EQ(res.result_int(), 400);
    EXPECT_EQ(json::parse(res.body())["error"]["code"], "BadRequest");
    EXPECT_TRUE(c.Closed());
  }
  Client c(server->port());  // the server is unharmed
  EXPECT_EQ(c.Request(http::verb::get, "/healthz").result_int(), 200);
}

TEST(HttpServer, AFullQueueAnswers503WithRetryAfterAndRecovers) {
  Gate gate;
  HttpServerOptions o;
  o.workers = 1;
  o.max_queue = 2;
  auto server = MustStart(o, TestRouter(&gate));
  // Two slow requests fill the queue (one running, one waiting for the single worker).
  std::vector<std::future<int>> slow;
  for (int i = 0; i < 2; ++i) {
    slow.push_back(std::async(std::launch::async, [port = server->port()] {
      Client c(port);
      return static_cast<int>(c.Request(http::verb::post, "/slow", "{}").result_int());
    }));
  }
  gate.WaitForWaiters(1);
  for (int i = 0; i < 200 && server->in_flight() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(server->in_flight(), 2u);
  Client c(server->port());
  auto busy = c.Request(http::verb::get, "/healthz");
  EXPECT_EQ(busy.result_int(), 503);
  EXPECT_EQ(busy[http::field::retry_after], "1");
  EXPECT_EQ(json::parse(busy.body())["error"]["code"], "Unavailable");
  gate.Open();
  for (auto& f : slow) EXPECT_EQ(f.get(), 200);
  EXPECT_EQ(c.Request(http::verb::get, "/healthz").result_int(), 200);  // the same connection, served again
}

TEST(HttpServer, StopFinishesInFlightRequestsThenRefusesConnections) {
  Gate gate;
  HttpServerOptions o;
  auto server = MustStart(o, TestRouter(&gate));
  const uint16_t port = server->port();
  auto slow = std::async(std::launch::async, [port] {
    Client c(port);
    auto res = c.Request(http::verb::post, "/slow", "{}");
    return std::make_pair(res.result_int(), res.body());
  });
  gate.WaitForWaiters(1);
  auto stopper = std::async(std::launch::async, [&] { server->Stop(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  gate.Open();
  const auto [status, body] = slow.get();
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, R"({"slow":true})");
  stopper.get();
  asio::io_context ioc;
  tcp::socket s(ioc);
  beast::error_code ec;
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  EXPECT_TRUE(ec) << "the port still accepts after Stop";
}

TEST(HttpServer, BadAddressesAreErrors) {
  Gate gate;
  HttpServerOptions o;
  o.address = "not-an-address";
  auto s = HttpServer::Start(o, TestRouter(&gate));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().ToString().find("not-an-address"), std::string::npos);
  auto first = MustStart(HttpServerOptions{}, TestRouter(&gate));
  HttpServerOptions same;
  same.port = first->port();
  auto second = HttpServer::Start(same, TestRouter(&gate));
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().ToString().find(std::to_string(first->port())), std::string::npos);
}

}  // namespace
}  // namespace adrec::serve
