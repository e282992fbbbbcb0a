// SHA-256 against the FIPS 180-4 / NIST example vectors, streamed in odd pieces too (the
// block buffering is where such code breaks), and over a file.
#include <algorithm>
#include <string>
#include <vector>

#include "check.hpp"
#include "edgeseg/segmenter.hpp"
#include "sha256.hpp"

using edgeseg::detail::Sha256;
using edgeseg::detail::sha256_file;
using edgeseg::detail::sha256_hex;

int main() {
  const std::string abc = "abc";
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  CHECK(sha256_hex("", 0) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex(abc.data(), abc.size()) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex(two_blocks.data(), two_blocks.size()) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string million(1000000, 'a');
  const std::string million_hex =
      "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
  CHECK(sha256_hex(million.data(), million.size()) == million_hex);

  // Lengths around the 55/56/64-byte padding edges, whole vs. in pieces of every size 1..70.
  for (size_t len : {55u, 56u, 63u, 64u, 65u, 119u, 120u, 1000u}) {
    std::vector<unsigned char> data(len);
    for (size_t i = 0; i < len; ++i) data[i] = static_cast<unsigned char>(i * 31 + 7);
    const std::string whole = sha256_hex(data.data(), data.size());
    for (size_t piece = 1; piece <= 70; piece += 3) {
      Sha256 h;
      for (size_t i = 0; i < len; i += piece) h.update(&data[i], std::min(piece, len - i));
      CHECK(h.hexdigest() == whole);
    }
  }

  check::TempDir dir("edgeseg-sha");
  check::write_text(dir.file("a.txt"), million);
  CHECK(sha256_file(dir.file("a.txt")) == million_hex);
  CHECK_ERROR(sha256_file(dir.file("missing.bin")), "cannot open");
  return check::result();
}
