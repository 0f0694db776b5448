// Replays the committed seed corpus (ipc/testdata/codec_corpus) through the
// fuzz entry point, plus every truncation and single-byte mutation of each
// seed, so CI exercises the fuzz harness with any compiler.
#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "ipc/internal/codec_fuzz.h"

namespace mp {
namespace ipc_internal {
namespace {

std::vector<std::string> ReadCorpus() {
  std::string dir = "ipc/testdata/codec_corpus";
  std::vector<std::string> inputs;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return inputs;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::ifstream in(dir + "/" + name, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    inputs.push_back(ss.str());
  }
  closedir(d);
  return inputs;
}

const uint8_t* Bytes(const std::string& s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

TEST(CodecFuzzTest, SeedsMatchTheGenerator) {
  // The committed seeds are what CodecFuzzSeed() produces (so they stay
  // valid when the format changes: regenerate with codec_corpus_gen).
  std::vector<std::string> corpus = ReadCorpus();
  ASSERT_GE(corpus.size(), 2u * kCodecFuzzTypes);
  for (int t = 0; t < kCodecFuzzTypes; ++t) {
    for (int v = 0; v < 2; ++v) {
      std::string seed = CodecFuzzSeed(t, v);
      EXPECT_NE(std::find(corpus.begin(), corpus.end(), seed), corpus.end())
          << "seed " << t << "/" << v << " missing from the corpus";
    }
  }
}

TEST(CodecFuzzTest, CorpusSeedsDecode) {
  int decoded = 0;
  for (const std::string& input : ReadCorpus()) {
    if (CodecFuzzOne(Bytes(input), input.size())) ++decoded;
  }
  EXPECT_GE(decoded, 2 * kCodecFuzzTypes);
}

TEST(CodecFuzzTest, TruncationsAndMutationsNeverCrash) {
  for (const std::string& input : ReadCorpus()) {
    for (size_t n = 0; n < input.size(); ++n) {
      CodecFuzzOne(Bytes(input), n);
    }
    for (size_t i = 1; i < input.size(); ++i) {
      for (int bit : {0x01, 0x80, 0xff}) {
        std::string m = input;
        m[i] = static_cast<char>(m[i] ^ bit);
        CodecFuzzOne(Bytes(m), m.size());
      }
    }
  }
}

}  // namespace
}  // namespace ipc_internal
}  // namespace mp
