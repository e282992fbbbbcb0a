// Image files. stb is compiled here, once, with its symbols kept file-local (STB_*_STATIC) so
// that an application linking this library can still use its own copy of stb.
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "png.hpp"

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace edgeseg {
namespace detail {
namespace {

void put32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

uint32_t get32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}

void chunk(std::vector<uint8_t>& out, const char type[4], const uint8_t* data, size_t n) {
  put32(out, static_cast<uint32_t>(n));
  const size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data, data + n);
  put32(out, crc32(&out[start], n + 4));  // the CRC covers the type and the data
}

const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

uint8_t paeth(int a, int b, int c) {
  const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  return static_cast<uint8_t>(pa <= pb && pa <= pc ? a : (pb <= pc ? b : c));
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open it (no such file, or no permission)");
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const uint8_t* data, size_t n) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (out) out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n));
  if (!out) throw Error(path + ": cannot write it (check the directory exists and is writable)");
}

void check_labels(const LabelMap& labels, const std::string& what) {
  if (labels.empty() || labels.data.size() != static_cast<size_t>(labels.height) * labels.width)
    throw Error(what + ": the label map is empty or its data does not match " +
                std::to_string(labels.height) + "x" + std::to_string(labels.width));
}

}  // namespace

uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[n] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

std::vector<uint8_t> encode_label_png(const LabelMap& labels, const Palette& palette) {
  check_labels(labels, "write_label_png");
  if (palette.size() > 256) throw Error("write_label_png: a PNG palette holds 256 colours");
  std::vector<uint8_t> out(kSignature, kSignature + 8);
  uint8_t ihdr[13];
  for (int i = 0; i < 4; ++i) {
    ihdr[i] = uint8_t(uint32_t(labels.width) >> (24 - 8 * i));
    ihdr[4 + i] = uint8_t(uint32_t(labels.height) >> (24 - 8 * i));
  }
  ihdr[8] = 8;   // bit depth
  ihdr[9] = 3;   // colour type: palette
  ihdr[10] = ihdr[11] = ihdr[12] = 0;  // deflate, adaptive filtering, no interlace
  chunk(out, "IHDR", ihdr, sizeof ihdr);
  // 256 entries, as Python's writer: any byte value (255 = ignore) stays a valid index.
  uint8_t plte[256 * 3] = {};
  for (size_t i = 0; i < palette.size(); ++i) std::memcpy(plte + 3 * i, palette[i].data(), 3);
  chunk(out, "PLTE", plte, sizeof plte);
  const size_t row = static_cast<size_t>(labels.width);
  std::vector<uint8_t> raw(static_cast<size_t>(labels.height) * (row + 1), 0);
  for (int y = 0; y < labels.height; ++y)  // filter byte 0 (None), then the indices
    std::memcpy(&raw[y * (row + 1) + 1], &labels.data[y * row], row);
  int zlen = 0;
  unsigned char* z = stbi_zlib_compress(raw.data(), static_cast<int>(raw.size()), &zlen, 8);
  if (!z) throw Error("write_label_png: compression failed (out of memory?)");
  chunk(out, "IDAT", z, static_cast<size_t>(zlen));
  std::free(z);
  chunk(out, "IEND", nullptr, 0);
  return out;
}

LabelMap decode_label_png(const std::vector<uint8_t>& png, const std::string& what,
                          Palette* palette) {
  auto bad = [&](const std::string& why) -> Error {
    return Error(what + ": " + why + " (a label map PNG is 8-bit palette or grayscale, "
                 "non-interlaced, as write_label_png and `edgeseg segment` write it)");
  };
  if (png.size() < 8 || std::memcmp(png.data(), kSignature, 8) != 0) throw bad("not a PNG");
  LabelMap m;
  int color_type = -1;
  std::vector<uint8_t> idat;
  size_t pos = 8;
  bool end = false;
  while (!end) {
    if (pos + 12 > png.size()) throw bad("truncated file");
    const uint32_t n = get32(&png[pos]);
    if (n > png.size() - pos - 12) throw bad("truncated chunk");
    const uint8_t* type = &png[pos + 4];
    const uint8_t* data = type + 4;
    if (crc32(type, n + 4) != get32(data + n)) throw bad("chunk CRC mismatch (corrupt file)");
    const std::string t(reinterpret_cast<const char*>(type), 4);
    if (t == "IHDR") {
      if (n != 13) throw bad("bad IHDR");
      m.width = static_cast<int>(get32(data));
      m.height = static_cast<int>(get32(data + 4));
      color_type = data[9];
      if (data[8] != 8 || (color_type != 3 && color_type != 0) || data[12] != 0)
        throw bad("unsupported bit depth, colour type or interlacing");
    } else if (t == "PLTE" && palette) {
      palette->clear();
      for (uint32_t i = 0; i + 2 < n; i += 3) palette->push_back({data[i], data[i + 1], data[i + 2]});
    } else if (t == "IDAT") {
      idat.insert(idat.end(), data, data + n);
    } else if (t == "IEND") {
      end = true;
    }
    pos += 12 + n;
  }
  if (color_type < 0 || m.width <= 0 || m.height <= 0) throw bad("no image header");
  int raw_len = 0;
  std::unique_ptr<char, void (*)(void*)> raw(
      stbi_zlib_decode_malloc(reinterpret_cast<const char*>(idat.data()),
                              static_cast<int>(idat.size()), &raw_len),
      &std::free);
  const size_t row = static_cast<size_t>(m.width);
  if (!raw || static_cast<size_t>(raw_len) < (row + 1) * m.height) throw bad("bad image data");
  const uint8_t* r = reinterpret_cast<const uint8_t*>(raw.get());
  m.data.resize(row * m.height);
  for (int y = 0; y < m.height; ++y) {
    const uint8_t filter = r[y * (row + 1)];
    const uint8_t* src = r + y * (row + 1) + 1;
    uint8_t* cur = &m.data[y * row];
    const uint8_t* up = y > 0 ? cur - row : nullptr;
    for (size_t x = 0; x < row; ++x) {  // one byte per pixel: the left neighbour is x - 1
      const int a = x > 0 ? cur[x - 1] : 0, b = up ? up[x] : 0, c = (x > 0 && up) ? up[x - 1] : 0;
      int v = src[x];
      switch (filter) {
        case 0: break;
        case 1: v += a; break;
        case 2: v += b; break;
        case 3: v += (a + b) / 2; break;
        case 4: v += paeth(a, b, c); break;
        default: throw bad("unknown row filter");
      }
      cur[x] = static_cast<uint8_t>(v);
    }
  }
  return m;
}

}  // namespace detail

Image read_image(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(path + ": image file not found");
  int w = 0, h = 0, channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(stbi_load(path.c_str(), &w, &h, &channels, 3),
                                                   &stbi_image_free);
  if (!pixels)
    throw Error(path + ": cannot decode the image (" + stbi_failure_reason() +
                "); convert it to PNG or JPEG");
  if (w <= 0 || h <= 0) throw Error(path + ": the image is empty");
  Image img;
  img.height = h;
  img.width = w;
  img.data.assign(pixels.get(), pixels.get() + static_cast<size_t>(w) * h * 3);
  return img;
}

void write_label_png(const std::string& path, const LabelMap& labels, const Palette& palette) {
  const std::vector<uint8_t> png = detail::encode_label_png(labels, palette);
  detail::write_file(path, png.data(), png.size());
}

LabelMap read_label_png(const std::string& path) {
  return detail::decode_label_png(detail::read_file(path), path);
}

void write_image_png(const std::string& path, const Image& rgb) {
  if (rgb.empty() || rgb.data.size() != static_cast<size_t>(rgb.height) * rgb.width * 3)
    throw Error(path + ": the image to write is empty or its data does not match " +
                std::to_string(rgb.height) + "x" + std::to_string(rgb.width) + "x3");
  if (!stbi_write_png(path.c_str(), rgb.width, rgb.height, 3, rgb.data.data(), rgb.width * 3))
    throw Error(path + ": cannot write it (check the directory exists and is writable)");
}

}  // namespace edgeseg
