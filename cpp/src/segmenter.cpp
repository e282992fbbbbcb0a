// Segmenter: edgeseg/runtime/segmenter.py and core/frames.py in C++. The steps and their order
// are the Python Pipeline's (prepare -> engine -> finish); each numeric step lives in
// preprocess.cpp, where it is matched to its Python counterpart.
#include "edgeseg/segmenter.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <string_view>

#include "backend.hpp"
#include "edgeseg/preprocess.hpp"
#include "engines_generated.hpp"

#ifndef EDGESEG_VERSION
#define EDGESEG_VERSION "0.0.0"
#endif

namespace edgeseg {
using detail::DType;
using detail::TensorView;

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

// numpy's basic slicing, start:stop clipped to the axis: what the Python crop does when
// an output map is smaller than the letterbox region (labels_lowres).
std::pair<int, int> clip_range(int start, int length, int64_t axis) {
  const int a = static_cast<int>(std::min<int64_t>(start, axis));
  const int b = static_cast<int>(std::min<int64_t>(static_cast<int64_t>(start) + length, axis));
  return {a, std::max(a, b)};
}

// choose() opens engines by name: an engine added to the Python table with cpp=True must
// get its branch there before this compiles.
constexpr bool opens(std::string_view name) { return name == "tensorrt" || name == "openvino"; }
constexpr bool opens_every_engine() {
  for (std::string_view name : detail::kEngineNames)
    if (!opens(name)) return false;
  return true;
}
static_assert(opens_every_engine(),
              "engines_generated.hpp names an engine Segmenter::Impl::choose cannot open");

}  // namespace

struct Segmenter::Impl {
  detail::Meta meta;
  std::unique_ptr<detail::Backend> engine;
  std::string backend, reason, model_file;
  Timings timings;
  // The run-size uint8 RGB image and the graph input; sized per call, so they reallocate
  // only when a run size needs more room than any before.
  std::vector<uint8_t> canvas;
  std::vector<float> input_f32;
  std::vector<uint8_t> input_u8;

  void choose(const Options& o);
  void open_openvino(const Options& o);
  std::array<int, 2> run_size(int h, int w) const;
  // A dynamic-size artifact's range narrowed to the engine profile's sizes (Python's
  // runtime.segmenter.engine_meta): images are then fitted into what the engine takes.
  void narrow_to_profile(const detail::EngineBuild& e) {
    auto& in = meta.input;
    if (!in.dynamic_size() || !e.has_sizes) return;
    for (int i = 0; i < 2; ++i) {
      in.min_size[i] = std::max(in.min_size[i], e.min_size[i]);
      in.max_size[i] = std::min(in.max_size[i], e.max_size[i]);
      if (in.min_size[i] > in.max_size[i])
        throw Error(meta.dir + ": the engine " + e.file + "'s optimisation profile and "
                    "input.size_range share no size; rebuild it with edgeseg build (--shapes "
                    "within the range)");
    }
  }
  // The graph input's shape at a run size: NHWC frames for a fused graph, else NCHW.
  std::vector<int64_t> input_shape(int h, int w) const {
    if (meta.input.fused) return {1, h, w, 3};
    return {1, 3, h, w};
  }
  LabelMap finish(const TensorView& y, const Geometry& g, int h, int w) const;
};

void Segmenter::Impl::open_openvino(const Options& o) {
  if (!detail::openvino_compiled())  // the stub's error, before any about the artifact
    detail::make_openvino_backend({}, {}, 0, {}, {});
  // The IR when the artifact has one (what OpenVINO users deploy), else the ONNX: the
  // Python backends' model_file rule.
  if (meta.has_file("model.xml")) model_file = "model.xml";
  else if (meta.has_file("model.onnx")) model_file = "model.onnx";
  else
    throw Error(meta.dir + ": the artifact lists no model file OpenVINO can run (model.xml "
                "or model.onnx in meta.json's files); re-export it");
  std::string device = o.device;  // OpenVINO's names are upper case; accept "cpu" as Python does
  std::transform(device.begin(), device.end(), device.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  engine = detail::make_openvino_backend(meta.path(model_file), device.empty() ? "CPU" : device,
                                         o.threads, meta.output.name,
                                         input_shape(meta.input.height, meta.input.width));
  backend = "openvino";
}

void Segmenter::Impl::choose(const Options& o) {
  const std::string req = detail::resolve_backend(o.backend);  // "auto" or an engine's name
  if (req == "openvino") {
    open_openvino(o);
    reason = "requested";
    return;
  }
  // Probing initialises CUDA (slow, and pointless without an engine to run).
  const detail::TensorRtPlatform platform =
      meta.engines.empty() ? detail::TensorRtPlatform{} : detail::tensorrt_platform();
  std::string why_not;
  const detail::EngineBuild* fit = nullptr;
  for (const auto& e : meta.engines) {
    std::string why;
    if (detail::tensorrt_engine_fits(e, platform, &why)) {
      fit = &e;
      break;
    }
    if (why_not.empty()) why_not = why;
  }
  auto open_tensorrt = [&](const char* why) {
    narrow_to_profile(*fit);
    engine = detail::make_tensorrt_backend(meta, *fit, meta.output.name);
    backend = "tensorrt";
    model_file = fit->file;
    reason = why;
  };
  if (req == "tensorrt") {
    if (meta.engines.empty())
      throw Error(meta.dir + ": meta.json records no TensorRT engine; build one on this "
                  "machine (edgeseg build --backend tensorrt) or use --backend openvino");
    if (!platform.compiled)  // the stub's error: this build has no TensorRT
      detail::make_tensorrt_backend(meta, meta.engines[0], meta.output.name);
    if (!fit) throw Error(why_not);
    open_tensorrt("requested");
    return;
  }
  // auto: the first engine of the order that can run here; the reason says why the ones
  // before it could not.
  std::string skipped;
  for (std::string_view name : detail::kAutoOrder) {
    std::string why;
    if (name == "tensorrt") {
      if (fit) {
        open_tensorrt("a TensorRT engine built for this GPU");
        return;
      }
      if (meta.engines.empty()) why = "no TensorRT engine in meta.json";
      else if (!platform.compiled)
        why = "TensorRT engines listed, but this runtime has no TensorRT";
      else why = "no TensorRT engine fits: " + why_not;
    } else if (name == "openvino") {
      if (detail::openvino_compiled()) {
        open_openvino(o);
        reason = skipped.empty() ? "the first choice of auto" : skipped;
        return;
      }
      why = "this runtime has no OpenVINO (built with -DEDGESEG_WITH_OPENVINO=OFF)";
    }
    skipped += (skipped.empty() ? "" : "; ") + why;
  }
  throw Error(meta.dir + ": no backend of this runtime can run it: " + skipped);
}

Segmenter::Segmenter(const std::string& artifact_dir, Options options)
    : impl_(std::make_unique<Impl>()) {
  impl_->meta = detail::read_meta(artifact_dir, options.verify);
  impl_->choose(options);
}

Segmenter::~Segmenter() = default;
Segmenter::Segmenter(Segmenter&&) noexcept = default;
Segmenter& Segmenter::operator=(Segmenter&&) noexcept = default;

LabelMap Segmenter::predict(const Image& rgb) {
  if (!rgb.empty() && rgb.data.size() != static_cast<size_t>(rgb.height) * rgb.width * 3)
    throw Error("predict: the Image holds " + std::to_string(rgb.data.size()) + " bytes, not " +
                std::to_string(rgb.height) + "x" + std::to_string(rgb.width) + "x3 RGB");
  return predict(rgb.data.data(), rgb.height, rgb.width, 0);
}

LabelMap Segmenter::predict(const uint8_t* rgb, int height, int width, size_t stride) {
  if (!impl_) throw Error("predict: this Segmenter was moved from");
  if (height <= 0 || width <= 0)
    throw Error("predict: the image is empty (" + std::to_string(height) + "x" +
                std::to_string(width) + "); check that decoding or capture succeeded");
  if (!rgb) throw Error("predict: the image pointer is null; pass the first byte of a packed "
                        "RGB frame");
  const size_t packed = static_cast<size_t>(width) * 3;
  if (stride == 0) stride = packed;
  if (stride < packed)
    throw Error("predict: row_stride_bytes " + std::to_string(stride) + " is less than width "
                "* 3 = " + std::to_string(packed) + "; pass 0 for packed RGB rows");
  Impl& s = *impl_;
  const auto& in = s.meta.input;
  const auto t0 = std::chrono::steady_clock::now();

  // Pipeline.for_image: the size this image runs at (the graph's, or within its range).
  const auto [net_h, net_w] = s.run_size(height, width);
  const size_t net_row = static_cast<size_t>(net_w) * 3;
  s.canvas.resize(net_row * net_h);  // a no-op while the run size stays the same

  // Preprocess.resize_image: the content resized, letterbox padding in the rounded mean.
  const Geometry g = letterbox_geometry(height, width, net_h, net_w, in.letterbox);
  if (in.letterbox) {
    uint8_t pad[3];
    for (int c = 0; c < 3; ++c)
      pad[c] = static_cast<uint8_t>(std::clamp(std::nearbyint(in.mean[c]), 0.0, 255.0));
    for (size_t i = 0; i < s.canvas.size(); i += 3) std::copy(pad, pad + 3, &s.canvas[i]);
  }
  uint8_t* content = s.canvas.data() + g.top * net_row + static_cast<size_t>(g.left) * 3;
  resize_bilinear(rgb, height, width, stride, 3, content, g.height, g.width, net_row);

  // graph_input: raw frames for a fused graph, else normalised NCHW.
  TensorView x;
  if (in.fused) {
    const bool bgr = in.color == "BGR";
    s.input_u8.resize(s.canvas.size());
    for (size_t i = 0; i < s.canvas.size(); i += 3)
      for (int c = 0; c < 3; ++c) s.input_u8[i + c] = s.canvas[i + (bgr ? 2 - c : c)];
    x = {DType::U8, s.input_shape(net_h, net_w), s.input_u8.data()};
  } else {
    s.input_f32.resize(s.canvas.size());
    normalize_nchw(s.canvas.data(), net_h, net_w, in.mean, in.std, in.network_color == "BGR",
                   s.input_f32.data());
    x = {DType::F32, s.input_shape(net_h, net_w), s.input_f32.data()};
  }
  s.timings.preprocess_ms = ms_since(t0);

  const auto t1 = std::chrono::steady_clock::now();
  const TensorView y = s.engine->infer(x);
  s.timings.compute_ms = ms_since(t1);

  const auto t2 = std::chrono::steady_clock::now();
  LabelMap labels = s.finish(y, g, height, width);
  s.timings.postprocess_ms = ms_since(t2);
  s.timings.total_ms = ms_since(t0);
  return labels;
}

std::array<int, 2> Segmenter::Impl::run_size(int h, int w) const {
  const auto& in = meta.input;
  if (!in.dynamic_size()) return {in.height, in.width};
  return fit_size(h, w, in.min_size, in.max_size);
}

// Pipeline.finish: scores -> crop, bilinear to the image, argmax; labels -> crop, nearest.
// The crop is the letterbox geometry at the run size, clipped to the output map's own H, W.
LabelMap Segmenter::Impl::finish(const TensorView& y, const Geometry& g, int h, int w) const {
  const auto& out = meta.output;
  const std::vector<int64_t>& sh = y.shape;
  LabelMap labels;
  labels.height = h;
  labels.width = w;
  labels.data.resize(static_cast<size_t>(h) * w);
  if (out.scores()) {
    if (y.dtype != DType::F32)
      throw Error(meta.dir + ": meta.json says the graph outputs " + out.kind + " but it "
                  "returns " + detail::dtype_name(y.dtype) + "; the artifact is inconsistent, "
                  "re-export it");
    if (sh.size() != 4 || sh[0] < 1 || sh[2] < 1 || sh[3] < 1)
      throw Error(meta.dir + ": a score output must be N x C x H x W, got " + shape_text(sh) +
                  "; re-export the artifact");
    if (sh[1] != meta.num_classes)
      throw Error(meta.dir + ": the graph outputs " + std::to_string(sh[1]) + " class scores "
                  "but meta.json says " + std::to_string(meta.num_classes) + " classes; the "
                  "artifact is inconsistent, re-export it");
    const auto rows = clip_range(g.top, g.height, sh[2]);
    const auto cols = clip_range(g.left, g.width, sh[3]);
    if (rows.second == rows.first || cols.second == cols.first)
      throw Error(meta.dir + ": the score map " + shape_text(sh) + " does not cover the "
                  "image region of the input; re-export the artifact");
    const size_t plane = static_cast<size_t>(sh[2] * sh[3]);
    const float* src = static_cast<const float*>(y.data) +
                       static_cast<size_t>(rows.first) * sh[3] + cols.first;
    resize_scores_argmax(src, static_cast<int>(sh[1]), rows.second - rows.first,
                         cols.second - cols.first, plane, static_cast<size_t>(sh[3]),
                         labels.data.data(), h, w);
    return labels;
  }
  const bool shape_ok = (sh.size() == 3 && sh[0] >= 1) ||
                        (sh.size() == 4 && sh[0] >= 1 && sh[1] == 1);
  if (!shape_ok || sh[sh.size() - 2] < 1 || sh.back() < 1)
    throw Error(meta.dir + ": a label output must be N x H x W, got " + shape_text(sh) +
                "; re-export the artifact");
  if (y.dtype == DType::F32)
    throw Error(meta.dir + ": meta.json says the graph outputs " + out.kind + " but it returns "
                "float32 scores; the artifact is inconsistent, re-export it");
  const int64_t H = sh[sh.size() - 2], W = sh.back();
  const auto rows = clip_range(g.top, g.height, H);
  const auto cols = clip_range(g.left, g.width, W);
  const int ch = rows.second - rows.first, cw = cols.second - cols.first;
  if (ch == 0 || cw == 0)
    throw Error(meta.dir + ": the label map " + shape_text(sh) + " does not cover the image "
                "region of the input; re-export the artifact");
  // .astype(np.uint8): the same wrap-around for wider integer ids.
  std::vector<uint8_t> crop(static_cast<size_t>(ch) * cw);
  for (int r = 0; r < ch; ++r) {
    const size_t base = static_cast<size_t>(rows.first + r) * W + cols.first;
    uint8_t* d = &crop[static_cast<size_t>(r) * cw];
    for (int c = 0; c < cw; ++c) {
      switch (y.dtype) {
        case DType::U8: d[c] = static_cast<const uint8_t*>(y.data)[base + c]; break;
        case DType::I32: d[c] = static_cast<uint8_t>(static_cast<const int32_t*>(y.data)[base + c]); break;
        case DType::I64: d[c] = static_cast<uint8_t>(static_cast<const int64_t*>(y.data)[base + c]); break;
        case DType::F32: break;
      }
    }
  }
  resize_nearest(crop.data(), ch, cw, static_cast<size_t>(cw), labels.data.data(), h, w);
  return labels;
}

Image Segmenter::colorize(const LabelMap& labels) const {
  if (labels.empty() || labels.data.size() != static_cast<size_t>(labels.height) * labels.width)
    throw Error("colorize: the label map is empty or its data does not match its size");
  // Ids without a palette entry (255 = ignore) are drawn black, as the Python colorize.
  Color lut[256] = {};
  for (size_t i = 0; i < impl_->meta.palette.size() && i < 256; ++i) lut[i] = impl_->meta.palette[i];
  Image img;
  img.height = labels.height;
  img.width = labels.width;
  img.data.resize(labels.data.size() * 3);
  for (size_t i = 0; i < labels.data.size(); ++i)
    std::copy(lut[labels.data[i]].begin(), lut[labels.data[i]].end(), &img.data[3 * i]);
  return img;
}

Image Segmenter::overlay(const Image& rgb, const LabelMap& labels, double alpha) const {
  if (!(alpha >= 0.0 && alpha <= 1.0))
    throw Error("overlay: alpha must be within [0, 1], got " + std::to_string(alpha));
  if (rgb.height != labels.height || rgb.width != labels.width ||
      rgb.data.size() != labels.data.size() * 3)
    throw Error("overlay: the image (" + std::to_string(rgb.height) + "x" +
                std::to_string(rgb.width) + ") and the labels (" +
                std::to_string(labels.height) + "x" + std::to_string(labels.width) +
                ") differ in size; pass the image the labels were predicted from");
  const Image color = colorize(labels);
  // float32 as the Python (numpy casts the Python floats 1 - alpha and alpha to float32):
  // image * (1 - alpha) + color * alpha, each step rounded, then rounded half to even.
  const float keep = static_cast<float>(1.0 - alpha);
  const float mix = static_cast<float>(alpha);
  Image out = rgb;
  for (size_t i = 0; i < out.data.size(); ++i) {
    const float a = static_cast<float>(rgb.data[i]) * keep;
    const float b = static_cast<float>(color.data[i]) * mix;
    out.data[i] = static_cast<uint8_t>(std::clamp(std::nearbyint(a + b), 0.0f, 255.0f));
  }
  return out;
}

const std::string& Segmenter::backend() const { return impl_->backend; }
const std::string& Segmenter::backend_reason() const { return impl_->reason; }
const std::string& Segmenter::model_file() const { return impl_->model_file; }
const std::vector<std::string>& Segmenter::classes() const { return impl_->meta.class_names; }
const Palette& Segmenter::palette() const { return impl_->meta.palette; }
int Segmenter::num_classes() const { return impl_->meta.num_classes; }
std::array<int, 2> Segmenter::input_size() const {
  return {impl_->meta.input.height, impl_->meta.input.width};
}
std::array<int, 2> Segmenter::run_size(int height, int width) const {
  if (height <= 0 || width <= 0)
    throw Error("run_size: the image size " + std::to_string(height) + "x" +
                std::to_string(width) + " is empty; pass the height and width of a frame");
  return impl_->run_size(height, width);
}
std::array<std::array<int, 2>, 2> Segmenter::size_range() const {
  return {impl_->meta.input.min_size, impl_->meta.input.max_size};
}
const std::string& Segmenter::output_kind() const { return impl_->meta.output.kind; }
const Timings& Segmenter::last_timings() const { return impl_->timings; }

std::string build_info() {
  std::string engines;
  if (detail::openvino_compiled()) engines = "openvino " + detail::openvino_version();
#ifdef EDGESEG_HAVE_TENSORRT
  engines += engines.empty() ? "tensorrt" : ", tensorrt";
#endif
  return std::string("edgeseg runtime ") + EDGESEG_VERSION + " (" + engines + ")";
}

}  // namespace edgeseg
