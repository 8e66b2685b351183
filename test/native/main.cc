// Runs every registered case and prints TAP (https://testanything.org): "ok N - name" or
// "not ok N - name" followed by "# file:line: ..." diagnostics. Exits 1 if any case failed.
// An optional argument runs only the cases whose name contains it.
#include <cstdio>
#include <cstring>

#include "test.h"

namespace lapps::test {

namespace {
int gFailures = 0;  // failures recorded by the running case
std::vector<std::string> gDiagnostics;
constexpr int kMaxDiagnostics = 20;
}  // namespace

std::vector<TestCase>& registry() {
  static std::vector<TestCase> cases;
  return cases;
}

void recordFailure(const char* file, int line, const std::string& what) {
  if (++gFailures <= kMaxDiagnostics) {
    const char* base = std::strrchr(file, '/');
    gDiagnostics.push_back(std::string(base ? base + 1 : file) + ":" + std::to_string(line) + ": " +
                           what);
  }
}

}  // namespace lapps::test

int main(int argc, char** argv) {
  using namespace lapps::test;
  const char* filter = argc > 1 ? argv[1] : nullptr;
  std::vector<TestCase> selected;
  for (const TestCase& c : registry())
    if (filter == nullptr || std::strstr(c.name, filter) != nullptr) selected.push_back(c);
  std::printf("TAP version 13\n1..%zu\n", selected.size());
  int failed = 0;
  for (size_t i = 0; i < selected.size(); ++i) {
    gFailures = 0;
    gDiagnostics.clear();
    selected[i].fn();
    std::printf("%s %zu - %s\n", gFailures ? "not ok" : "ok", i + 1, selected[i].name);
    for (const std::string& d : gDiagnostics) std::printf("# %s\n", d.c_str());
    if (gFailures > kMaxDiagnostics)
      std::printf("# ... %d more failures\n", gFailures - kMaxDiagnostics);
    if (gFailures) ++failed;
    std::fflush(stdout);
  }
  if (failed) std::printf("# %d of %zu failed\n", failed, selected.size());
  return failed ? 1 : 0;
}
