// PNG: CRC-32 vectors, the palette PNG written and read back (by our reader, and by stb,
// which expands the palette into colours), all five row filters in the reader, and
// read_image's documented conversions (grayscale repeated, alpha dropped).
#include <algorithm>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "check.hpp"
#include "edgeseg/segmenter.hpp"
#include "png.hpp"

using edgeseg::detail::crc32;

namespace {

void put32(std::vector<uint8_t>& v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(uint8_t(x >> s));
}

void chunk(std::vector<uint8_t>& png, const char* type, const std::vector<uint8_t>& data) {
  put32(png, static_cast<uint32_t>(data.size()));
  std::vector<uint8_t> body(type, type + 4);
  body.insert(body.end(), data.begin(), data.end());
  png.insert(png.end(), body.begin(), body.end());
  put32(png, crc32(body.data(), body.size()));
}

// A PNG built by hand: zlib with one stored (uncompressed) block, so the test needs no
// compressor and controls every filtered byte.
std::vector<uint8_t> hand_png(int w, int h, int color_type, const std::vector<uint8_t>& raw,
                              const std::vector<uint8_t>& plte = {}) {
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<uint8_t> ihdr;
  put32(ihdr, w);
  put32(ihdr, h);
  ihdr.insert(ihdr.end(), {8, uint8_t(color_type), 0, 0, 0});
  chunk(png, "IHDR", ihdr);
  if (!plte.empty()) chunk(png, "PLTE", plte);
  std::vector<uint8_t> z = {0x78, 0x01, 0x01};  // zlib header, final stored block
  const uint16_t len = static_cast<uint16_t>(raw.size());
  z.insert(z.end(), {uint8_t(len), uint8_t(len >> 8), uint8_t(~len), uint8_t(~len >> 8)});
  z.insert(z.end(), raw.begin(), raw.end());
  uint32_t a = 1, b = 0;  // Adler-32
  for (uint8_t c : raw) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  put32(z, (b << 16) | a);
  chunk(png, "IDAT", z);
  chunk(png, "IEND", {});
  return png;
}

void save(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                              static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

int main() {
  const char* digits = "123456789";
  CHECK(crc32(reinterpret_cast<const uint8_t*>(digits), 9) == 0xCBF43926u);
  CHECK(crc32(reinterpret_cast<const uint8_t*>("IEND"), 4) == 0xAE426082u);
  // A running CRC over two pieces equals the CRC of the whole.
  CHECK(crc32(reinterpret_cast<const uint8_t*>(digits) + 4, 5,
              crc32(reinterpret_cast<const uint8_t*>(digits), 4)) == 0xCBF43926u);

  check::TempDir dir("edgeseg-png");
  const edgeseg::Palette palette = {{128, 64, 128}, {244, 35, 232}, {70, 70, 70}, {0, 0, 142}};
  for (auto [h, w] : {std::pair{1, 1}, {7, 13}, {97, 131}, {64, 300}}) {
    edgeseg::LabelMap m;
    m.height = h;
    m.width = w;
    m.data.resize(static_cast<size_t>(h) * w);
    for (size_t i = 0; i < m.data.size(); ++i) m.data[i] = static_cast<uint8_t>((i * 7 + i / 5) % 4);
    if (m.data.size() > 3) m.data[3] = 255;  // ignore: a valid index of the 256-entry PLTE
    const std::string path = dir.file("labels.png");
    edgeseg::write_label_png(path, m, palette);

    std::ifstream in(path, std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
    CHECK(bytes.size() > 33 && bytes[24] == 8 && bytes[25] == 3);  // IHDR: 8 bits, palette
    edgeseg::Palette plte;
    const edgeseg::LabelMap back = edgeseg::detail::decode_label_png(bytes, path, &plte);
    CHECK(back.height == h && back.width == w && back.data == m.data);
    CHECK(plte.size() == 256 && plte[1] == palette[1] && plte[255] == (edgeseg::Color{0, 0, 0}));
    CHECK(edgeseg::read_label_png(path).data == m.data);

    // stb decodes the palette into colours: each pixel must show its class's colour.
    const edgeseg::Image rgb = edgeseg::read_image(path);
    bool colours = rgb.height == h && rgb.width == w;
    for (size_t i = 0; colours && i < m.data.size(); ++i) {
      const edgeseg::Color want = m.data[i] < 4 ? palette[m.data[i]] : edgeseg::Color{0, 0, 0};
      colours = std::equal(want.begin(), want.end(), &rgb.data[3 * i]);
    }
    CHECK(colours);
  }

  // All five filters, one per row, decoded against hand-computed values.
  {
    const int w = 3;
    const uint8_t want[5][3] = {{10, 20, 30}, {11, 33, 60}, {20, 30, 40}, {30, 50, 60}, {40, 55, 70}};
    // Each row's filtered bytes, worked out by hand from `want` (mod 256):
    const std::vector<uint8_t> raw = {
        0, 10, 20, 30,    // None
        1, 11, 22, 27,    // Sub: x - left
        2, 9, 253, 236,   // Up: x - above
        3, 20, 20, 15,    // Average: x - floor((left + above) / 2)
        4, 10, 5, 10};    // Paeth: the predictor picks `above` in all three columns here
    const std::vector<uint8_t> png = hand_png(w, 5, 0, raw);
    const edgeseg::LabelMap m = edgeseg::detail::decode_label_png(png, "hand");
    bool same = m.height == 5 && m.width == 3;
    for (int y = 0; same && y < 5; ++y)
      for (int x = 0; x < 3; ++x) same = same && m.at(y, x) == want[y][x];
    CHECK(same);
    std::vector<uint8_t> corrupt = png;
    corrupt[20] ^= 1;  // inside IHDR: its CRC no longer matches
    CHECK_ERROR(edgeseg::detail::decode_label_png(corrupt, "corrupt"), "CRC");
    CHECK_ERROR(edgeseg::detail::decode_label_png({1, 2, 3}, "junk"), "not a PNG");
  }

  // read_image: grayscale is repeated into R, G, B; RGBA loses its alpha (not composited).
  {
    save(dir.file("gray.png"), hand_png(2, 1, 0, {0, 7, 200}));
    const edgeseg::Image g = edgeseg::read_image(dir.file("gray.png"));
    CHECK(g.width == 2 && g.height == 1 &&
          g.data == (std::vector<uint8_t>{7, 7, 7, 200, 200, 200}));
    save(dir.file("rgba.png"), hand_png(2, 1, 6, {0, 1, 2, 3, 0, 4, 5, 6, 255}));
    const edgeseg::Image a = edgeseg::read_image(dir.file("rgba.png"));
    CHECK(a.data == (std::vector<uint8_t>{1, 2, 3, 4, 5, 6}));
  }

  // RGB PNG round trip, and the errors.
  {
    edgeseg::Image img;
    img.height = 5;
    img.width = 9;
    for (int i = 0; i < 5 * 9 * 3; ++i) img.data.push_back(static_cast<uint8_t>(i * 13));
    edgeseg::write_image_png(dir.file("rgb.png"), img);
    CHECK(edgeseg::read_image(dir.file("rgb.png")).data == img.data);
    CHECK_ERROR(edgeseg::read_image(dir.file("nope.png")), "not found");
    check::write_text(dir.file("junk.png"), "this is not an image");
    CHECK_ERROR(edgeseg::read_image(dir.file("junk.png")), "cannot decode");
    CHECK_ERROR(edgeseg::write_image_png(dir.file("x.png"), edgeseg::Image{}), "empty");
    CHECK_ERROR(edgeseg::write_label_png(dir.file("x.png"), edgeseg::LabelMap{}, {}), "empty");
    edgeseg::LabelMap one{1, 1, {0}};
    CHECK_ERROR(edgeseg::write_label_png(dir.file("no/such/dir/x.png"), one, {}), "cannot write");
  }
  return check::result();
}
