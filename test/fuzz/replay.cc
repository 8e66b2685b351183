// Replays a fuzz target's corpus without libFuzzer (so any compiler, and the ASan/UBSan
// build of `npm test`, can run it): every file in the given directories goes through
// LLVMFuzzerTestOneInput once. Prints TAP, one line per directory; a crash is the failure.
//
// Usage: lapps_fuzz_replay_<target> <corpus-dir>...
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::printf("1..%d\n", argc - 1);
  int failed = 0;
  for (int i = 1; i < argc; ++i) {
    std::vector<fs::path> files;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(argv[i], ec)) {
      if (e.is_regular_file()) files.push_back(e.path());
    }
    if (ec || files.empty()) {
      std::printf("not ok %d - %s: no corpus files\n", i, argv[i]);
      ++failed;
      continue;
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    }
    std::printf("ok %d - %s: %zu inputs replayed\n", i, argv[i], files.size());
  }
  return failed ? 1 : 0;
}
