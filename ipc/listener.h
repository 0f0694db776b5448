// -----------------------------------------------------------------------------
// File: ipc/listener.h
// -----------------------------------------------------------------------------
//
// `mp::Listener` accepts connections and `mp::Client()` makes them, over
// Unix-domain sockets or TCP (IPv4/IPv6), with CPython's optional HMAC
// challenge/response authentication (Python:
// `multiprocessing.connection.Listener` / `Client`). Wire-compatible with
// Python: a Python `Client` can talk `send_bytes`/`recv_bytes` to an mp
// `Listener`, and the other way round, with or without an authkey.
//
//   mp::ListenerOptions options;
//   options.authkey = "secret";
//   absl::StatusOr<mp::Listener> listener =
//       mp::Listener::Create(mp::Address::Tcp("127.0.0.1", 0), options);
//   // elsewhere: mp::ClientOptions o; o.authkey = "secret";
//   //            mp::Client(listener->address(), o);
//   absl::StatusOr<mp::Connection> conn = listener->Accept();
//
// Authentication: the listener sends a `{sha256}` challenge as Python 3.12+
// does and accepts the legacy HMAC-MD5 answer of Python <= 3.11 peers; a
// client answers whichever form it is sent (see ipc/internal/auth.h). A
// wrong key fails on both sides with kUnauthenticated before any message.
//
// Accepted and client connections have read-ahead on (see
// `Connection::set_read_ahead()`).
//
// Unlike Python, the handshake can be bounded (`handshake_timeout`), so a
// peer that never answers gives kDeadlineExceeded instead of a hang.

#ifndef MP_IPC_LISTENER_H_
#define MP_IPC_LISTENER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ipc/connection.h"
#include "process/fd.h"

namespace mp {

// Where a listener listens. Python: a path string (AF_UNIX, a leading NUL
// byte for the Linux abstract namespace) or a `(host, port)` tuple.
struct Address {
  enum class Family { kUnix, kTcp };

  // A Unix-domain socket at `path`; a path starting with '\0' is an
  // abstract name (no file). Limited to 107 bytes.
  static Address Unix(std::string path);
  // TCP: `host` is an IPv4/IPv6 literal or a name; port 0 picks a free port
  // (the listener's `address()` has the real one).
  static Address Tcp(std::string host, uint16_t port);

  // "/path", "@abstract", "127.0.0.1:80", "[::1]:80".
  std::string ToString() const;

  Family family = Family::kUnix;
  std::string path;  // kUnix
  std::string host;  // kTcp
  uint16_t port = 0;  // kTcp
};

struct ListenerOptions {
  int backlog = 1;  // Python's default
  // Python's `authkey`: nullopt = no authentication.
  std::optional<std::string> authkey;
  // Bounds each Accept()'s handshake; infinite = Python's behavior.
  absl::Duration handshake_timeout = absl::InfiniteDuration();
};

class Listener {
 public:
  // Listener::Create()
  //
  // Binds and listens. For TCP, sets SO_REUSEADDR (as Python does). Errors:
  // kInvalidArgument for a bad address (path too long, unresolvable host);
  // the errno of bind/listen via absl::ErrnoToStatus (EADDRINUSE, EACCES).
  static absl::StatusOr<Listener> Create(const Address& address,
                                         ListenerOptions options = {});

  Listener(Listener&& other) noexcept;
  Listener& operator=(Listener&& other) noexcept;
  ~Listener();

  // Listener::Accept()
  //
  // Waits for a connection and, with an authkey, runs the mutual handshake
  // (deliver then answer). On failure the new connection is closed and the
  // handshake error returned (kUnauthenticated, kDeadlineExceeded,
  // kOutOfRange); the listener stays usable.
  absl::StatusOr<Connection> Accept();

  // Listener::Close()
  //
  // Closes the socket and removes a Unix socket file. Idempotent.
  absl::Status Close();

  // The bound address (a TCP port 0 is replaced by the real port).
  const Address& address() const { return address_; }
  // The peer address of the last accepted connection. Python:
  // `last_accepted`.
  const std::optional<Address>& last_accepted() const { return last_accepted_; }
  int fileno() const { return fd_.get(); }

 private:
  Listener() = default;

  UniqueFd fd_;
  Address address_;
  ListenerOptions options_;
  std::optional<Address> last_accepted_;
  bool unlink_on_close_ = false;
};

struct ClientOptions {
  std::optional<std::string> authkey;
  absl::Duration handshake_timeout = absl::InfiniteDuration();
};

// Client()
//
// Connects to a listener and, with an authkey, runs the mutual handshake
// (answer then deliver). Errors: the errno of connect (e.g. ECONNREFUSED,
// ENOENT), kInvalidArgument for a bad address, the handshake's errors.
absl::StatusOr<Connection> Client(const Address& address,
                                  ClientOptions options = {});

}  // namespace mp

#endif  // MP_IPC_LISTENER_H_
