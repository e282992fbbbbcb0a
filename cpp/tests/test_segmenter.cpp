// The Segmenter on tiny hand-made artifacts (tiny_artifact.hpp): every meta.json error,
// every image error, and label maps that can be predicted exactly for stretch, letterbox,
// BGR networks, fused uint8 graphs, label outputs, and graphs with a dynamic batch or a
// dynamic size (run sizes, compilations per size).
#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "artifact.hpp"
#include "check.hpp"
#include "edgeseg/preprocess.hpp"
#include "edgeseg/segmenter.hpp"
#include "tiny_artifact.hpp"

namespace {

edgeseg::Image random_image(int h, int w, unsigned seed) {
  std::mt19937 rng(seed);
  edgeseg::Image img{h, w, std::vector<uint8_t>(static_cast<size_t>(h) * w * 3)};
  for (auto& v : img.data) v = static_cast<uint8_t>(rng() % 6 * 50);  // ties happen
  return img;
}

// The expected label of each pixel: the first largest channel, in `order` (0=R, 1=G, 2=B).
edgeseg::LabelMap argmax(const edgeseg::Image& img, const int order[3]) {
  edgeseg::LabelMap m{img.height, img.width, {}};
  for (size_t i = 0; i < img.data.size(); i += 3) {
    int best = 0;
    for (int k = 1; k < 3; ++k)
      if (img.data[i + order[k]] > img.data[i + order[best]]) best = k;
    m.data.push_back(static_cast<uint8_t>(best));
  }
  return m;
}

// The identity graph's stretch pipeline composed from its documented steps at a run size:
// resize to it, normalise (mean 0, std 1), scores back to the image's size, argmax.
std::vector<uint8_t> by_hand(const edgeseg::Image& img, int rh, int rw) {
  std::vector<uint8_t> net(static_cast<size_t>(rh) * rw * 3);
  edgeseg::resize_bilinear(img.data.data(), img.height, img.width, img.width * 3, 3,
                           net.data(), rh, rw, rw * 3);
  std::vector<float> x(net.size());
  edgeseg::normalize_nchw(net.data(), rh, rw, {0, 0, 0}, {1, 1, 1}, false, x.data());
  std::vector<uint8_t> want(static_cast<size_t>(img.height) * img.width);
  edgeseg::resize_scores_argmax(x.data(), 3, rh, rw, static_cast<size_t>(rh) * rw, rw,
                                want.data(), img.height, img.width);
  return want;
}

std::vector<uint8_t> red(const edgeseg::Image& img) {
  std::vector<uint8_t> r;
  for (size_t i = 0; i < img.data.size(); i += 3) r.push_back(img.data[i]);
  return r;
}

using Size = std::array<int, 2>;

std::string make(const check::TempDir& root, const std::string& name, const tiny::Spec& s) {
  const std::string dir = root.file(name);
  std::filesystem::create_directories(dir);
  tiny::write_artifact(dir, s);
  return dir;
}

const int kRGB[3] = {0, 1, 2}, kBGR[3] = {2, 1, 0};

}  // namespace

int main() {
  check::TempDir root("edgeseg-seg");
  edgeseg::Options opt;
  opt.threads = 1;

  // Stretch, image at the network size: no resize, labels = argmax of R, G, B.
  const std::string id = make(root, "identity", {});
  {
    edgeseg::Segmenter seg(id, opt);
    CHECK(seg.backend() == "openvino" && seg.model_file() == "model.xml");
    CHECK(seg.num_classes() == 3 && seg.classes().size() == 3 && seg.palette().size() == 3);
    CHECK(seg.input_size()[0] == 8 && seg.input_size()[1] == 16);
    // One size: every image runs at it.
    CHECK(seg.run_size(19, 45) == seg.input_size() && seg.run_size(1, 1) == seg.input_size());
    CHECK(seg.size_range()[0] == seg.input_size() && seg.size_range()[1] == seg.input_size());
    const edgeseg::Image img = random_image(8, 16, 1);
    const edgeseg::LabelMap got = seg.predict(img);
    CHECK(got.height == 8 && got.width == 16 && got.data == argmax(img, kRGB).data);
    CHECK(seg.last_timings().total_ms >= seg.last_timings().compute_ms);

    // A strided view of the same pixels (a crop of a wider frame) gives the same labels.
    std::vector<uint8_t> wide(8 * 20 * 3, 7);
    for (int y = 0; y < 8; ++y)
      std::copy(&img.data[y * 48], &img.data[y * 48] + 48, &wide[y * 60]);
    CHECK(seg.predict(wide.data(), 8, 16, 60).data == got.data);

    // Any other size: the pipeline equals its documented steps composed by hand.
    const edgeseg::Image big = random_image(19, 45, 2);
    CHECK(seg.predict(big).data == by_hand(big, 8, 16));

    // Pictures: colorize with the palette, overlay blended half and half (rounded to even).
    const edgeseg::Image col = seg.colorize(got);
    CHECK(col.data.size() == got.data.size() * 3 && col.data[0] == seg.palette()[got.data[0]][0]);
    const edgeseg::Image ov = seg.overlay(img, got, 0.5);
    const float f = img.data[1] * 0.5f + col.data[1] * 0.5f;
    CHECK(ov.data[1] == static_cast<uint8_t>(std::nearbyint(f)));
    CHECK(seg.overlay(img, got, 0.0).data == img.data);

    // Image errors.
    CHECK_ERROR(seg.predict(nullptr, 8, 16), "null");
    CHECK_ERROR(seg.predict(img.data.data(), 0, 16), "empty");
    CHECK_ERROR(seg.predict(edgeseg::Image{}), "empty");
    CHECK_ERROR(seg.predict(img.data.data(), 8, 16, 10), "row_stride_bytes");
    CHECK_ERROR(seg.predict(edgeseg::Image{2, 2, {1, 2, 3}}), "bytes");
    CHECK_ERROR(seg.overlay(random_image(4, 4, 3), got), "differ in size");
    CHECK_ERROR(seg.overlay(img, got, 1.5), "alpha");
  }

  // A BGR network: the channels are reversed after normalisation.
  {
    tiny::Spec s;
    s.network_color = "BGR";
    edgeseg::Segmenter seg(make(root, "bgr", s), opt);
    const edgeseg::Image img = random_image(8, 16, 4);
    CHECK(seg.predict(img).data == argmax(img, kBGR).data);
  }
  // Letterbox: content at scale 1 in the middle, padding cropped off again.
  {
    tiny::Spec s;
    s.resize = "letterbox";
    edgeseg::Segmenter seg(make(root, "letterbox", s), opt);
    for (auto [h, w] : {std::pair{4, 16}, {8, 8}, {1, 16}, {8, 3}}) {  // scale 1 each
      const edgeseg::Image img = random_image(h, w, 5 + h);
      CHECK(seg.predict(img).data == argmax(img, kRGB).data);
    }
    CHECK(seg.predict(random_image(30, 41, 9)).height == 30);
  }
  // Fused uint8 graphs: frames in the graph's colour order.
  for (const char* color : {"RGB", "BGR"}) {
    tiny::Spec s;
    s.kind = "fused";
    s.color = color;
    edgeseg::Segmenter seg(make(root, std::string("fused-") + color, s), opt);
    const edgeseg::Image img = random_image(8, 16, 6);
    CHECK(seg.predict(img).data == argmax(img, color[0] == 'B' ? kBGR : kRGB).data);
  }
  // Label outputs (uint8 N x H x W): cropped and nearest-resized.
  {
    tiny::Spec s;
    s.kind = "labels";
    s.resize = "letterbox";
    edgeseg::Segmenter seg(make(root, "labels", s), opt);
    CHECK(seg.output_kind() == "labels");
    const edgeseg::Image img = random_image(4, 16, 7);
    CHECK(seg.predict(img).data == red(img));
  }

  // A dynamic size (input.dynamic "size", range 4x6 to 12x20, nominal 8x16).
  const std::string range = R"({"min": [4, 6], "max": [12, 20]})";
  {
    tiny::Spec s;
    s.dynamic = "size";
    s.size_range = range;
    edgeseg::Segmenter seg(make(root, "dynamic", s), opt);
    CHECK(seg.input_size() == (Size{8, 16}));
    CHECK(seg.size_range()[0] == (Size{4, 6}) && seg.size_range()[1] == (Size{12, 20}));
    // Inside the range an image runs at its own size: labels = its argmax, no resize. 18
    // sizes, more than the 16 compilations kept, then the first (evicted) size again.
    for (int h = 4; h <= 12; ++h)
      for (int w : {h + 5, h + 7}) {
        const edgeseg::Image img = random_image(h, w, 20 + h + w);
        CHECK(seg.run_size(h, w) == (Size{h, w}));
        CHECK(seg.predict(img).data == argmax(img, kRGB).data);
      }
    const edgeseg::Image first = random_image(4, 9, 30);
    CHECK(seg.predict(first).data == argmax(first, kRGB).data);
    // Outside it: larger than the max, smaller than the min, aspect ratios the range cannot
    // hold. Run sizes from the Python fit_size; labels = the steps composed at that size.
    const std::array<int, 4> outside[] = {
        {30, 41, 12, 16}, {2, 3, 4, 6}, {1, 100, 4, 20}, {13, 7, 12, 6}, {40, 9, 12, 6}};
    for (auto [h, w, rh, rw] : outside) {
      CHECK(seg.run_size(h, w) == (Size{rh, rw}));
      const edgeseg::Image img = random_image(h, w, static_cast<unsigned>(h * w));
      const edgeseg::LabelMap got = seg.predict(img);
      CHECK(got.height == h && got.width == w && got.data == by_hand(img, rh, rw));
    }
    CHECK_ERROR(seg.run_size(0, 5), "empty");
  }
  // The fused and label graphs too, letterboxed: inside the range at scale 1 (no padding,
  // exact labels); outside, a map at the image's size.
  for (const std::string kind : {"identity", "fused", "labels"}) {
    tiny::Spec s;
    s.kind = kind;
    s.resize = "letterbox";
    s.dynamic = "size";
    s.size_range = range;
    edgeseg::Segmenter seg(make(root, "dynamic-" + kind, s), opt);
    const edgeseg::Image img = random_image(5, 19, 8);
    CHECK(seg.predict(img).data == (kind == "labels" ? red(img) : argmax(img, kRGB).data));
    const edgeseg::LabelMap tall = seg.predict(random_image(40, 9, 9));  // runs at 12x6
    CHECK(tall.height == 40 && tall.width == 9);
  }
  // A dynamic batch: compiled for batch 1 at the artifact's one size.
  {
    tiny::Spec s;
    s.dynamic = "batch";
    edgeseg::Segmenter seg(make(root, "dynamic-batch", s), opt);
    CHECK(seg.run_size(3, 3) == (Size{8, 16}));
    const edgeseg::Image img = random_image(8, 16, 10);
    CHECK(seg.predict(img).data == argmax(img, kRGB).data);
  }

  // meta.json and file errors, each naming the problem.
  auto spec_error = [&](const std::string& name, const tiny::Spec& s, const char* needle) {
    const std::string dir = make(root, name, s);
    CHECK_ERROR(edgeseg::Segmenter(dir, opt), needle);
  };
  CHECK_ERROR(edgeseg::Segmenter(root.file("does-not-exist"), opt), "artifact directory not found");
  std::filesystem::create_directories(root.file("empty"));
  CHECK_ERROR(edgeseg::Segmenter(root.file("empty"), opt), "no meta.json");
  {
    const std::string dir = make(root, "badjson", {});
    check::write_text(dir + "/meta.json", "{\"schema\": \"edgeseg-artifact\", ");
    CHECK_ERROR(edgeseg::Segmenter(dir, opt), "not valid JSON");
  }
  tiny::Spec s;
  s.schema = "something-else";
  spec_error("schema", s, "not an edgeseg artifact");
  s = {};
  s.schema_version = 2;
  spec_error("version", s, "newer than this edgeseg runtime reads");
  s = {};
  s.output_kind = "heatmap";
  spec_error("kind", s, "unknown output kind");
  s = {};
  s.num_classes = 300;
  spec_error("classes", s, "1..256");
  s = {};
  s.dynamic = "height";
  spec_error("dynamic", s, "input.dynamic must be null, \"batch\" or \"size\", got \"height\"");
  s.dynamic = "size";  // input.size_range: missing, malformed, inverted, not holding the size
  spec_error("range-missing", s, "input.size_range is missing");
  const std::pair<const char*, const char*> bad_ranges[] = {
      {"[4, 6]", "input.size_range must be {"},
      {R"({"min": [4, 6]})", "input.size_range.max is missing"},
      {R"({"min": [4, 6], "max": [12, 20, 3]})", "input.size_range.max must be [height, width]"},
      {R"({"min": [0, 6], "max": [12, 20]})", "input.size_range.min must have positive sides"},
      {R"({"min": [4, 6.5], "max": [12, 20]})", "input.size_range.min must be an integer"},
      {R"({"min": [12, 6], "max": [4, 20]})", "needs min <= max on both sides, got 12x6 to 4x20"},
      {R"({"min": [4, 6], "max": [6, 20]})", "8x16 (the nominal size) is outside"},
  };
  int case_no = 0;
  for (const auto& [text, needle] : bad_ranges) {
    s.size_range = text;
    spec_error("range-" + std::to_string(case_no++), s, needle);
  }
  {
    const std::string dir = make(root, "missing", {});
    std::filesystem::remove(dir + "/model.xml");
    CHECK_ERROR(edgeseg::Segmenter(dir, opt), "model.xml is listed in meta.json but missing");
  }
  {
    const std::string dir = make(root, "tampered", {});
    std::ofstream(dir + "/model.xml", std::ios::app) << "<!-- changed -->\n";
    CHECK_ERROR(edgeseg::Segmenter(dir, opt), "sha256 differs from meta.json");
    edgeseg::Options no_verify = opt;
    no_verify.verify = false;  // the documented escape hatch loads it
    CHECK(edgeseg::Segmenter(dir, no_verify).backend() == "openvino");
  }
  {
    s = {};
    s.num_classes = 4;  // meta.json and graph disagree: refused at the first predict
    edgeseg::Segmenter seg(make(root, "inconsistent", s), opt);
    CHECK_ERROR(seg.predict(random_image(8, 16, 1)), "class scores but meta.json says 4");
  }

  // Backends: unknown names and unavailable engines are errors, never a silent fallback.
  edgeseg::Options o = opt;
  o.backend = "cuda-magic";
  CHECK_ERROR(edgeseg::Segmenter(id, o), "unknown backend");
  o.backend = "tensorrt";
  CHECK_ERROR(edgeseg::Segmenter(id, o), "records no TensorRT engine");
  s = {};
  s.builds = "[{\"backend\": \"tensorrt\", \"file\": \"model.fp16.engine\", \"tensorrt\": "
             "\"10.3.0\", \"device\": \"Orin\", \"compute_capability\": \"8.7\"}]";
  const std::string with_engine = make(root, "engine", s);
#ifndef EDGESEG_HAVE_TENSORRT
  CHECK_ERROR(edgeseg::Segmenter(with_engine, o), "built without TensorRT");
#endif
  o.backend = "auto";  // an engine this machine cannot run: auto uses OpenVINO and says why
  {
    edgeseg::Segmenter seg(with_engine, o);
    CHECK(seg.backend() == "openvino" && seg.backend_reason().find("TensorRT") != std::string::npos);
  }
  // An engine's optimisation profile: its height/width bounds are read (a dynamic-size
  // artifact's run sizes are narrowed to them when that engine runs).
  s = {};
  s.dynamic = "size";
  s.size_range = R"({"min": [4, 6], "max": [12, 20]})";
  const std::string engine_fields = R"("backend": "tensorrt", "file": "model.a.engine",
      "tensorrt": "10.3.0", "compute_capability": "8.7", "profile": {"input": )";
  s.builds = "[{" + engine_fields + R"([[1, 3, 6, 8], [1, 3, 8, 16], [4, 3, 10, 18]]}}])";
  {
    const auto meta = edgeseg::detail::read_meta(make(root, "profiled", s), false);
    CHECK(meta.engines.size() == 1 && meta.engines[0].has_sizes);
    CHECK(meta.engines[0].min_size == (Size{6, 8}) && meta.engines[0].max_size == (Size{10, 18}));
  }
  s.builds = "[{" + engine_fields + R"([[1, 3, 6, 8], [1, 3, 8, 16]]}}])";
  CHECK_ERROR(edgeseg::detail::read_meta(make(root, "bad-profile", s), false),
              "must be [min, opt, max] shapes");
  return check::result();
}
