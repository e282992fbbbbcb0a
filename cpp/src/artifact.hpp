// meta.json, read and checked as edgeseg/core/artifact.py's read_meta and the Python
// Pipeline check it, into plain structs: the rest of the runtime never touches JSON.
#pragma once

#include <array>
#include <string>
#include <utility>
#include <vector>

#include "edgeseg/segmenter.hpp"

namespace edgeseg::detail {

constexpr int kSchemaVersion = 1;  // the newest meta.json this runtime reads

struct InputSpec {
  std::string name;
  std::string dtype;  // float32 (normalised NCHW) or uint8 (NHWC frames, fused)
  int height = 0, width = 0;
  std::string color = "RGB";          // frame order a fused graph takes
  std::string network_color = "RGB";  // channel order after normalisation
  std::array<double, 3> mean{}, std{};
  bool letterbox = false;
  bool fused = false;
  std::string dynamic;  // "", "batch" or "size" (batch, height and width)
  // The sizes the graph takes, both ends included: input.size_range of a dynamic-size graph
  // (height, width is then its nominal size, inside), else height, width at both ends.
  std::array<int, 2> min_size{}, max_size{};
  bool dynamic_size() const { return dynamic == "size"; }
};

struct OutputSpec {
  std::string name;
  std::string kind;  // logits | probs | labels | labels_lowres
  std::string dtype;
  bool scores() const { return kind == "logits" || kind == "probs"; }
};

// A TensorRT engine recorded in meta.json's builds.
struct EngineBuild {
  std::string file;
  std::string tensorrt;            // the TensorRT version it was built with, "10.3.0"
  std::string device;              // the GPU's name
  std::string compute_capability;  // "8.7"
  std::string sha256;              // optional
  // The optimisation profile's smallest and largest input height/width (builds[].profile),
  // when it records one for the input; a dynamic-size artifact's run sizes stay inside.
  bool has_sizes = false;
  std::array<int, 2> min_size{}, max_size{};
};

struct Meta {
  std::string dir;
  int schema_version = 0;
  std::string model_name;
  std::string precision;
  int num_classes = 0;
  std::vector<std::string> class_names;
  Palette palette;
  InputSpec input;
  OutputSpec output;
  std::vector<std::pair<std::string, std::string>> files;  // name, sha256 (meta.json order)
  std::vector<EngineBuild> engines;
  bool has_file(const std::string& name) const;
  std::string path(const std::string& name) const;  // dir/name
};

// Throws edgeseg::Error naming the problem and the fix. With `verify`, every file listed in
// meta.json must exist and match its sha256.
Meta read_meta(const std::string& dir, bool verify);

}  // namespace edgeseg::detail
