// TensorRT 10 (the tensor-name API: enqueueV3, setTensorAddress). Compiled only when CMake
// finds TensorRT and the CUDA toolkit (EDGESEG_HAVE_TENSORRT); the other builds get the
// stubs in backend_common.cpp.
//
// An engine is a plan for one TensorRT release and one GPU architecture. Deserialising it
// anywhere else fails late with an opaque message, or on some versions succeeds and
// misbehaves, so the record meta.json keeps for the engine is checked first and a mismatch
// is an Error that says what was built for what.
#include <NvInfer.h>
#include <cuda_runtime_api.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "backend.hpp"
#include "sha256.hpp"

namespace edgeseg::detail {
namespace {

class Logger final : public nvinfer1::ILogger {
 public:
  void log(Severity severity, char const* msg) noexcept override {
    // Warnings are kept for an error message; info and verbose output would drown stderr.
    if (severity > Severity::kWARNING) return;
    try {
      last_ = msg;
    } catch (...) {  // log() must not throw
    }
  }
  std::string last_;
};

Logger& logger() {
  static Logger instance;  // TensorRT keeps the logger for the life of the runtime
  return instance;
}

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw Error(std::string("CUDA: ") + what + " failed: " + cudaGetErrorString(status));
}

std::string lib_version() {
  const int32_t v = getInferLibVersion();
  // TensorRT 10 encodes major * 10000 + minor * 100 + patch; older ones major * 1000 + ...
  const int32_t major_div = v >= 100000 ? 10000 : 1000;
  return std::to_string(v / major_div) + "." + std::to_string((v % major_div) / 100) + "." +
         std::to_string(v % 100);
}

// IEEE half to float, exact (every half is a float); the output of FP16-I/O engines.
float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal half: normalise
    exp = 113;
    while (!(mant & 0x400u)) {
      mant <<= 1;
      --exp;
    }
    bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

template <typename T>
struct TrtDeleter {
  void operator()(T* p) const { delete p; }  // TensorRT 10 objects are deleted, not destroy()ed
};
template <typename T>
using TrtPtr = std::unique_ptr<T, TrtDeleter<T>>;

class TensorRtBackend final : public Backend {
 public:
  TensorRtBackend(const Meta& meta, const EngineBuild& build, const std::string& output_name)
      : path_(meta.path(build.file)) {
    std::string why;
    if (!tensorrt_engine_fits(build, tensorrt_platform(), &why)) throw Error(why);
    std::ifstream in(path_, std::ios::binary);
    if (!in)
      throw Error(path_ + ": the TensorRT engine meta.json records is missing; rebuild it "
                  "(edgeseg build --backend tensorrt) or use --backend openvino");
    const std::vector<char> plan((std::istreambuf_iterator<char>(in)),
                                 std::istreambuf_iterator<char>());
    if (!build.sha256.empty() && sha256_hex(plan.data(), plan.size()) != build.sha256)
      throw Error(path_ + ": its sha256 differs from the build record in meta.json; the "
                  "engine was replaced after it was built: rebuild it");
    runtime_.reset(nvinfer1::createInferRuntime(logger()));
    if (runtime_) engine_.reset(runtime_->deserializeCudaEngine(plan.data(), plan.size()));
    if (!engine_)
      throw Error(path_ + ": TensorRT cannot deserialise the engine (" + logger().last_ +
                  "); rebuild it on this machine");
    context_.reset(engine_->createExecutionContext());
    if (!context_) throw Error(path_ + ": TensorRT cannot create an execution context");
    for (int32_t i = 0; i < engine_->getNbIOTensors(); ++i) {
      const char* n = engine_->getIOTensorName(i);
      if (engine_->getTensorIOMode(n) == nvinfer1::TensorIOMode::kINPUT) {
        if (!input_.empty())
          throw Error(path_ + ": the engine has more than one input; edgeseg graphs have one");
        input_ = n;
      } else if (output_.empty() || output_name == n) {
        output_ = n;  // the output meta.json names, else the first
      }
      if (engine_->getTensorFormat(n) != nvinfer1::TensorFormat::kLINEAR)
        throw Error(path_ + ": tensor " + n + " uses a vectorised layout; rebuild the engine "
                    "with linear (default) I/O formats");
    }
    if (input_.empty() || output_.empty())
      throw Error(path_ + ": the engine lacks an input or an output tensor");
    // Last, so that no earlier throw leaks it (the destructor runs only for built objects).
    check_cuda(cudaStreamCreate(&stream_), "cudaStreamCreate");
  }

  ~TensorRtBackend() override {
    context_.reset();
    engine_.reset();
    runtime_.reset();
    for (void* p : {d_in_, d_out_}) if (p) cudaFree(p);
    if (h_out_) cudaFreeHost(h_out_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  TensorView infer(const TensorView& input) override {
    const nvinfer1::DataType in_type = engine_->getTensorDataType(input_.c_str());
    const bool type_ok = (input.dtype == DType::F32 && in_type == nvinfer1::DataType::kFLOAT) ||
                         (input.dtype == DType::U8 && in_type == nvinfer1::DataType::kUINT8);
    if (!type_ok)
      throw Error(path_ + ": the engine's input type differs from meta.json's " +
                  dtype_name(input.dtype) + "; rebuild the engine from this artifact");
    nvinfer1::Dims dims{};
    dims.nbDims = static_cast<int32_t>(input.shape.size());
    for (size_t i = 0; i < input.shape.size(); ++i) dims.d[i] = input.shape[i];
    if (!context_->setInputShape(input_.c_str(), dims)) {
      std::string shape;
      for (int64_t d : input.shape) shape += (shape.empty() ? "" : "x") + std::to_string(d);
      throw Error(path_ + ": the engine does not accept input shape " + shape + " (" +
                  logger().last_ + "); rebuild it from this artifact (its optimisation "
                  "profile must cover batch 1 and the artifact's input.size_range)");
    }
    const size_t in_bytes = input.elements() * dtype_size(input.dtype);
    ensure(&d_in_, &in_cap_, in_bytes);

    // The output shape follows the input shape (a dynamic-size graph): read every call.
    const nvinfer1::Dims od = context_->getTensorShape(output_.c_str());
    TensorView out;
    size_t count = 1;
    for (int32_t i = 0; i < od.nbDims; ++i) {
      if (od.d[i] < 0) throw Error(path_ + ": the engine's output shape is not resolved");
      out.shape.push_back(od.d[i]);
      count *= static_cast<size_t>(od.d[i]);
    }
    const nvinfer1::DataType ot = engine_->getTensorDataType(output_.c_str());
    size_t elem = 0;
    switch (ot) {
      case nvinfer1::DataType::kFLOAT: out.dtype = DType::F32; elem = 4; break;
      case nvinfer1::DataType::kHALF: out.dtype = DType::F32; elem = 2; break;
      case nvinfer1::DataType::kUINT8: out.dtype = DType::U8; elem = 1; break;
      case nvinfer1::DataType::kINT32: out.dtype = DType::I32; elem = 4; break;
      case nvinfer1::DataType::kINT64: out.dtype = DType::I64; elem = 8; break;
      default:
        throw Error(path_ + ": the engine's output type is not one this runtime reads "
                    "(float32, float16, uint8, int32, int64); rebuild it from the artifact");
    }
    const size_t out_bytes = count * elem;
    ensure(&d_out_, &out_cap_, out_bytes);
    if (out_bytes > h_cap_) {
      if (h_out_) cudaFreeHost(h_out_);
      h_out_ = nullptr;
      check_cuda(cudaMallocHost(&h_out_, out_bytes), "cudaMallocHost");  // pinned: fast copy
      h_cap_ = out_bytes;
    }

    check_cuda(cudaMemcpyAsync(d_in_, input.data, in_bytes, cudaMemcpyHostToDevice, stream_),
               "copy to the GPU");
    if (!context_->setTensorAddress(input_.c_str(), d_in_) ||
        !context_->setTensorAddress(output_.c_str(), d_out_))
      throw Error(path_ + ": TensorRT rejected a tensor address (" + logger().last_ + ")");
    if (!context_->enqueueV3(stream_))
      throw Error(path_ + ": TensorRT inference failed (" + logger().last_ + ")");
    check_cuda(cudaMemcpyAsync(h_out_, d_out_, out_bytes, cudaMemcpyDeviceToHost, stream_),
               "copy from the GPU");
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");

    if (ot == nvinfer1::DataType::kHALF) {
      widened_.resize(count);
      const uint16_t* h = static_cast<const uint16_t*>(h_out_);
      for (size_t i = 0; i < count; ++i) widened_[i] = half_to_float(h[i]);
      out.data = widened_.data();
    } else {
      out.data = h_out_;
    }
    return out;
  }

  const std::string& name() const override { return name_; }

 private:
  void ensure(void** p, size_t* cap, size_t bytes) {
    if (bytes <= *cap) return;
    if (*p) cudaFree(*p);
    *p = nullptr;
    check_cuda(cudaMalloc(p, bytes), "cudaMalloc");
    *cap = bytes;
  }

  std::string path_;
  std::string name_ = "tensorrt";
  std::string input_, output_;
  cudaStream_t stream_ = nullptr;
  TrtPtr<nvinfer1::IRuntime> runtime_;
  TrtPtr<nvinfer1::ICudaEngine> engine_;
  TrtPtr<nvinfer1::IExecutionContext> context_;
  void* d_in_ = nullptr;
  void* d_out_ = nullptr;
  void* h_out_ = nullptr;
  size_t in_cap_ = 0, out_cap_ = 0, h_cap_ = 0;
  std::vector<float> widened_;
};

}  // namespace

TensorRtPlatform tensorrt_platform() {
  TensorRtPlatform p;
  p.compiled = true;
  p.version = lib_version();
  int device = 0;
  cudaError_t st = cudaGetDevice(&device);
  cudaDeviceProp prop{};
  if (st == cudaSuccess) st = cudaGetDeviceProperties(&prop, device);
  if (st != cudaSuccess) {
    p.why = std::string("no usable CUDA GPU (") + cudaGetErrorString(st) + ")";
    return p;
  }
  p.ok = true;
  p.device = prop.name;
  p.compute_capability = std::to_string(prop.major) + "." + std::to_string(prop.minor);
  return p;
}

std::unique_ptr<Backend> make_tensorrt_backend(const Meta& meta, const EngineBuild& engine,
                                               const std::string& output_name) {
  return std::make_unique<TensorRtBackend>(meta, engine, output_name);
}

}  // namespace edgeseg::detail
