#include "adrec/serve/http_server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cctype>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "adrec/core/thread_pool.h"

namespace adrec::serve {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

std::vector<std::string> Segments(std::string_view path) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > pos) out.emplace_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  return out;
}

bool Matches(const std::vector<std::string>& pattern, const std::vector<std::string>& path,
             std::map<std::string, std::string>* params) {
  if (pattern.size() != path.size()) return false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const std::string& p = pattern[i];
    if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
      if (params) (*params)[p.substr(1, p.size() - 2)] = path[i];
    } else if (p != path[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (IEquals(k, name)) return v;
  }
  return "";
}

HttpResponse JsonError(int status, std::string_view code, std::string_view message) {
  HttpResponse r;
  r.status = status;
  r.body = nlohmann::json{{"error", {{"code", code}, {"message", message}}}}.dump();
  return r;
}

void Router::Add(std::string method, std::string pattern, HttpHandler handler) {
  Route r;
  r.segments = Segments(pattern);
  r.method = std::move(method);
  r.pattern = std::move(pattern);
  r.handler = std::move(handler);
  routes_.push_back(std::move(r));
}

std::vector<std::string> Router::Routes() const {
  std::vector<std::string> out;
  for (const Route& r : routes_) out.push_back(r.method + " " + r.pattern);
  return out;
}

std::string Router::PatternOf(std::string_view path) const {
  const auto segs = Segments(path);
  for (const Route& r : routes_) {
    if (Matches(r.segments, segs, nullptr)) return r.pattern;
  }
  return "";
}

HttpResponse Router::Dispatch(HttpRequest& request) const {
  const auto segs = Segments(request.path);
  std::string allow;
  for (const Route& r : routes_) {
    std::map<std::string, std::string> params;
    if (!Matches(r.segments, segs, &params)) continue;
    if (r.method != request.method) {
      allow += (allow.empty() ? "" : ", ") + r.method;
      continue;
    }
    request.params = std::move(params);
    try {
      return r.handler(request);
    } catch (const std::exception& e) {  // a handler bug answers 500, never takes the server down
      return JsonError(500, "Internal", std::string("unexpected error: ") + e.what());
    }
  }
  if (!allow.empty()) {
    HttpResponse r = JsonError(405, "MethodNotAllowed", request.method + " is not allowed on " + request.path + " (allowed: " + allow + ")");
    r.headers.emplace_back("Allow", allow);
    return r;
  }
  return JsonError(404, "NotFound", "no route " + request.method + " " + request.path);
}

// ---- the server ----

struct HttpServer::Impl {
  HttpServerOptions options;
  std::shared_ptr<const Router> router;
  asio::io_context ioc;
  // Keeps run() going while a handler works on a pool thread and no socket operation is pending.
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::optional<tcp::acceptor> acceptor;
  std::unique_ptr<ThreadPool> workers;
  std::vector<std::thread> io_threads;
  std::atomic<size_t> in_flight{0};
  std::atomic<bool> stopping{false};
  std::mutex stop_mu;
  bool stopped = false;
  uint16_t port = 0;

  void Accept();
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl* server) : stream_(std::move(socket)), server_(server) {}

  void Start() { asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); }); }

 private:
  void Read() {
    if (server_->stopping.load()) return Close();
    parser_.emplace();
    parser_->body_limit(server_->options.max_body_bytes);
    parser_->header_limit(64 * 1024);
    stream_.expires_after(std::chrono::seconds(server_->options.idle_timeout_s));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted) {
      return Close();
    }
    if (ec == http::error::body_limit) {
      return Send(JsonError(413, "PayloadTooLarge",
                            "the request body exceeds " + std::to_string(server_->options.max_body_bytes) + " bytes"),
                  /*keep_alive=*/false, "", Clock::now());
    }
    if (ec) {
      // A malformed request line or header: answer once, then close (the stream is unusable).
      if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
        return Send(JsonError(400, "BadRequest", "malformed HTTP request: " + ec.message()), false, "", Clock::now());
      }
      return Close();
    }
    http::request<http::string_body> req = parser_->release();
    const auto start = Clock::now();
    HttpRequest r;
    r.method = std::string(req.method_string());
    const std::string_view target(req.target().data(), req.target().size());
    const size_t q = target.find('?');
    r.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
    for (const auto& field : req) r.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    r.body = std::move(req.body());
    const bool keep_alive = req.keep_alive();
    const std::string route = server_->router->PatternOf(r.path);
    // Bounded queue: beyond max_queue requests waiting or running, answer 503 at once.
    if (server_->in_flight.fetch_add(1) >= server_->options.max_queue) {
      server_->in_flight.fetch_sub(1);
      HttpResponse busy = JsonError(503, "Unavailable", "the server is at its queue limit; retry later");
      busy.headers.emplace_back("Retry-After", std::to_string(server_->options.retry_after_s));
      return Send(std::move(busy), keep_alive, route, start);
    }
    server_->workers->Submit([self = shared_from_this(), r = std::move(r), keep_alive, route, start]() mutable {
      HttpResponse resp = self->server_->router->Dispatch(r);
      asio::post(self->stream_.get_executor(), [self, resp = std::move(resp), keep_alive, route, start]() mutable {
        self->Send(std::move(resp), keep_alive, route, start, /*counted=*/true);
      });
    });
  }

  // counted: the request holds a queue slot, released once its response is written (so Stop
  // waits for the bytes, not only the handler).
  void Send(HttpResponse resp, bool keep_alive, const std::string& route, Clock::time_point start, bool counted = false) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(resp.status), 11);
    res->set(http::field::server, "adrec");
    res->set(http::field::content_type, resp.content_type);
    for (const auto& [k, v] : resp.headers) res->set(k, v);
    res->keep_alive(keep_alive && !server_->stopping.load());
    res->body() = std::move(resp.body);
    res->prepare_payload();
    if (server_->options.on_response) {
      server_->options.on_response(route, resp.status, std::chrono::duration<double>(Clock::now() - start).count());
    }
    const bool close = !res->keep_alive();
    http::async_write(stream_, *res, [self = shared_from_this(), res, close, counted](beast::error_code ec, size_t) {
      if (counted) self->server_->in_flight.fetch_sub(1);
      if (ec || close) return self->Close();
      self->Read();
    });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpServer::Impl* server_;
};

}  // namespace

void HttpServer::Impl::Accept() {
  acceptor->async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping.load()) return;
    } else {
      std::make_shared<Session>(std::move(socket), this)->Start();
    }
    if (!stopping.load()) Accept();
  });
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() { Stop(); }

uint16_t HttpServer::port() const { return impl_->port; }
size_t HttpServer::in_flight() const { return impl_->in_flight.load(); }

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options, std::shared_ptr<const Router> router) {
  if (options.workers == 0 || options.io_threads == 0) return InvalidArgumentError("workers and io_threads must be positive");
  auto impl = std::make_unique<Impl>();
  beast::error_code ec;
  const auto address = asio::ip::make_address(options.address, ec);
  if (ec) return InvalidArgumentError("bad listen address '" + options.address + "': " + ec.message());
  const tcp::endpoint endpoint(address, options.port);
  impl->acceptor.emplace(impl->ioc);
  impl->acceptor->open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor->bind(endpoint, ec);
  if (!ec) impl->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return IoError("cannot listen on " + options.address + ":" + std::to_string(options.port) + ": " + ec.message());
  }
  impl->port = impl->acceptor->local_endpoint().port();
  impl->workers = std::make_unique<ThreadPool>(options.workers);
  impl->options = std::move(options);
  impl->router = std::move(router);
  impl->work.emplace(impl->ioc.get_executor());
  impl->Accept();
  for (size_t i = 0; i < impl->options.io_threads; ++i) impl->io_threads.emplace_back([ioc = &impl->ioc] { ioc->run(); });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::Stop(double grace_s) {
  Impl& s = *impl_;
  std::lock_guard<std::mutex> lock(s.stop_mu);
  if (s.stopped) return;
  s.stopped = true;
  s.stopping.store(true);
  asio::post(s.ioc, [&s] {
    beast::error_code ec;
    s.acceptor->close(ec);
  });
  // In-flight requests finish and their responses are written before the loop stops.
  const auto deadline = Clock::now() + std::chrono::duration<double>(grace_s);
  while (s.in_flight.load() > 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  s.work.reset();
  s.ioc.stop();
  for (auto& t : s.io_threads) t.join();
  s.workers.reset();
}

}  // namespace adrec::serve
