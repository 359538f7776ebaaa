// The HTTP/1.1 front of `adrec serve` (DESIGN.md "HTTP API"): Boost.Beast on Asio with
// keep-alive, a body size limit (413), a bounded work queue (503 with Retry-After when full),
// JSON errors, and a graceful stop that finishes in-flight requests. Handlers see plain structs,
// never Beast types, and run on a worker pool so slow model work never blocks the I/O thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adrec/core/status.h"

namespace adrec::serve {

struct HttpRequest {
  std::string method;  // "GET", "POST", …
  std::string path;    // without the query string
  std::string query;   // after '?', undecoded
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::map<std::string, std::string> params;  // path parameters: "/v1/users/{id}" fills "id"
  // The first header of that name (case-insensitive), or "".
  std::string Header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

// {"error": {"code": code, "message": message}} with `status` (DESIGN.md's error contract).
HttpResponse JsonError(int status, std::string_view code, std::string_view message);

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// Routes by method and path pattern ("/v1/users/{id}": a "{name}" segment matches any one
// segment). An unknown path answers 404, a known path with another method 405 with Allow.
class Router {
 public:
  void Add(std::string method, std::string pattern, HttpHandler handler);
  HttpResponse Dispatch(HttpRequest& request) const;
  // "METHOD pattern" of every route, in the order added (the OpenAPI file is checked against it).
  std::vector<std::string> Routes() const;
  // The pattern a request path matches, or "" (metrics label requests by route, not raw path).
  std::string PatternOf(std::string_view path) const;

 private:
  struct Route {
    std::string method, pattern;
    std::vector<std::string> segments;
    HttpHandler handler;
  };
  std::vector<Route> routes_;
};

struct HttpServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;                    // 0: any free port (port() tells which)
  size_t io_threads = 1;                // Asio threads: parsing and writing only
  size_t workers = 2;                   // handler threads
  size_t max_queue = 256;               // requests queued or running beyond which 503s answer
  size_t max_body_bytes = size_t{1} << 20;
  int idle_timeout_s = 30;              // a keep-alive connection silent this long is closed
  int retry_after_s = 1;                // the Retry-After of a 503
  // Called after each response with the matched route ("" when none), status and seconds.
  std::function<void(const std::string& route, int status, double seconds)> on_response;
};

class HttpServer {
 public:
  // Binds and starts serving; InvalidArgument for a bad address, Unavailable-like IoError when
  // the port cannot be bound.
  static StatusOr<std::unique_ptr<HttpServer>> Start(HttpServerOptions options, std::shared_ptr<const Router> router);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;
  // Requests accepted and not yet answered (queued or running).
  size_t in_flight() const;
  // Stops accepting, lets in-flight requests finish (up to `grace_s`), then closes every
  // connection and joins the threads. Idempotent.
  void Stop(double grace_s = 30.0);

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace adrec::serve
