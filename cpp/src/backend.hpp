// The engines behind one small interface. A backend runs a batch of one: host memory in,
// host memory out. Views, not copies: the output stays valid until the next infer().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "artifact.hpp"

namespace edgeseg::detail {

enum class DType { F32, U8, I32, I64 };

const char* dtype_name(DType t);
size_t dtype_size(DType t);

struct TensorView {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t elements() const {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    return n;
  }
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Runs the graph on `input` (a batch of one). Half-precision outputs come back as F32.
  virtual TensorView infer(const TensorView& input) = 0;
  virtual const std::string& name() const = 0;
};

// `requested` in any case: "auto", or the name of the engine it spells (engines_generated.hpp,
// the Python capability table's names and aliases); an Error listing the choices otherwise.
std::string resolve_backend(const std::string& requested);

// Whether this build has OpenVINO (EDGESEG_WITH_OPENVINO); without it make_openvino_backend
// throws the Error that says how to get it and openvino_version() is empty.
bool openvino_compiled();
// A graph with dynamic dimensions is compiled once per input shape it runs at (a static
// compilation runs faster than the dynamic graph), `load_shape` at load; the last few are
// kept. A static graph is compiled once.
std::unique_ptr<Backend> make_openvino_backend(const std::string& model_path,
                                               const std::string& device, int threads,
                                               const std::string& output_name,
                                               const std::vector<int64_t>& load_shape);

std::string openvino_version();

// What this machine offers TensorRT; ok == false (with `why`) when there is no usable GPU.
struct TensorRtPlatform {
  bool compiled = false;
  bool ok = false;
  std::string why;
  std::string version;             // the loaded TensorRT library, "10.3.0"
  std::string device;              // GPU name
  std::string compute_capability;  // "8.7"
};

TensorRtPlatform tensorrt_platform();
// Whether an engine record fits this platform; when not, `why` says what was built for what.
bool tensorrt_engine_fits(const EngineBuild& e, const TensorRtPlatform& p, std::string* why);
// Checks the build record against this GPU and TensorRT before deserialising the engine.
std::unique_ptr<Backend> make_tensorrt_backend(const Meta& meta, const EngineBuild& engine,
                                               const std::string& output_name);

}  // namespace edgeseg::detail
