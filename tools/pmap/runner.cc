#include "tools/pmap/runner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "process/fd.h"
#include "process/spawn.h"
#include "tools/pmap/joblog.h"

extern char** environ;

namespace mp {
namespace pmap {
namespace {

double MonotonicNow() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double WallNow() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Set when a write to stdout or stderr failed with EPIPE: nobody reads our
// output any more, so the run stops like GNU parallel does on SIGPIPE.
bool g_output_broken = false;  // NOLINT: one Runner per process at a time

// Writes everything, retrying EINTR. Errors are not fatal here: EPIPE sets
// `g_output_broken` and the main loop winds down, killing the jobs.
void WriteOut(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd p = {fd, POLLOUT, 0};
        ::poll(&p, 1, -1);
        continue;
      }
      if (errno == EPIPE && (fd == 1 || fd == 2)) g_output_broken = true;
      return;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
}
void WriteOut(int fd, absl::string_view s) { WriteOut(fd, s.data(), s.size()); }

// Writes `data` prefixing every line with `tag` (`at_line_start` carries
// across calls).
void WriteTagged(int fd, absl::string_view data, const std::string& tag,
                 bool* at_line_start) {
  std::string out;
  out.reserve(data.size() + tag.size() * 2);
  for (char c : data) {
    if (*at_line_start) out += tag;
    out += c;
    *at_line_start = c == '\n';
  }
  WriteOut(fd, out);
}

// True when no process of group `pgid` is left.
bool GroupGone(pid_t pgid) {
  return ::kill(-pgid, 0) != 0 && errno == ESRCH;
}

// A job's captured output: an anonymous temporary file, or bytes in memory
// once it had to wait (-k) and was small.
struct Captured {
  UniqueFd file;
  std::string memory;
  bool in_memory = false;
  int64_t size = 0;
};

struct Job {
  int64_t seq = 0;
  std::vector<Input> inputs;
  std::string command;  // shell form: joblog, --dry-run, -v
  std::string tag;
  int attempt = 1;
  int slot = 0;
  pid_t pid = -1;
  double start_wall = 0, start_mono = 0;
  Captured out, err;
  UniqueFd out_pipe, err_pipe;  // --line-buffer
  std::string out_line, err_line;
  bool out_at_line_start = true, err_at_line_start = true;
  int64_t receive = 0;
  // Termination (timeout, --halt now, signal): next --term-seq step.
  bool timed_out = false;
  bool killed_by_us = false;
  int term_step = -1;
  double next_term = 0;
};

// A finished job waiting for its turn (-k).
struct Finished {
  pid_t pgid = -1;  // the job's group: its files are reused only once empty
  std::string tag;
  Captured out, err;
  bool empty = true;
};

// The process group of a finished job that is still being terminated.
struct DyingGroup {
  pid_t pgid;
  int term_step;
  double next_term;
};

}  // namespace

class Runner::Impl {
 public:
  Impl(const Options& o, CommandTemplate t, std::unique_ptr<InputGenerator> in)
      : o_(o), t_(std::move(t)), inputs_(std::move(in)) {}
  ~Impl() {
    // Give the process back as we found it.
    if (restore_) {
      ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
      ::sigaction(SIGPIPE, &old_pipe_, nullptr);
      ::prctl(PR_SET_CHILD_SUBREAPER, old_subreaper_, 0, 0, 0);
    }
  }

  int Run();

 private:
  // Setup and input.
  absl::Status Setup();
  absl::StatusOr<bool> NextJob(std::unique_ptr<Job>* job);
  absl::StatusOr<std::optional<Input>> NextInput();

  // Jobs.
  bool CanLaunch(double now) const;
  void Launch(std::unique_ptr<Job> job, double now);
  void ReapChildren(double now);
  void Finish(std::unique_ptr<Job> job, int wait_status, double now);
  void StartTermination(Job* job, double now);
  void TerminateAll(double now);
  void StepTerminations(double now);
  void CheckHalt(const Job& job, bool failed, int exitval, int signal);

  // Output.
  absl::StatusOr<UniqueFd> TempFile();
  void Recycle(Captured* c, pid_t pgid);
  void Emit(const std::string& tag, Captured* c, int fd);
  void Deliver(int64_t seq, Finished f);
  void DrainPipe(Job* job, bool is_err, bool final_read);
  void Progress(double now, bool final);

  int ExitStatus() const;
  void Error(absl::string_view msg) {
    WriteOut(2, absl::StrCat("pmap: ", msg, "\n"));
  }

  bool restore_ = false;
  sigset_t old_mask_;
  struct sigaction old_pipe_ = {};
  int old_subreaper_ = 0;

  const Options& o_;
  CommandTemplate t_;
  std::unique_ptr<InputGenerator> inputs_;
  JoblogHistory history_;
  std::string direct_path_;  // exec this instead of sh -c when set
  UniqueFd devnull_, sigfd_, joblog_;
  std::string tmpdir_;
  sigset_t empty_mask_;
  std::vector<UniqueFd> file_pool_;
  std::vector<std::string> base_env_;  // environ without PARALLEL_SEQ/JOBSLOT

  std::deque<std::unique_ptr<Job>> retry_;
  std::deque<Input> prefetched_;  // --bar/--eta: every input read first
  bool prefetch_ = false;
  bool inputs_done_ = false;
  int64_t next_seq_ = 0;
  absl::flat_hash_map<pid_t, std::unique_ptr<Job>> running_;
  std::vector<bool> slots_;
  std::vector<DyingGroup> dying_;
  std::map<int64_t, Finished> held_;  // -k
  int64_t next_print_ = 1;
  int held_fds_ = 0;
  double last_launch_ = -1e18;

  // Counters.
  int64_t total_ = -1;  // jobs, when known (prefetch)
  int64_t finished_ = 0, failed_ = 0, succeeded_ = 0, skipped_ = 0;
  double run_start_ = 0;
  bool halting_ = false;   // no new jobs
  std::optional<int> halt_status_;
  int signal_received_ = 0;
  bool fatal_ = false;     // pmap's own error: exit 255
  bool tty_progress_ = false;
  double last_progress_ = 0;
};

Runner::Runner(const Options& options, CommandTemplate command,
               std::unique_ptr<InputGenerator> inputs)
    : impl_(std::make_unique<Impl>(options, std::move(command),
                                   std::move(inputs))) {}
Runner::~Runner() = default;
int Runner::Run() { return impl_->Run(); }

absl::Status Runner::Impl::Setup() {
  sigemptyset(&empty_mask_);
  const char* t = std::getenv("TMPDIR");
  tmpdir_ = (t != nullptr && *t != '\0') ? t : "/tmp";

  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) return absl::ErrnoToStatus(errno, "open /dev/null");
  devnull_.reset(null_fd);

  // Signals arrive on a signalfd; SIGPIPE is ignored (a closed stdout must
  // not kill us before the jobs are cleaned up). Children get them back to
  // defaults and an empty mask in Spawn().
  struct sigaction ign = {};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ign, &old_pipe_);
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGCHLD, SIGINT, SIGTERM, SIGHUP}) sigaddset(&mask, s);
  if (::sigprocmask(SIG_BLOCK, &mask, &old_mask_) != 0) {
    return absl::ErrnoToStatus(errno, "sigprocmask");
  }
  ::prctl(PR_GET_CHILD_SUBREAPER, &old_subreaper_, 0, 0, 0);
  restore_ = true;
  int sfd = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) return absl::ErrnoToStatus(errno, "signalfd");
  sigfd_.reset(sfd);
  // Orphaned grandchildren of our jobs come back to us, to be reaped.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

  if (!o_.joblog.empty()) {
    if (o_.resume || o_.resume_failed) {
      absl::StatusOr<JoblogHistory> h = ReadJoblog(o_.joblog);
      if (!h.ok()) return h.status();
      history_ = *std::move(h);
    }
    const bool append = o_.resume || o_.resume_failed;
    int fd;
    if (o_.joblog == "-") {
      fd = ::fcntl(1, F_DUPFD_CLOEXEC, 3);
    } else {
      fd = ::open(o_.joblog.c_str(),
                  O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC),
                  0644);
    }
    if (fd < 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("open ", o_.joblog));
    }
    joblog_.reset(fd);
    struct stat st;
    if (!append || (::fstat(fd, &st) == 0 && st.st_size == 0) ||
        o_.joblog == "-") {
      WriteOut(fd, JoblogHeader());
    }
  }

  // Jobs see $PARALLEL_SEQ and $PARALLEL_JOBSLOT, as under GNU parallel.
  for (char** e = environ; *e != nullptr; ++e) {
    absl::string_view kv(*e);
    if (absl::StartsWith(kv, "PARALLEL_SEQ=") ||
        absl::StartsWith(kv, "PARALLEL_JOBSLOT=")) {
      continue;
    }
    base_env_.emplace_back(kv);
  }

  std::string prog = t_.DirectProgram();
  if (!prog.empty()) {
    absl::StatusOr<std::string> path = FindExecutable(prog);
    // Not found: sh reports it. A file that is neither ELF nor "#!" would
    // fail execve with ENOEXEC, where sh runs it as a script: use sh.
    if (path.ok()) {
      char magic[4] = {0, 0, 0, 0};
      int fd = ::open(path->c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        ssize_t n = ::read(fd, magic, sizeof(magic));
        ::close(fd);
        if ((n == 4 && memcmp(magic, "\x7f" "ELF", 4) == 0) ||
            (n >= 2 && magic[0] == '#' && magic[1] == '!')) {
          direct_path_ = *path;
        }
      }
    }
  }

  slots_.assign(o_.jobs + 1, false);
  tty_progress_ = (o_.bar || o_.progress || o_.eta) && ::isatty(2);
  if (o_.bar || o_.progress || o_.eta) {
    prefetch_ = true;
    int64_t n = 0;
    while (true) {
      absl::StatusOr<std::optional<Input>> in = inputs_->Next();
      if (!in.ok()) return in.status();
      if (!in->has_value()) break;
      prefetched_.push_back(**std::move(in));
      ++n;
    }
    total_ = (n + o_.max_args - 1) / o_.max_args;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<Input>> Runner::Impl::NextInput() {
  if (prefetch_) {
    if (prefetched_.empty()) return std::optional<Input>();
    Input in = std::move(prefetched_.front());
    prefetched_.pop_front();
    return std::optional<Input>(std::move(in));
  }
  return inputs_->Next();
}

// Builds the next new job. Returns false at the end of the input.
absl::StatusOr<bool> Runner::Impl::NextJob(std::unique_ptr<Job>* out) {
  while (true) {
    auto job = std::make_unique<Job>();
    while (static_cast<int>(job->inputs.size()) < o_.max_args) {
      absl::StatusOr<std::optional<Input>> in = NextInput();
      if (!in.ok()) return in.status();
      if (!in->has_value()) break;
      job->inputs.push_back(**std::move(in));
    }
    if (job->inputs.empty()) return false;
    job->seq = ++next_seq_;
    if ((o_.resume || o_.resume_failed) &&
        history_.ShouldSkip(job->seq, o_.resume_failed)) {
      ++skipped_;
      if (o_.keep_order) Deliver(job->seq, Finished());
      continue;
    }
    JobValues v;
    v.seq = job->seq;
    v.slot = 1;  // the real slot is known at launch
    for (const Input& in : job->inputs) {
      v.args.push_back(in.values);
      v.captures.push_back(in.captures);
    }
    job->command = t_.ShellCommand(v);
    if (o_.tag) {
      for (size_t i = 0; i < v.args.size(); ++i) {
        for (size_t k = 0; k < v.args[i].size(); ++k) {
          if (i > 0 || k > 0) job->tag += ' ';
          job->tag += v.args[i][k];
        }
      }
      job->tag += '\t';
    }
    *out = std::move(job);
    return true;
  }
}

bool Runner::Impl::CanLaunch(double now) const {
  if (halting_ || signal_received_ != 0 || fatal_) return false;
  if (static_cast<int>(running_.size()) >= o_.jobs) return false;
  if (o_.delay > 0 && now < last_launch_ + o_.delay) return false;
  // -k: do not pile up unbounded open files behind one slow job.
  if (held_fds_ > 512) return false;
  return !retry_.empty() || !inputs_done_;
}

absl::StatusOr<UniqueFd> Runner::Impl::TempFile() {
  if (!file_pool_.empty()) {
    UniqueFd f = std::move(file_pool_.back());
    file_pool_.pop_back();
    return f;
  }
  int fd = ::open(tmpdir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    // No O_TMPFILE support on this file system: create and unlink.
    std::string name = tmpdir_ + "/pmap.XXXXXX";
    fd = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd < 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("temporary file in ", tmpdir_));
    }
    ::unlink(name.c_str());
  }
  return UniqueFd(fd);
}

// Returns a capture file to the pool, unless something of the job may still
// write to it.
void Runner::Impl::Recycle(Captured* c, pid_t pgid) {
  if (!c->file.valid()) return;
  if (pgid > 0 && !GroupGone(pgid)) {
    c->file.reset();
    return;
  }
  if (::ftruncate(c->file.get(), 0) == 0 &&
      ::lseek(c->file.get(), 0, SEEK_SET) == 0 && file_pool_.size() < 64) {
    file_pool_.push_back(std::move(c->file));
  } else {
    c->file.reset();
  }
}

void Runner::Impl::Launch(std::unique_ptr<Job> job, double now) {
  SpawnOptions so;
  JobValues v;
  v.seq = job->seq;
  for (const Input& in : job->inputs) {
    v.args.push_back(in.values);
    v.captures.push_back(in.captures);
  }
  int slot = 1;
  while (slot < static_cast<int>(slots_.size()) && slots_[slot]) ++slot;
  if (slot >= static_cast<int>(slots_.size())) slots_.push_back(false);
  slots_[slot] = true;
  job->slot = slot;
  v.slot = slot;
  if (t_.has_replacement()) {
    // {%} may appear: the command depends on the slot.
    job->command = t_.ShellCommand(v);
  }
  if (o_.no_shell) {
    so.argv = t_.Argv(v);
  } else if (!direct_path_.empty()) {
    so.argv = t_.Argv(v);
    so.executable = direct_path_;
  } else {
    so.argv = {"/bin/sh", "-c", job->command};
  }
  if (o_.verbose) WriteOut(2, job->command + "\n");

  so.fds.push_back({0, devnull_.get()});
  if (o_.output == OutputMode::kGroup ||
      (o_.output == OutputMode::kLineBuffer && o_.keep_order)) {
    for (Captured* c : {&job->out, &job->err}) {
      absl::StatusOr<UniqueFd> f = TempFile();
      if (!f.ok()) {
        Error(f.status().message());
        fatal_ = true;
        slots_[slot] = false;
        return;
      }
      c->file = *std::move(f);
    }
    so.fds.push_back({1, job->out.file.get()});
    so.fds.push_back({2, job->err.file.get()});
  }
  // --line-buffer: pipes; their write ends close when `child_ends` goes out
  // of scope, right after Spawn() gave copies to the child.
  std::vector<UniqueFd> child_ends;
  if (o_.output == OutputMode::kLineBuffer && !o_.keep_order) {
    absl::StatusOr<FdPair> po = MakePipe(O_NONBLOCK);
    absl::StatusOr<FdPair> pe = MakePipe(O_NONBLOCK);
    if (!po.ok() || !pe.ok()) {
      Error((po.ok() ? pe.status() : po.status()).message());
      fatal_ = true;
      slots_[slot] = false;
      return;
    }
    // The child's ends must block: clear O_NONBLOCK on the write ends.
    (void)SetNonBlocking(po->write.get(), false);
    (void)SetNonBlocking(pe->write.get(), false);
    so.fds.push_back({1, po->write.get()});
    so.fds.push_back({2, pe->write.get()});
    job->out_pipe = std::move(po->read);
    job->err_pipe = std::move(pe->read);
    child_ends.push_back(std::move(po->write));
    child_ends.push_back(std::move(pe->write));
  }
  so.env.emplace();
  so.env->reserve(base_env_.size() + 2);
  *so.env = base_env_;
  so.env->push_back(absl::StrCat("PARALLEL_SEQ=", job->seq));
  so.env->push_back(absl::StrCat("PARALLEL_JOBSLOT=", slot));
  so.new_process_group = true;
  so.signal_mask = empty_mask_;
  so.parent_death_signal = SIGTERM;
  job->start_wall = WallNow();
  job->start_mono = now;
  absl::StatusOr<pid_t> pid = Spawn(so);
  last_launch_ = now;
  if (!pid.ok()) {
    // The program itself is missing or not executable (-q, or a vanished
    // direct program): report it like sh does, as a job that exited 127.
    Error(pid.status().message());
    job->pid = -1;
    Finish(std::move(job), 127 << 8, now);
    return;
  }
  job->pid = *pid;
  running_[*pid] = std::move(job);
}

void Runner::Impl::DrainPipe(Job* job, bool is_err, bool final_read) {
  UniqueFd& p = is_err ? job->err_pipe : job->out_pipe;
  std::string& line = is_err ? job->err_line : job->out_line;
  const int dst = is_err ? 2 : 1;
  if (p.valid()) {
    char buf[65536];
    while (true) {
      ssize_t n = ::read(p.get(), buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) p.reset();
        break;
      }
      if (!is_err) job->receive += n;
      line.append(buf, static_cast<size_t>(n));
    }
  }
  // Print complete lines now; the rest when the job ends.
  size_t end = final_read ? line.size() : line.rfind('\n');
  if (end == std::string::npos || end == 0) {
    if (!final_read || line.empty()) return;
  }
  if (!final_read) ++end;
  absl::string_view chunk(line.data(), end);
  if (o_.tag) {
    bool at_start = true;
    WriteTagged(dst, chunk, job->tag, &at_start);
  } else {
    WriteOut(dst, chunk);
  }
  line.erase(0, end);
  if (final_read) p.reset();
}

void Runner::Impl::Emit(const std::string& tag, Captured* c, int fd) {
  if (c->in_memory) {
    if (o_.tag) {
      bool at_start = true;
      WriteTagged(fd, c->memory, tag, &at_start);
    } else {
      WriteOut(fd, c->memory);
    }
    return;
  }
  if (!c->file.valid() || c->size == 0) return;
  off_t off = 0;
  if (!o_.tag) {
    while (off < c->size) {
      ssize_t n = ::sendfile(fd, c->file.get(), &off, c->size - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EPIPE) {
        g_output_broken = true;
        return;
      }
      if (n <= 0) break;
    }
    if (off >= c->size) return;
  }
  // Tagged, or sendfile could not write to `fd`: read and write.
  bool at_start = true;
  char buf[65536];
  while (off < c->size) {
    ssize_t n = ::pread(c->file.get(), buf,
                        std::min<int64_t>(sizeof(buf), c->size - off), off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += n;
    if (o_.tag) {
      WriteTagged(fd, absl::string_view(buf, n), tag, &at_start);
    } else {
      WriteOut(fd, buf, n);
    }
  }
}

// Prints a finished job's output now, or holds it until its turn (-k).
void Runner::Impl::Deliver(int64_t seq, Finished f) {
  if (o_.keep_order && seq != next_print_) {
    if (!f.empty) {
      for (Captured* c : {&f.out, &f.err}) {
        if (c->file.valid() && c->size <= 65536) {
          c->memory.resize(c->size);
          ssize_t n = c->size > 0 ? ::pread(c->file.get(), c->memory.data(),
                                            c->size, 0)
                                  : 0;
          c->memory.resize(std::max<ssize_t>(n, 0));
          c->in_memory = true;
          Recycle(c, f.pgid);
        } else if (c->file.valid()) {
          ++held_fds_;
        }
      }
    }
    held_.emplace(seq, std::move(f));
    return;
  }
  auto print = [&](Finished* g) {
    if (g->empty) return;
    Emit(g->tag, &g->out, 1);
    Emit(g->tag, &g->err, 2);
  };
  print(&f);
  Recycle(&f.out, f.pgid);
  Recycle(&f.err, f.pgid);
  if (!o_.keep_order) return;
  ++next_print_;
  while (true) {
    auto it = held_.find(next_print_);
    if (it == held_.end()) break;
    print(&it->second);
    for (Captured* c : {&it->second.out, &it->second.err}) {
      if (c->file.valid() && !c->in_memory) {
        --held_fds_;
        Recycle(c, it->second.pgid);
      }
    }
    held_.erase(it);
    ++next_print_;
  }
}

void Runner::Impl::StartTermination(Job* job, double now) {
  if (job->term_step >= 0) return;
  job->killed_by_us = true;
  job->term_step = 0;
  job->next_term = now;  // first signal right away
}

void Runner::Impl::TerminateAll(double now) {
  for (auto& [pid, job] : running_) StartTermination(job.get(), now);
}

void Runner::Impl::StepTerminations(double now) {
  const auto& seq = o_.term_seq;
  for (auto& [pid, job] : running_) {
    if (o_.timeout > 0 && job->term_step < 0 &&
        now >= job->start_mono + o_.timeout) {
      job->timed_out = true;
      StartTermination(job.get(), now);
    }
    if (job->term_step < 0 || now < job->next_term) continue;
    if (job->term_step < static_cast<int>(seq.size())) {
      ::kill(-job->pid, seq[job->term_step].signal);
      job->next_term = now + seq[job->term_step].wait_ms / 1000.0;
      ++job->term_step;
    } else {
      // The sequence is over and the job still runs: keep killing.
      ::kill(-job->pid, SIGKILL);
      job->next_term = now + 0.1;
    }
  }
  for (size_t i = 0; i < dying_.size();) {
    DyingGroup& d = dying_[i];
    if (GroupGone(d.pgid) || d.term_step > static_cast<int>(seq.size())) {
      dying_[i] = dying_.back();
      dying_.pop_back();
      continue;
    }
    if (now >= d.next_term) {
      int sig = d.term_step < static_cast<int>(seq.size())
                    ? seq[d.term_step].signal
                    : SIGKILL;
      ::kill(-d.pgid, sig);
      d.next_term = now + (d.term_step < static_cast<int>(seq.size())
                               ? seq[d.term_step].wait_ms / 1000.0
                               : 0.05);
      ++d.term_step;
    }
    ++i;
  }
}

void Runner::Impl::ReapChildren(double now) {
  while (true) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      if (pid < 0 && errno == EINTR) continue;
      break;
    }
    auto it = running_.find(pid);
    if (it == running_.end()) continue;  // an orphaned grandchild: reaped
    std::unique_ptr<Job> job = std::move(it->second);
    running_.erase(it);
    Finish(std::move(job), status, now);
  }
}

void Runner::Impl::Finish(std::unique_ptr<Job> job, int wait_status,
                          double now) {
  if (job->slot > 0 && job->slot < static_cast<int>(slots_.size())) {
    slots_[job->slot] = false;
  }
  int exitval = 0, sig = 0;
  if (WIFEXITED(wait_status)) {
    exitval = WEXITSTATUS(wait_status);
  } else if (WIFSIGNALED(wait_status)) {
    sig = WTERMSIG(wait_status);
    exitval = job->killed_by_us ? -1 : 0;
  }
  // A job we were terminating may have left group members behind.
  if (job->pid > 0 && job->term_step >= 0 && !GroupGone(job->pid)) {
    dying_.push_back({job->pid, job->term_step, now});
  }
  const bool failed = exitval != 0 || sig != 0;
  if (job->out_pipe.valid() || job->err_pipe.valid() ||
      !job->out_line.empty() || !job->err_line.empty()) {
    DrainPipe(job.get(), false, true);
    DrainPipe(job.get(), true, true);
  }
  for (Captured* c : {&job->out, &job->err}) {
    struct stat st;
    if (c->file.valid() && ::fstat(c->file.get(), &st) == 0) c->size = st.st_size;
  }
  if (o_.output == OutputMode::kGroup ||
      (o_.output == OutputMode::kLineBuffer && o_.keep_order)) {
    job->receive = job->out.size;
  }

  // Retry a failure (not one we killed ourselves) with its output dropped.
  if (failed && job->attempt < o_.retries && !job->killed_by_us &&
      !halting_ && signal_received_ == 0 && job->pid > 0) {
    Recycle(&job->out, job->pid);
    Recycle(&job->err, job->pid);
    auto again = std::make_unique<Job>();
    again->seq = job->seq;
    again->inputs = std::move(job->inputs);
    again->command = std::move(job->command);
    again->tag = std::move(job->tag);
    again->attempt = job->attempt + 1;
    retry_.push_back(std::move(again));
    return;
  }

  if (joblog_.valid()) {
    JoblogEntry e;
    e.seq = job->seq;
    e.start = job->start_wall;
    e.runtime = now - job->start_mono;
    e.receive = job->receive;
    e.exitval = exitval;
    e.signal = sig;
    e.command = job->command;
    WriteOut(joblog_.get(), FormatJoblogLine(e));
  }
  if (job->timed_out) {
    Error(absl::StrCat("job ", job->seq, " timed out after ", o_.timeout,
                       " s and was killed: ", job->command));
  }

  // Killed because of --halt now or a signal: not counted as failed.
  const bool counted = !(job->killed_by_us && !job->timed_out);
  if (counted) {
    ++finished_;
    if (failed) {
      ++failed_;
    } else {
      ++succeeded_;
    }
  }

  Finished f;
  f.empty = false;
  f.tag = job->tag;
  f.out = std::move(job->out);
  f.err = std::move(job->err);
  f.pgid = job->pid;
  Deliver(job->seq, std::move(f));
  if (counted) CheckHalt(*job, failed, exitval, sig);
  Progress(now, false);
}

void Runner::Impl::CheckHalt(const Job& job, bool failed, int exitval,
                             int sig) {
  const HaltSpec& h = o_.halt;
  if (h.when == HaltSpec::kNever || halting_) return;
  int64_t n = 0;
  switch (h.what) {
    case HaltSpec::kFail:
      n = failed_;
      break;
    case HaltSpec::kSuccess:
      n = succeeded_;
      break;
    case HaltSpec::kDone:
      n = finished_;
      break;
  }
  bool hit;
  if (h.percent) {
    const int64_t base = total_ > 0 ? total_ : finished_;
    hit = finished_ >= 3 && n * 100.0 >= h.count * base;
  } else {
    hit = n >= h.count;
  }
  if (!hit) return;
  halting_ = true;
  const char* what = h.what == HaltSpec::kFail      ? "failed"
                     : h.what == HaltSpec::kSuccess ? "succeeded"
                                                    : "finished";
  Error(absl::StrCat("halting (", h.when == HaltSpec::kNow ? "now" : "soon",
                     ") after this job ", what, ": ", job.command));
  if (h.what == HaltSpec::kFail && !h.percent && h.count == 1 && failed) {
    halt_status_ = exitval != 0 ? exitval : 128 + sig;
  } else if (h.what == HaltSpec::kSuccess) {
    halt_status_ = 0;
  }
  if (h.when == HaltSpec::kNow) TerminateAll(MonotonicNow());
}

void Runner::Impl::Progress(double now, bool final) {
  if (!tty_progress_) return;
  if (!final && now - last_progress_ < 0.1) return;
  last_progress_ = now;
  struct winsize ws;
  int width = 80;
  if (::ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) width = ws.ws_col;
  const int64_t total = std::max<int64_t>(total_, 1);
  const int64_t done = finished_ + skipped_;
  const double elapsed = now - run_start_;
  const double avg = finished_ > 0 ? elapsed / finished_ : 0;
  const int64_t left = std::max<int64_t>(total - done, 0);
  const double eta = finished_ > 0 ? avg * left : 0;
  const int pct = static_cast<int>(100.0 * done / total);
  std::string eta_s = absl::StrFormat("%d:%02d", static_cast<int>(eta) / 60,
                                      static_cast<int>(eta) % 60);
  std::string line;
  if (o_.progress) {
    line = absl::StrFormat("local:%d/%d/%d%%/%.2fs ", running_.size(), done,
                           pct, avg);
  }
  if (o_.eta || o_.bar) {
    line += absl::StrFormat("%d%% %d:%d=%s ETA ", pct, done, left, eta_s);
  }
  if (o_.bar) {
    const int bar = std::max(10, width - static_cast<int>(line.size()) - 3);
    const int fill = static_cast<int>(static_cast<int64_t>(bar) * done / total);
    line += "[" + std::string(fill, '#') + std::string(bar - fill, '.') + "]";
  }
  if (static_cast<int>(line.size()) >= width) line.resize(width - 1);
  WriteOut(2, "\r" + line + "\033[K" + (final ? "\n" : ""));
}

int Runner::Impl::ExitStatus() const {
  if (signal_received_ != 0) return 128 + signal_received_;
  if (fatal_) return 255;
  if (halt_status_.has_value()) return *halt_status_;
  return failed_ <= 100 ? static_cast<int>(failed_) : 101;
}

int Runner::Impl::Run() {
  if (absl::Status s = Setup(); !s.ok()) {
    Error(s.message());
    return 255;
  }
  run_start_ = MonotonicNow();
  int signals_seen = 0;
  while (true) {
    double now = MonotonicNow();
    while (CanLaunch(now)) {
      std::unique_ptr<Job> job;
      if (!retry_.empty()) {
        job = std::move(retry_.front());
        retry_.pop_front();
      } else {
        absl::StatusOr<bool> got = NextJob(&job);
        if (!got.ok()) {
          Error(got.status().message());
          fatal_ = true;
          break;
        }
        if (!*got) {
          inputs_done_ = true;
          break;
        }
      }
      if (o_.dry_run) {
        WriteOut(1, job->command + "\n");
        continue;
      }
      Launch(std::move(job), now);
      now = MonotonicNow();
    }
    const bool stopping = halting_ || signal_received_ != 0 || fatal_;
    if (running_.empty() && dying_.empty() &&
        (stopping || (inputs_done_ && retry_.empty()))) {
      break;
    }

    // Wait for a signal, a line of output, or the next timer.
    double next = now + 1.0;
    if (o_.delay > 0 && !inputs_done_) next = std::min(next, last_launch_ + o_.delay);
    for (const auto& [pid, job] : running_) {
      if (job->term_step >= 0) next = std::min(next, job->next_term);
      if (o_.timeout > 0 && job->term_step < 0) {
        next = std::min(next, job->start_mono + o_.timeout);
      }
    }
    for (const DyingGroup& d : dying_) next = std::min(next, d.next_term);
    if (tty_progress_) next = std::min(next, now + 0.2);
    std::vector<struct pollfd> fds;
    std::vector<std::pair<Job*, bool>> owners;
    fds.push_back({sigfd_.get(), POLLIN, 0});
    owners.push_back({nullptr, false});
    if (o_.output == OutputMode::kLineBuffer) {
      for (auto& [pid, job] : running_) {
        if (job->out_pipe.valid()) {
          fds.push_back({job->out_pipe.get(), POLLIN, 0});
          owners.push_back({job.get(), false});
        }
        if (job->err_pipe.valid()) {
          fds.push_back({job->err_pipe.get(), POLLIN, 0});
          owners.push_back({job.get(), true});
        }
      }
    }
    int timeout_ms = static_cast<int>(std::ceil(std::max(0.0, next - now) * 1000));
    int r = ::poll(fds.data(), fds.size(), timeout_ms);
    now = MonotonicNow();
    if (r < 0 && errno != EINTR) {
      Error(absl::StrCat("poll: ", strerror(errno)));
      fatal_ = true;
      TerminateAll(now);
    }
    if (r > 0) {
      for (size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents != 0) {
          DrainPipe(owners[i].first, owners[i].second, false);
        }
      }
    }
    // Signals.
    struct signalfd_siginfo si;
    while (::read(sigfd_.get(), &si, sizeof(si)) == sizeof(si)) {
      const int s = static_cast<int>(si.ssi_signo);
      if (s == SIGCHLD) continue;
      ++signals_seen;
      if (signal_received_ == 0) signal_received_ = s;
      halting_ = true;
      TerminateAll(now);
      if (signals_seen > 1) {
        // Asked again: no more patience.
        for (auto& [pid, job] : running_) ::kill(-pid, SIGKILL);
        for (DyingGroup& d : dying_) ::kill(-d.pgid, SIGKILL);
      }
    }
    if (g_output_broken && signal_received_ == 0) {
      // Our reader went away (`pmap ... | head -1`): as if SIGPIPE.
      signal_received_ = SIGPIPE;
      halting_ = true;
      TerminateAll(now);
    }
    ReapChildren(now);
    StepTerminations(MonotonicNow());
    Progress(now, false);
  }
  ReapChildren(MonotonicNow());
  if (tty_progress_) Progress(MonotonicNow(), true);
  // -k: anything still held (a gap left by a failed spawn) in order.
  for (auto& [seq, f] : held_) {
    if (!f.empty) {
      Emit(f.tag, &f.out, 1);
      Emit(f.tag, &f.err, 2);
    }
  }
  held_.clear();
  if (inputs_->skipped_by_match() > 0) {
    Error(absl::StrCat("skipped ", inputs_->skipped_by_match(),
                       " input(s) that did not match --match ", o_.match));
  }
  return ExitStatus();
}

}  // namespace pmap
}  // namespace mp
