// A real artifact end to end: EDGESEG_TEST_ARTIFACT=<artifact dir> (skipped, exit 77, when
// unset). Odd image sizes up and down, determinism, class ids in range, the palette PNG
// round trip. With EDGESEG_TEST_IMAGE and EDGESEG_TEST_EXPECTED (a label PNG from the Python
// runtime, e.g. `edgeseg segment`), the label map must equal it byte for byte.
#include <cstdlib>
#include <random>
#include <string>

#include "check.hpp"
#include "edgeseg/segmenter.hpp"

int main() {
  const char* artifact = std::getenv("EDGESEG_TEST_ARTIFACT");
  if (!artifact || !*artifact) {
    std::fprintf(stderr, "EDGESEG_TEST_ARTIFACT is not set: skipped\n");
    return 77;
  }
  check::TempDir dir("edgeseg-e2e");
  edgeseg::Segmenter seg(artifact);
  std::fprintf(stderr, "%s: %s (%s), %s\n", artifact, seg.backend().c_str(),
               seg.backend_reason().c_str(), seg.output_kind().c_str());
  const auto net = seg.input_size();
  std::mt19937 rng(11);
  for (auto [h, w] : {std::pair{net[0], net[1]}, {97, 131}, {333, 517}, {64, 64}, {1, 1}}) {
    edgeseg::Image img{h, w, std::vector<uint8_t>(static_cast<size_t>(h) * w * 3)};
    for (size_t i = 0; i < img.data.size(); ++i)  // smooth-ish content with noise
      img.data[i] = static_cast<uint8_t>((i / 3 % w) * 255 / w / 2 + (i / 3 / w) * 127 / h + rng() % 16);
    const edgeseg::LabelMap a = seg.predict(img);
    const edgeseg::LabelMap b = seg.predict(img);
    CHECK(a.height == h && a.width == w && a.data.size() == static_cast<size_t>(h) * w);
    CHECK(a.data == b.data);
    bool in_range = true;
    for (uint8_t v : a.data) in_range = in_range && v < seg.num_classes();
    CHECK(in_range);
    edgeseg::write_label_png(dir.file("labels.png"), a, seg.palette());
    CHECK(edgeseg::read_label_png(dir.file("labels.png")).data == a.data);
    edgeseg::write_image_png(dir.file("overlay.png"), seg.overlay(img, a));
    CHECK(edgeseg::read_image(dir.file("overlay.png")).height == h);
  }
  const char* image = std::getenv("EDGESEG_TEST_IMAGE");
  const char* expected = std::getenv("EDGESEG_TEST_EXPECTED");
  if (image && expected && *image && *expected) {
    const edgeseg::LabelMap got = seg.predict(edgeseg::read_image(image));
    const edgeseg::LabelMap want = edgeseg::read_label_png(expected);
    size_t same = 0;
    for (size_t i = 0; i < got.data.size() && i < want.data.size(); ++i) same += got.data[i] == want.data[i];
    std::fprintf(stderr, "%s vs %s: %zu of %zu pixels equal\n", image, expected, same, want.data.size());
    CHECK(got.height == want.height && got.width == want.width && got.data == want.data);
  }
  return check::result();
}
