#include "ipc/listener.h"

#include <glob.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "ipc/connection.h"
#include "ipc/internal/auth.h"
#include "process/fd.h"
#include "process/leak_check.h"
#include "process/spawn.h"

namespace mp {
namespace {

using ipc_internal::CreateResponse;
using ipc_internal::GetDigestNameAndPayload;
using ipc_internal::VerifyChallenge;

std::string UniquePath(const char* tag) {
  static int counter = 0;
  return absl::StrCat("/tmp/mp_ipc_", tag, "_", getpid(), "_", counter++,
                      ".sock");
}

// ---- the handshake's building blocks ------------------------------------------

TEST(AuthTest, DigestNameAndPayload) {
  auto legacy = GetDigestNameAndPayload(std::string(20, 'x'));
  ASSERT_TRUE(legacy.ok());
  EXPECT_EQ(legacy->digest, "");
  EXPECT_EQ(GetDigestNameAndPayload(std::string(16, 'x'))->digest, "");
  auto modern = GetDigestNameAndPayload("{sha256}payload");
  ASSERT_TRUE(modern.ok());
  EXPECT_EQ(modern->digest, "sha256");
  EXPECT_EQ(modern->payload, "payload");
  EXPECT_EQ(GetDigestNameAndPayload("{sha3_384}p")->digest, "sha3_384");
  for (const char* bad : {"{sha1}payload....", "no prefix at all here",
                          "{sha256 payload without close", "{}x", ""}) {
    EXPECT_EQ(GetDigestNameAndPayload(bad).status().code(),
              absl::StatusCode::kUnauthenticated)
        << bad;
  }
}

TEST(AuthTest, ResponsesMatchCPython) {
  // Values from Python's hmac module.
  std::string legacy = std::string(20, 'A');
  EXPECT_EQ(absl::BytesToHexString(*CreateResponse("key", legacy)),
            "08419336d150549acc0248595d23c9e0");
  std::string modern = "{sha256}" + std::string(40, 'B');
  std::string response = *CreateResponse("key", modern);
  EXPECT_EQ(response.substr(0, 8), "{sha256}");
  EXPECT_EQ(absl::BytesToHexString(response.substr(8)),
            "d5ac59c143a25b5716376e85a9f744bdab08966073461fb1b0c90ac0ba8dbaf1");
  EXPECT_TRUE(VerifyChallenge("key", modern, response).ok());
  // A legacy client answers a modern challenge with raw HMAC-MD5 of all of it.
  std::string md5 = *ipc_internal::Hmac("md5", "key", modern);
  EXPECT_TRUE(VerifyChallenge("key", modern, md5).ok());
  EXPECT_EQ(VerifyChallenge("other", modern, response).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(VerifyChallenge("key", modern, "{sha256}short").code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(VerifyChallenge("key", modern, std::string(16, '\0')).code(),
            absl::StatusCode::kUnauthenticated);
}

// ---- mp <-> mp ----------------------------------------------------------------

void Exchange(Connection& server, Connection& client) {
  ASSERT_TRUE(client.Send(std::string("ping")).ok());
  EXPECT_EQ(*server.Recv<std::string>(), "ping");
  ASSERT_TRUE(server.SendBytes("pong").ok());
  EXPECT_EQ(*client.RecvBytes(), "pong");
}

void RoundTrip(const Address& address, std::optional<std::string> key) {
  ListenerOptions lo;
  lo.authkey = key;
  lo.handshake_timeout = absl::Seconds(20);
  absl::StatusOr<Listener> listener = Listener::Create(address, lo);
  ASSERT_TRUE(listener.ok()) << listener.status();
  absl::StatusOr<Connection> client;
  std::thread t([&] {
    ClientOptions co;
    co.authkey = key;
    co.handshake_timeout = absl::Seconds(20);
    client = Client(listener->address(), co);
  });
  absl::StatusOr<Connection> server = listener->Accept();
  t.join();
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE(client.ok()) << client.status();
  Exchange(*server, *client);
}

TEST(ListenerTest, UnixPathWithAndWithoutAuthkey) {
  testing::LeakCheck leaks;
  std::string path = UniquePath("path");
  RoundTrip(Address::Unix(path), std::nullopt);
  EXPECT_NE(access(path.c_str(), F_OK), 0) << "socket file left behind";
  RoundTrip(Address::Unix(path), std::string("secret"));
  RoundTrip(Address::Unix(path), std::string(""));  // empty key still checks
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(ListenerTest, AbstractUnixName) {
  testing::LeakCheck leaks;
  RoundTrip(Address::Unix(std::string("\0mp_ipc_abstract_", 17) +
                          std::to_string(getpid())),
            std::string("k"));
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(ListenerTest, TcpIpv4AndIpv6) {
  testing::LeakCheck leaks;
  RoundTrip(Address::Tcp("127.0.0.1", 0), std::string("k"));
  absl::StatusOr<Listener> v6 = Listener::Create(Address::Tcp("::1", 0));
  if (v6.ok()) {
    v6->Close().IgnoreError();
    RoundTrip(Address::Tcp("::1", 0), std::string("k"));
  } else {
    std::cerr << "IPv6 loopback unavailable, skipping: " << v6.status() << "\n";
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(ListenerTest, AddressAndLastAccepted) {
  absl::StatusOr<Listener> l = Listener::Create(Address::Tcp("127.0.0.1", 0));
  ASSERT_TRUE(l.ok());
  EXPECT_NE(l->address().port, 0);
  EXPECT_FALSE(l->last_accepted().has_value());
  absl::StatusOr<Connection> c = Client(l->address());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(l->Accept().ok());
  ASSERT_TRUE(l->last_accepted().has_value());
  EXPECT_EQ(l->last_accepted()->host, "127.0.0.1");
  EXPECT_EQ(Address::Tcp("::1", 5).ToString(), "[::1]:5");
  EXPECT_EQ(Address::Unix(std::string("\0abc", 4)).ToString(), "@abc");
}

TEST(ListenerTest, WrongAuthkeyFailsOnBothSides) {
  testing::LeakCheck leaks;
  {
    ListenerOptions lo;
    lo.authkey = "right";
    absl::StatusOr<Listener> l = Listener::Create(Address::Unix(UniquePath("wk")), lo);
    ASSERT_TRUE(l.ok());
    absl::StatusOr<Connection> client;
    std::thread t([&] {
      ClientOptions co;
      co.authkey = "wrong";
      client = Client(l->address(), co);
    });
    absl::StatusOr<Connection> server = l->Accept();
    t.join();
    EXPECT_EQ(server.status().code(), absl::StatusCode::kUnauthenticated)
        << server.status();
    EXPECT_EQ(client.status().code(), absl::StatusCode::kUnauthenticated)
        << client.status();
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(ListenerTest, SilentClientTimesOutTheHandshake) {
  testing::LeakCheck leaks;
  {
    ListenerOptions lo;
    lo.authkey = "k";
    lo.handshake_timeout = absl::Milliseconds(200);
    absl::StatusOr<Listener> l = Listener::Create(Address::Unix(UniquePath("to")), lo);
    ASSERT_TRUE(l.ok());
    absl::StatusOr<Connection> silent = Client(l->address());  // no authkey
    ASSERT_TRUE(silent.ok());
    absl::Time start = absl::Now();
    absl::StatusOr<Connection> server = l->Accept();
    EXPECT_EQ(server.status().code(), absl::StatusCode::kDeadlineExceeded)
        << server.status();
    EXPECT_LT(absl::Now() - start, absl::Seconds(10));
    // The listener still works afterwards.
    RoundTrip(Address::Unix(UniquePath("to2")), std::string("k"));
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(ListenerTest, ClientHandshakeTimesOutOnASilentServer) {
  testing::LeakCheck leaks;
  {
    absl::StatusOr<Listener> l = Listener::Create(Address::Unix(UniquePath("ss")));
    ASSERT_TRUE(l.ok());
    ClientOptions co;
    co.authkey = "k";
    co.handshake_timeout = absl::Milliseconds(200);
    absl::StatusOr<Connection> c = Client(l->address(), co);
    EXPECT_EQ(c.status().code(), absl::StatusCode::kDeadlineExceeded) << c.status();
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(ListenerTest, OversizedOrBogusHandshakeMessages) {
  testing::LeakCheck leaks;
  {
    // An oversized response to the challenge.
    ListenerOptions lo;
    lo.authkey = "k";
    lo.handshake_timeout = absl::Seconds(20);
    absl::StatusOr<Listener> l = Listener::Create(Address::Unix(UniquePath("ov")), lo);
    ASSERT_TRUE(l.ok());
    absl::StatusOr<Connection> raw = Client(l->address());
    ASSERT_TRUE(raw.ok());
    ASSERT_TRUE(raw->SendBytes(std::string(1000, 'x')).ok());
    absl::StatusOr<Connection> server = l->Accept();
    EXPECT_EQ(server.status().code(), absl::StatusCode::kUnauthenticated)
        << server.status();
  }
  {
    // A server that sends something other than a challenge, then one that
    // sends a header claiming 1 TB, then one that hangs up.
    absl::StatusOr<Listener> l = Listener::Create(Address::Unix(UniquePath("bg")));
    ASSERT_TRUE(l.ok());
    for (int round = 0; round < 3; ++round) {
      absl::StatusOr<Connection> client;
      std::thread t([&] {
        ClientOptions co;
        co.authkey = "k";
        co.handshake_timeout = absl::Seconds(20);
        client = Client(l->address(), co);
      });
      absl::StatusOr<Connection> server = l->Accept();
      ASSERT_TRUE(server.ok());
      if (round == 0) {
        ASSERT_TRUE(server->SendBytes("#HELLO# not a challenge").ok());
      }
      if (round == 1) {
        ASSERT_TRUE(WriteAll(server->fileno(),
                             std::string("\xff\xff\xff\xff\0\0\1\0\0\0\0\0", 12))
                        .ok());
      }
      if (round == 2) {
        ASSERT_TRUE(server->Close().ok());
      }
      t.join();
      absl::StatusCode want = round == 2 ? absl::StatusCode::kOutOfRange
                                         : absl::StatusCode::kUnauthenticated;
      EXPECT_EQ(client.status().code(), want) << round << ": " << client.status();
    }
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(ListenerTest, BadAddresses) {
  EXPECT_EQ(Listener::Create(Address::Unix(std::string(200, 'a'))).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Client(Address::Unix(std::string(200, 'a'))).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Client(Address::Unix("/nonexistent/mp/socket")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Client(Address::Tcp("no-such-host.invalid", 1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string path = UniquePath("dup");
  absl::StatusOr<Listener> first = Listener::Create(Address::Unix(path));
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(Listener::Create(Address::Unix(path)).ok());  // EADDRINUSE
}

// ---- against a stock Python peer ------------------------------------------------

struct Python {
  std::string path;
  std::string name;
};

std::vector<Python> Pythons() {
  std::vector<Python> result = {{"/usr/bin/python3", "system python3"}};
  std::vector<std::string> roots;
  if (const char* r = std::getenv("PYENV_ROOT")) roots.push_back(r);
  roots.push_back("/root/.pyenv");
  for (const char* version : {"3.12", "3.13"}) {
    bool found = false;
    for (const std::string& root : roots) {
      glob_t g;
      std::string pattern = absl::StrCat(root, "/versions/", version, ".*/bin/python3");
      if (glob(pattern.c_str(), 0, nullptr, &g) == 0 && g.gl_pathc > 0) {
        result.push_back({g.gl_pathv[g.gl_pathc - 1], absl::StrCat("python", version)});
        found = true;
      }
      globfree(&g);
      if (found) break;
    }
    if (!found) {
      std::cerr << "python" << version
                << " not found under pyenv; skipping its interop cases\n";
    }
  }
  return result;
}

// A running py_peer.py with its stdout on a pipe.
class PyPeer {
 public:
  static absl::StatusOr<PyPeer> Start(const Python& py, const char* mode,
                                      const char* family,
                                      const std::string& address,
                                      const std::string& authkey) {
    absl::StatusOr<FdPair> out = MakePipe();
    if (!out.ok()) return out.status();
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) == nullptr) return absl::InternalError("getcwd");
    SpawnOptions so;
    so.argv = {py.path, absl::StrCat(cwd, "/ipc/testdata/py_peer.py"), mode,
               family, address, authkey};
    so.fds = {{1, out->write.get()}};
    absl::StatusOr<pid_t> pid = Spawn(so);
    if (!pid.ok()) return pid.status();
    PyPeer p;
    p.pid_ = *pid;
    p.out_ = std::move(out->read);
    return p;
  }
  PyPeer(PyPeer&& o) noexcept
      : pid_(std::exchange(o.pid_, -1)), out_(std::move(o.out_)) {}
  ~PyPeer() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      WaitPid(pid_).IgnoreError();
    }
  }
  // One line of the peer's stdout (without the newline).
  std::string ReadLine() {
    std::string line;
    char c;
    while (true) {
      absl::StatusOr<size_t> n = ReadSome(out_.get(), &c, 1);
      if (!n.ok() || *n == 0 || c == '\n') return line;
      line.push_back(c);
    }
  }
  // Waits for exit; returns the exit code and the rest of stdout.
  int Finish(std::string* output) {
    std::string line;
    while (!(line = ReadLine()).empty()) absl::StrAppend(output, line, "\n");
    absl::StatusOr<int> code = WaitPid(std::exchange(pid_, -1));
    return code.ok() ? *code : -1000;
  }

 private:
  PyPeer() = default;
  pid_t pid_ = -1;
  UniqueFd out_;
};

// Accept(), but fails instead of hanging when the Python peer never connects.
absl::StatusOr<Connection> AcceptWithin(Listener& l, absl::Duration timeout) {
  absl::StatusOr<bool> ready = WaitReadable(l.fileno(), timeout);
  if (!ready.ok()) return ready.status();
  if (!*ready) return absl::DeadlineExceededError("no connection from the peer");
  return l.Accept();
}

// The mp side of py_peer.py's exchange.
void MpSideOfExchange(Connection& c) {
  absl::StatusOr<std::string> hello = c.RecvBytes();
  ASSERT_TRUE(hello.ok()) << hello.status();
  EXPECT_EQ(*hello, "hello from python");
  std::string big(100000, 'q');
  big += "end";
  ASSERT_TRUE(c.SendBytes(big).ok());
  absl::StatusOr<std::string> reversed = c.RecvBytes();
  ASSERT_TRUE(reversed.ok()) << reversed.status();
  EXPECT_EQ(*reversed, std::string(big.rbegin(), big.rend()));
  ASSERT_TRUE(c.SendBytes("bye").ok());
  EXPECT_EQ(c.RecvBytes().status().code(), absl::StatusCode::kOutOfRange);
}

TEST(PythonInteropTest, PythonClientToMpListener) {
  testing::LeakCheck leaks;
  for (const Python& py : Pythons()) {
    for (const char* family : {"unix", "tcp"}) {
      for (const char* key : {"-", "secret"}) {
        SCOPED_TRACE(absl::StrCat(py.name, " ", family, " key=", key));
        Address address = std::string(family) == "unix"
                              ? Address::Unix(UniquePath("py"))
                              : Address::Tcp("127.0.0.1", 0);
        ListenerOptions lo;
        if (std::string(key) != "-") lo.authkey = key;
        lo.handshake_timeout = absl::Seconds(30);
        absl::StatusOr<Listener> l = Listener::Create(address, lo);
        ASSERT_TRUE(l.ok()) << l.status();
        absl::StatusOr<PyPeer> peer =
            PyPeer::Start(py, "client", family, l->address().ToString(), key);
        ASSERT_TRUE(peer.ok()) << peer.status();
        absl::StatusOr<Connection> c = AcceptWithin(*l, absl::Seconds(30));
        ASSERT_TRUE(c.ok()) << c.status();
        MpSideOfExchange(*c);
        std::string output;
        EXPECT_EQ(peer->Finish(&output), 0) << output;
      }
    }
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(PythonInteropTest, MpClientToPythonListener) {
  testing::LeakCheck leaks;
  for (const Python& py : Pythons()) {
    for (const char* family : {"unix", "tcp"}) {
      for (const char* key : {"-", "secret"}) {
        SCOPED_TRACE(absl::StrCat(py.name, " ", family, " key=", key));
        std::string address = std::string(family) == "unix"
                                  ? UniquePath("pyl")
                                  : std::string("127.0.0.1:0");
        absl::StatusOr<PyPeer> peer =
            PyPeer::Start(py, "listener", family, address, key);
        ASSERT_TRUE(peer.ok()) << peer.status();
        std::string bound = peer->ReadLine();
        ASSERT_FALSE(bound.empty());
        Address a = Address::Unix(bound);
        if (std::string(family) == "tcp") {
          size_t colon = bound.rfind(':');
          a = Address::Tcp(bound.substr(0, colon),
                           static_cast<uint16_t>(std::stoi(bound.substr(colon + 1))));
        }
        ClientOptions co;
        if (std::string(key) != "-") co.authkey = key;
        co.handshake_timeout = absl::Seconds(30);
        absl::StatusOr<Connection> c = Client(a, co);
        ASSERT_TRUE(c.ok()) << c.status();
        MpSideOfExchange(*c);
        std::string output;
        EXPECT_EQ(peer->Finish(&output), 0) << output;
      }
    }
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(PythonInteropTest, AbstractNameWithPython) {
  Python py = Pythons()[0];
  std::string name = absl::StrCat("@mp_ipc_py_abstract_", getpid());
  ListenerOptions lo;
  lo.authkey = "k";
  absl::StatusOr<Listener> l =
      Listener::Create(Address::Unix(std::string(1, '\0') + name.substr(1)), lo);
  ASSERT_TRUE(l.ok()) << l.status();
  absl::StatusOr<PyPeer> peer = PyPeer::Start(py, "client", "unix", name, "k");
  ASSERT_TRUE(peer.ok());
  absl::StatusOr<Connection> c = AcceptWithin(*l, absl::Seconds(30));
  ASSERT_TRUE(c.ok()) << c.status();
  MpSideOfExchange(*c);
  std::string output;
  EXPECT_EQ(peer->Finish(&output), 0) << output;
}

TEST(PythonInteropTest, WrongAuthkeyFailsOnBothSides) {
  testing::LeakCheck leaks;
  for (const Python& py : Pythons()) {
    SCOPED_TRACE(py.name);
    {
      ListenerOptions lo;
      lo.authkey = "mp key";
      lo.handshake_timeout = absl::Seconds(30);
      absl::StatusOr<Listener> l =
          Listener::Create(Address::Unix(UniquePath("pyw")), lo);
      ASSERT_TRUE(l.ok());
      absl::StatusOr<PyPeer> peer = PyPeer::Start(
          py, "client", "unix", l->address().ToString(), "python key");
      ASSERT_TRUE(peer.ok());
      absl::StatusOr<Connection> c = AcceptWithin(*l, absl::Seconds(30));
      EXPECT_EQ(c.status().code(), absl::StatusCode::kUnauthenticated)
          << c.status();
      std::string output;
      EXPECT_EQ(peer->Finish(&output), 3) << output;
      EXPECT_NE(output.find("AuthenticationError"), std::string::npos) << output;
    }
    {
      absl::StatusOr<PyPeer> peer =
          PyPeer::Start(py, "listener", "unix", UniquePath("pywl"), "python key");
      ASSERT_TRUE(peer.ok());
      std::string bound = peer->ReadLine();
      ClientOptions co;
      co.authkey = "mp key";
      co.handshake_timeout = absl::Seconds(30);
      absl::StatusOr<Connection> c = Client(Address::Unix(bound), co);
      EXPECT_EQ(c.status().code(), absl::StatusCode::kUnauthenticated)
          << c.status();
      std::string output;
      EXPECT_EQ(peer->Finish(&output), 3) << output;
      EXPECT_NE(output.find("AuthenticationError"), std::string::npos) << output;
    }
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

}  // namespace
}  // namespace mp
