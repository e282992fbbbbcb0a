// SHA-256 (FIPS 180-4), small and dependency-free: meta.json records every model file's
// digest and the runtime refuses a file whose bytes changed after export.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace edgeseg::detail {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  std::array<uint8_t, 32> digest();  // finishes; call once
  std::string hexdigest();           // lowercase hex, as Python's hashlib

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t used_ = 0;
  uint64_t bytes_ = 0;
};

std::string sha256_hex(const void* data, size_t size);
// Streams the file; throws edgeseg::Error when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace edgeseg::detail
