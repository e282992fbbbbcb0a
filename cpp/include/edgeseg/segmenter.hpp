// edgeseg C++ runtime: an artifact directory (meta.json + model files) in, label maps out.
//
//   edgeseg::Segmenter seg("artifacts/bisenetv1-512x1024-int8");
//   edgeseg::Image frame = edgeseg::read_image("street.png");
//   edgeseg::LabelMap labels = seg.predict(frame);          // class ids at the frame's size
//   edgeseg::write_label_png("labels.png", labels, seg.palette());
//
// The preprocessing and postprocessing are the Python runtime's (edgeseg/core/
// preprocess.py, frames.py) reproduced bit for bit, so a label map from this library
// equals the one `edgeseg.runtime.Segmenter(..., backend="openvino").predict` returns.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace edgeseg {

// The one exception type. Every message names the problem and how to fix it.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An 8-bit RGB image, rows packed (stride = width * 3).
struct Image {
  int height = 0;
  int width = 0;
  std::vector<uint8_t> data;  // height * width * 3, R G B per pixel
  bool empty() const { return height <= 0 || width <= 0; }
};

// One class id per pixel (the same ids as meta.json's classes.names).
struct LabelMap {
  int height = 0;
  int width = 0;
  std::vector<uint8_t> data;  // height * width
  bool empty() const { return height <= 0 || width <= 0; }
  uint8_t at(int y, int x) const { return data[static_cast<size_t>(y) * width + x]; }
};

using Color = std::array<uint8_t, 3>;
using Palette = std::vector<Color>;

struct Options {
  // "auto": TensorRT when it is compiled in and meta.json records an engine built for this
  // GPU and TensorRT version, else OpenVINO when it is compiled in. Or an engine by name or
  // alias, in any case, as in Python: "tensorrt" / "trt", "openvino" / "ov" (an explicit
  // choice that cannot run is an Error, never a silent fallback).
  std::string backend = "auto";
  std::string device = "CPU";  // OpenVINO device name ("CPU", "GPU")
  int threads = 0;             // OpenVINO inference threads; 0 = OpenVINO's default
  bool verify = true;          // check every listed file's sha256 against meta.json
};

// Milliseconds spent in the phases of the last predict() call.
struct Timings {
  double preprocess_ms = 0;   // resize (+ letterbox) and normalisation into the graph input
  double compute_ms = 0;      // the engine's synchronous call (copies to/from a GPU included)
  double postprocess_ms = 0;  // output -> label map at the image's size
  double total_ms = 0;        // the whole call, measured as one span
};

class Segmenter {
 public:
  explicit Segmenter(const std::string& artifact_dir, Options options = {});
  ~Segmenter();
  Segmenter(Segmenter&&) noexcept;
  Segmenter& operator=(Segmenter&&) noexcept;
  Segmenter(const Segmenter&) = delete;
  Segmenter& operator=(const Segmenter&) = delete;

  // Class ids for an RGB image of any size, packed 3 bytes per pixel; row_stride_bytes = 0
  // means width * 3. Not thread-safe: one Segmenter per thread.
  LabelMap predict(const uint8_t* rgb, int height, int width, size_t row_stride_bytes = 0);
  LabelMap predict(const Image& rgb);

  // The label map as a picture in the artifact's palette (ids without a colour: black).
  Image colorize(const LabelMap& labels) const;
  // The image with the colorized labels blended over it; alpha = label opacity in [0, 1]
  // (a double, as the Python's, so that any alpha rounds the same way).
  Image overlay(const Image& rgb, const LabelMap& labels, double alpha = 0.5) const;

  const std::string& backend() const;         // "openvino" or "tensorrt"
  const std::string& backend_reason() const;  // why auto chose it
  const std::string& model_file() const;      // the file the backend runs
  const std::vector<std::string>& classes() const;
  const Palette& palette() const;
  int num_classes() const;
  // Network input height, width: the graph's size, or a dynamic-size graph's nominal size.
  std::array<int, 2> input_size() const;
  // The network input size an image of height x width runs at: input_size() for a graph of
  // one size; for a dynamic-size artifact (meta.json input.size_range) the image's own size
  // brought into the range by edgeseg::fit_size (preprocess.hpp), as the Python run_size.
  std::array<int, 2> run_size(int height, int width) const;
  // The smallest and the largest run size, {min, max}: input_size() twice for a graph of one
  // size.
  std::array<std::array<int, 2>, 2> size_range() const;
  const std::string& output_kind() const;  // logits | probs | labels | labels_lowres
  const Timings& last_timings() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Decodes PNG, JPEG, BMP, TGA, PPM/PGM, GIF (first frame) with stb_image, always to 3
// channels: a grayscale image is repeated into R, G and B, an alpha channel is dropped
// (not composited), 16-bit samples keep their high byte (x >> 8; Pillow, which the Python
// CLI decodes with, clips 16-bit grayscale to 255 instead). JPEG decoders differ in their
// rounding, so compare runtimes on lossless files (PNG) when you need identical pixels.
Image read_image(const std::string& path);

// A palette PNG (colour type 3, 8 bits): pixel value = class id, PLTE = the palette padded
// to 256 entries with black (the format `edgeseg segment` writes).
void write_label_png(const std::string& path, const LabelMap& labels, const Palette& palette);
// The class ids of an 8-bit palette or grayscale PNG (what write_label_png writes).
LabelMap read_label_png(const std::string& path);
// An RGB PNG (overlays, colorized maps).
void write_image_png(const std::string& path, const Image& rgb);

// The runtime's version and what was compiled in (e.g. "0.1.0 (openvino, tensorrt)").
std::string build_info();

}  // namespace edgeseg
