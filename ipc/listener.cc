#include "ipc/listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ipc/internal/auth.h"
#include "process/status_macros.h"

namespace mp {
namespace {

absl::Time DeadlineAfter(absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration()) return absl::InfiniteFuture();
  return absl::Now() + timeout;
}

absl::Status UnixSockaddr(const std::string& path, sockaddr_un* sun,
                          socklen_t* len) {
  std::memset(sun, 0, sizeof *sun);
  sun->sun_family = AF_UNIX;
  if (path.empty()) {
    return absl::InvalidArgumentError("empty Unix socket address");
  }
  if (path.size() >= sizeof sun->sun_path) {
    return absl::InvalidArgumentError(
        absl::StrCat("Unix socket path is ", path.size(),
                     " bytes; the limit is ", sizeof sun->sun_path - 1));
  }
  std::memcpy(sun->sun_path, path.data(), path.size());
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                (path[0] == '\0' ? 0 : 1));
  return absl::OkStatus();
}

struct AddrInfoDeleter {
  void operator()(addrinfo* ai) const { freeaddrinfo(ai); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

absl::StatusOr<AddrInfoPtr> Resolve(const Address& a, bool passive) {
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* result = nullptr;
  std::string port = std::to_string(a.port);
  int rc = getaddrinfo(a.host.empty() ? nullptr : a.host.c_str(), port.c_str(),
                       &hints, &result);
  if (rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot resolve '", a.host, "': ", gai_strerror(rc)));
  }
  return AddrInfoPtr(result);
}

Address FromSockaddr(const sockaddr_storage& ss, socklen_t len) {
  if (ss.ss_family == AF_UNIX) {
    const auto* sun = reinterpret_cast<const sockaddr_un*>(&ss);
    size_t n = len > offsetof(sockaddr_un, sun_path)
                   ? len - offsetof(sockaddr_un, sun_path)
                   : 0;
    std::string path(sun->sun_path, n);
    if (!path.empty() && path[0] != '\0') path = path.c_str();  // drop NULs
    return Address::Unix(std::move(path));
  }
  char host[INET6_ADDRSTRLEN] = "";
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
    port = ntohs(sin->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
    port = ntohs(sin6->sin6_port);
  }
  return Address::Tcp(host, port);
}

absl::StatusOr<UniqueFd> NewSocket(int family) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket");
  return UniqueFd(fd);
}

absl::Status ConnectRetryingEintr(int fd, const sockaddr* sa, socklen_t len) {
  if (::connect(fd, sa, len) == 0) return absl::OkStatus();
  if (errno != EINTR) return absl::ErrnoToStatus(errno, "connect");
  // An interrupted connect continues asynchronously: wait for it.
  absl::StatusOr<bool> ready = WaitWritable(fd, absl::InfiniteDuration());
  if (!ready.ok()) return ready.status();
  int err = 0;
  socklen_t err_len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) != 0) {
    return absl::ErrnoToStatus(errno, "getsockopt(SO_ERROR)");
  }
  if (err != 0) return absl::ErrnoToStatus(err, "connect");
  return absl::OkStatus();
}

}  // namespace

Address Address::Unix(std::string path) {
  Address a;
  a.family = Family::kUnix;
  a.path = std::move(path);
  return a;
}

Address Address::Tcp(std::string host, uint16_t port) {
  Address a;
  a.family = Family::kTcp;
  a.host = std::move(host);
  a.port = port;
  return a;
}

std::string Address::ToString() const {
  if (family == Family::kUnix) {
    if (!path.empty() && path[0] == '\0') return absl::StrCat("@", path.substr(1));
    return path;
  }
  if (host.find(':') != std::string::npos) {
    return absl::StrCat("[", host, "]:", port);
  }
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<Listener> Listener::Create(const Address& address,
                                          ListenerOptions options) {
  Listener l;
  l.options_ = std::move(options);
  l.address_ = address;
  if (address.family == Address::Family::kUnix) {
    sockaddr_un sun;
    socklen_t len;
    MP_RETURN_IF_ERROR(UnixSockaddr(address.path, &sun, &len));
    MP_ASSIGN_OR_RETURN(l.fd_, NewSocket(AF_UNIX));
    if (::bind(l.fd_.get(), reinterpret_cast<sockaddr*>(&sun), len) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("bind ", address.ToString()));
    }
    l.unlink_on_close_ = address.path[0] != '\0';
  } else {
    MP_ASSIGN_OR_RETURN(AddrInfoPtr ai, Resolve(address, /*passive=*/true));
    absl::Status last = absl::InvalidArgumentError("no addresses");
    for (addrinfo* p = ai.get(); p != nullptr; p = p->ai_next) {
      absl::StatusOr<UniqueFd> fd = NewSocket(p->ai_family);
      if (!fd.ok()) {
        last = fd.status();
        continue;
      }
      int one = 1;
      setsockopt(fd->get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (::bind(fd->get(), p->ai_addr, p->ai_addrlen) != 0) {
        last = absl::ErrnoToStatus(errno, absl::StrCat("bind ", address.ToString()));
        continue;
      }
      l.fd_ = *std::move(fd);
      break;
    }
    if (!l.fd_.valid()) return last;
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(l.fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      l.address_.port = FromSockaddr(ss, len).port;
    }
  }
  if (::listen(l.fd_.get(), l.options_.backlog) != 0) {
    absl::Status s = absl::ErrnoToStatus(errno, "listen");
    l.Close().IgnoreError();
    return s;
  }
  return l;
}

Listener::Listener(Listener&& other) noexcept
    : fd_(std::move(other.fd_)),
      address_(std::move(other.address_)),
      options_(std::move(other.options_)),
      last_accepted_(std::move(other.last_accepted_)),
      unlink_on_close_(std::exchange(other.unlink_on_close_, false)) {}

Listener& Listener::operator=(Listener&& other) noexcept {
  if (this != &other) {
    Close().IgnoreError();
    fd_ = std::move(other.fd_);
    address_ = std::move(other.address_);
    options_ = std::move(other.options_);
    last_accepted_ = std::move(other.last_accepted_);
    unlink_on_close_ = std::exchange(other.unlink_on_close_, false);
  }
  return *this;
}

Listener::~Listener() { Close().IgnoreError(); }

absl::Status Listener::Close() {
  if (unlink_on_close_) {
    unlink_on_close_ = false;
    ::unlink(address_.path.c_str());
  }
  if (!fd_.valid()) return absl::OkStatus();
  return fd_.Close();
}

absl::StatusOr<Connection> Listener::Accept() {
  if (!fd_.valid()) return absl::FailedPreconditionError("listener is closed");
  sockaddr_storage ss;
  socklen_t len;
  int fd;
  do {
    len = sizeof ss;
    fd = ::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len,
                   SOCK_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return absl::ErrnoToStatus(errno, "accept");
  Connection c{UniqueFd(fd)};
  c.set_read_ahead(true);
  last_accepted_ = FromSockaddr(ss, len);
  if (options_.authkey.has_value()) {
    absl::Time deadline = DeadlineAfter(options_.handshake_timeout);
    MP_RETURN_IF_ERROR(
        ipc_internal::DeliverChallenge(c, *options_.authkey, deadline));
    MP_RETURN_IF_ERROR(
        ipc_internal::AnswerChallenge(c, *options_.authkey, deadline));
  }
  return c;
}

absl::StatusOr<Connection> Client(const Address& address,
                                  ClientOptions options) {
  UniqueFd fd;
  if (address.family == Address::Family::kUnix) {
    sockaddr_un sun;
    socklen_t len;
    MP_RETURN_IF_ERROR(UnixSockaddr(address.path, &sun, &len));
    MP_ASSIGN_OR_RETURN(fd, NewSocket(AF_UNIX));
    absl::Status s = ConnectRetryingEintr(
        fd.get(), reinterpret_cast<sockaddr*>(&sun), len);
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat(s.message(), " (",
                                                 address.ToString(), ")"));
    }
  } else {
    MP_ASSIGN_OR_RETURN(AddrInfoPtr ai, Resolve(address, /*passive=*/false));
    absl::Status last = absl::InvalidArgumentError("no addresses");
    for (addrinfo* p = ai.get(); p != nullptr; p = p->ai_next) {
      absl::StatusOr<UniqueFd> s = NewSocket(p->ai_family);
      if (!s.ok()) {
        last = s.status();
        continue;
      }
      last = ConnectRetryingEintr(s->get(), p->ai_addr, p->ai_addrlen);
      if (last.ok()) {
        fd = *std::move(s);
        break;
      }
    }
    if (!fd.valid()) {
      return absl::Status(last.code(), absl::StrCat(last.message(), " (",
                                                    address.ToString(), ")"));
    }
  }
  Connection c{std::move(fd)};
  c.set_read_ahead(true);
  if (options.authkey.has_value()) {
    absl::Time deadline = DeadlineAfter(options.handshake_timeout);
    MP_RETURN_IF_ERROR(
        ipc_internal::AnswerChallenge(c, *options.authkey, deadline));
    MP_RETURN_IF_ERROR(
        ipc_internal::DeliverChallenge(c, *options.authkey, deadline));
  }
  return c;
}

}  // namespace mp
