#include "process/internal/forkserver.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "process/process.h"
#include "process/spawn.h"
#include "process/status_macros.h"

extern char** environ;

namespace mp {
namespace process_internal {
namespace {

// ---- client (the parent's side) --------------------------------------------

struct Client {
  pid_t owner = 0;
  std::mutex mu;
  UniqueFd control;
  pid_t server = 0;
};

// Leaked; replaced in a forked child (the parent's server is not ours, and
// its lock may be held by a thread that is not here).
std::atomic<Client*> g_client{nullptr};

Client* GetClient() {
  return ThisProcessOwn(g_client, [](Client* c) {
    c->control.reset();  // the server must see EOF when the parent goes
  });
}

std::vector<std::string> ChildEnv(absl::string_view mode, int fd) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, "MP_PROCESS_BOOT=", 16) == 0) continue;
    env.emplace_back(*e);
  }
  env.push_back(BootEnvEntry(mode, fd));
  return env;
}

absl::Status LaunchLocked(Client* c) {
  MP_ASSIGN_OR_RETURN(FdPair sp, MakeSocketPair(SOCK_STREAM));
  SpawnOptions opts;
  opts.argv = {"/proc/self/exe"};
  opts.env = ChildEnv("forkserver", 3);
  opts.fds = {{3, sp.write.get()}};
  absl::StatusOr<pid_t> pid = Spawn(opts);
  if (!pid.ok()) {
    return absl::Status(pid.status().code(),
                        absl::StrCat("starting the forkserver: ",
                                     pid.status().message()));
  }
  c->control = std::move(sp.read);
  c->server = *pid;
  return absl::OkStatus();
}

void StopLocked(Client* c) {
  if (c->server == 0) return;
  c->control.reset();
  (void)WaitPid(c->server);
  c->server = 0;
}

// The fixed part of a request.
struct Header {
  uint32_t length;      // payload bytes that follow
  uint32_t stdio_mask;  // bit i: the parent's fd i follows the status fd
};

// Sends one request: the header with the status pipe and the parent's
// stdio fds (so the child writes where the parent writes now), then the
// payload. False with errno on failure.
bool SendRequest(int control, int status_fd, const std::string& payload) {
  Header h{static_cast<uint32_t>(payload.size()), 0};
  int fds[4] = {status_fd, -1, -1, -1};
  int nfds = 1;
  for (int i = 0; i < 3; ++i) {
    if (::fcntl(i, F_GETFD) >= 0) {
      h.stdio_mask |= 1u << i;
      fds[nfds++] = i;
    }
  }
  iovec iov{&h, sizeof(h)};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(fds))];
  std::memset(cbuf, 0, sizeof(cbuf));
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
  std::memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
  ssize_t n;
  do {
    n = ::sendmsg(control, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return false;
  // Continue a short send of the header, then the payload.
  std::string rest(reinterpret_cast<const char*>(&h) + n, sizeof(h) - n);
  rest += payload;
  size_t off = 0;
  while (off < rest.size()) {
    ssize_t w = ::send(control, rest.data() + off, rest.size() - off,
                       MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return false;
    off += static_cast<size_t>(w);
  }
  return true;
}

// ---- server ------------------------------------------------------------------

void WriteInt(int fd, int32_t v) {
  ssize_t n;
  do {
    n = ::write(fd, &v, sizeof(v));
  } while (n < 0 && errno == EINTR);
}

// Reads a header and its fds (`fds[0]` the status pipe, then the stdio fds
// of `stdio_mask`; -1 where missing). 0 on EOF, -1 on error, 1 ok.
int ReceiveHeader(int control, Header* h, int fds[4]) {
  for (int i = 0; i < 4; ++i) fds[i] = -1;
  iovec iov{h, sizeof(*h)};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * 8)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof(cbuf);
  ssize_t n;
  do {
    n = ::recvmsg(control, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return n == 0 ? 0 : -1;
  int got_count = 0;
  for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr;
       cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int got;
      std::memcpy(&got, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
      if (got_count < 4) {
        fds[got_count++] = got;
      } else {
        ::close(got);
      }
    }
  }
  if (n < static_cast<ssize_t>(sizeof(*h))) {
    absl::Status s = ReadExact(control, reinterpret_cast<char*>(h) + n,
                               sizeof(*h) - n);
    if (!s.ok()) return absl::IsOutOfRange(s) ? 0 : -1;
  }
  return 1;
}

void CloseAll(int fds[4]) {
  for (int i = 0; i < 4; ++i) {
    if (fds[i] >= 0) ::close(fds[i]);
  }
}

[[noreturn]] void RunWorker(pid_t server, int control, int sfd,
                            const std::map<pid_t, int>& children,
                            const Header& h, int fds[4],
                            const sigset_t& old_mask,
                            const std::string& bytes) noexcept {
  ::close(control);
  ::close(sfd);
  ::close(fds[0]);  // the status pipe is the server's
  for (const auto& kv : children) ::close(kv.second);
  // The parent's stdio at the time of Start().
  int next = 1;
  for (int i = 0; i < 3; ++i) {
    if ((h.stdio_mask & (1u << i)) == 0 || next >= 4 || fds[next] < 0) {
      continue;
    }
    if (fds[next] == i) {
      ::fcntl(i, F_SETFD, 0);  // received close-on-exec
    } else {
      ::dup2(fds[next], i);
      ::close(fds[next]);
    }
    ++next;
  }
  ::signal(SIGPIPE, SIG_DFL);
  ::signal(SIGINT, SIG_DFL);
  ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  absl::StatusOr<ChildPayload> payload = Decode<ChildPayload>(bytes);
  if (!payload.ok()) {
    std::fprintf(stderr, "mp: forkserver child: bad payload: %s\n",
                 payload.status().ToString().c_str());
    ::_exit(1);
  }
  if (payload->daemon) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != server) ::raise(SIGKILL);
  }
  BecomeChild(new Self{payload->name, payload->identity, payload->daemon,
                       true, payload->parent_pid, payload->parent_name});
  RunPayloadAndExit(*payload);
}

}  // namespace

absl::StatusOr<ForkServerChild> ForkServerStart(const ChildPayload& payload) {
  std::string bytes = Encode(payload);
  MP_ASSIGN_OR_RETURN(FdPair status, MakePipe());
  Client* c = GetClient();
  {
    std::lock_guard<std::mutex> lock(c->mu);
    bool sent = false;
    for (int attempt = 0; attempt < 2 && !sent; ++attempt) {
      if (c->server == 0) MP_RETURN_IF_ERROR(LaunchLocked(c));
      sent = SendRequest(c->control.get(), status.write.get(), bytes);
      if (!sent) StopLocked(c);  // it died: reap it, start a new one
    }
    if (!sent) {
      return absl::UnavailableError(
          absl::StrCat("forkserver: sending the request: ",
                       std::strerror(errno)));
    }
  }
  status.write.reset();
  int32_t pid = 0;
  absl::Status s = ReadExact(status.read.get(), &pid, sizeof(pid));
  if (!s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("forkserver: no reply: ", s.message()));
  }
  if (pid < 0) return absl::ErrnoToStatus(-pid, "forkserver: fork");
  if (pid == 0) return absl::InternalError("forkserver: replied pid 0");
  return ForkServerChild{pid, std::move(status.read)};
}

MP_PROCESS_CHILD_TEXT void ForkServerAfterFork() {
  // No allocation here (it would cost page faults on every fork); the next
  // GetClient() replaces the parent's client.
  Client* c = g_client.load(std::memory_order_acquire);
  if (c != nullptr && c->owner != CachedPid()) c->control.reset();
}

void RunForkServer(int control) noexcept {
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGINT, SIG_IGN);
  sigset_t chld, old_mask;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &chld, &old_mask);
  int sfd = ::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) {
    std::fprintf(stderr, "mp: forkserver: signalfd: %s\n",
                 std::strerror(errno));
    ::_exit(1);
  }
  (void)SetCloseOnExec(control);
  const pid_t self = ::getpid();
  std::map<pid_t, int> children;  // pid -> write end of its status pipe
  std::string bytes;
  for (;;) {
    pollfd pfds[2] = {{control, POLLIN, 0}, {sfd, POLLIN, 0}};
    int n = ::poll(pfds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::_exit(1);
    }
    if (pfds[1].revents != 0) {
      signalfd_siginfo info;
      while (::read(sfd, &info, sizeof(info)) > 0) {
      }
      int wstatus;
      pid_t p;
      while ((p = ::waitpid(-1, &wstatus, WNOHANG)) > 0) {
        auto it = children.find(p);
        if (it == children.end()) continue;
        WriteInt(it->second, DecodeWaitStatus(wstatus));
        ::close(it->second);
        children.erase(it);
      }
    }
    if (pfds[0].revents == 0) continue;
    Header h{};
    int fds[4];
    int r = ReceiveHeader(control, &h, fds);
    if (r <= 0) ::_exit(r == 0 ? 0 : 1);  // the parent went away
    bytes.resize(h.length);
    if (!ReadExact(control, bytes.data(), h.length).ok()) ::_exit(1);
    if (fds[0] < 0) {  // malformed request: nobody to answer
      CloseAll(fds);
      continue;
    }
    pid_t pid = ::fork();
    if (pid == 0) RunWorker(self, control, sfd, children, h, fds, old_mask, bytes);
    const int status_fd = fds[0];
    fds[0] = -1;
    CloseAll(fds);  // the stdio fds were for the child
    if (pid < 0) {
      WriteInt(status_fd, -errno);
      ::close(status_fd);
      continue;
    }
    WriteInt(status_fd, pid);
    children[pid] = status_fd;
  }
}

}  // namespace process_internal

absl::Status StartForkServer() {
  process_internal::Client* c = process_internal::GetClient();
  std::lock_guard<std::mutex> lock(c->mu);
  if (c->server != 0) return absl::OkStatus();
  return process_internal::LaunchLocked(c);
}

absl::Status StopForkServer() {
  process_internal::Client* c = process_internal::GetClient();
  std::lock_guard<std::mutex> lock(c->mu);
  process_internal::StopLocked(c);
  return absl::OkStatus();
}

pid_t ForkServerPid() {
  process_internal::Client* c = process_internal::GetClient();
  std::lock_guard<std::mutex> lock(c->mu);
  return c->server;
}

}  // namespace mp
