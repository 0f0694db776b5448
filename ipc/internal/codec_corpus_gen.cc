// Writes the codec fuzz seed corpus: codec_corpus_gen <dir>.
#include <cstdio>
#include <fstream>
#include <string>

#include "ipc/internal/codec_fuzz.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <dir>\n", argv[0]);
    return 2;
  }
  for (int t = 0; t < mp::ipc_internal::kCodecFuzzTypes; ++t) {
    for (int v = 0; v < 2; ++v) {
      std::string path = std::string(argv[1]) + "/seed_" + std::to_string(t) +
                         "_" + std::to_string(v);
      std::ofstream out(path, std::ios::binary);
      out << mp::ipc_internal::CodecFuzzSeed(t, v);
    }
  }
  return 0;
}
