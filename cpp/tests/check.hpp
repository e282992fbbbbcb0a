// A tiny check macro set: failures are counted and printed, the test keeps going so one run
// shows every broken case; main returns check::result().
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

namespace check {

inline int& failures() {
  static int n = 0;
  return n;
}

inline void fail(const char* file, int line, const std::string& what) {
  std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
  ++failures();
}

inline int result() {
  if (failures()) std::fprintf(stderr, "%d check(s) failed\n", failures());
  else std::fprintf(stderr, "all checks passed\n");
  return failures() ? 1 : 0;
}

// A fresh directory under the system temp dir, removed when the object goes.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name) {
    path = std::filesystem::temp_directory_path() /
           (name + "-" + std::to_string(std::rand()) + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace check

#define CHECK(cond)                                          \
  do {                                                       \
    if (!(cond)) check::fail(__FILE__, __LINE__, #cond);     \
  } while (0)

#define CHECK_EQ(a, b)                                                                   \
  do {                                                                                   \
    const auto va_ = (a);                                                                \
    const auto vb_ = (b);                                                                \
    if (!(va_ == vb_))                                                                   \
      check::fail(__FILE__, __LINE__,                                                    \
                  std::string(#a " == " #b " (") + std::to_string(va_) + " vs " +        \
                      std::to_string(vb_) + ")");                                        \
  } while (0)

// The statement must throw edgeseg::Error whose message contains `needle`.
#define CHECK_ERROR(stmt, needle)                                                        \
  do {                                                                                   \
    bool thrown_ = false;                                                                \
    try {                                                                                \
      stmt;                                                                              \
    } catch (const edgeseg::Error& e_) {                                                 \
      thrown_ = true;                                                                    \
      if (std::string(e_.what()).find(needle) == std::string::npos)                      \
        check::fail(__FILE__, __LINE__,                                                  \
                    std::string(#stmt ": message lacks \"") + needle + "\": " + e_.what()); \
    } catch (const std::exception& e_) {                                                 \
      thrown_ = true;                                                                    \
      check::fail(__FILE__, __LINE__,                                                    \
                  std::string(#stmt ": threw a non-edgeseg exception: ") + e_.what());   \
    }                                                                                    \
    if (!thrown_) check::fail(__FILE__, __LINE__, std::string(#stmt ": did not throw")); \
  } while (0)
