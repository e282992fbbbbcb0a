// OpenVINO: reads model.xml (or model.onnx) and compiles it with the settings the Python
// runner uses, above all inference precision pinned to f32 (on CPUs with bf16/fp16 support
// OpenVINO would otherwise run an FP32 graph in lower precision and the label maps would
// drift from the Python runtime's).
#include <openvino/core/type/float16.hpp>
#include <openvino/core/version.hpp>
#include <openvino/runtime/core.hpp>
#include <openvino/runtime/properties.hpp>

#include "backend.hpp"

namespace edgeseg::detail {
namespace {

ov::element::Type ov_type(DType t) {
  switch (t) {
    case DType::F32: return ov::element::f32;
    case DType::U8: return ov::element::u8;
    case DType::I32: return ov::element::i32;
    case DType::I64: return ov::element::i64;
  }
  return ov::element::dynamic;
}

class OpenVinoBackend final : public Backend {
 public:
  OpenVinoBackend(const std::string& path, const std::string& device, int threads,
                  const std::string& output_name)
      : path_(path) {
    try {
      ov::AnyMap config{ov::hint::inference_precision(ov::element::f32)};
      if (threads > 0) config.emplace(ov::inference_num_threads(threads));
      std::shared_ptr<ov::Model> model = core_.read_model(path);
      compiled_ = core_.compile_model(model, device, config);
      request_ = compiled_.create_infer_request();
    } catch (const std::exception& e) {
      throw Error(path + ": OpenVINO cannot load it on " + device + ": " + e.what());
    }
    if (compiled_.inputs().size() != 1)
      throw Error(path + ": the graph has " + std::to_string(compiled_.inputs().size()) +
                  " inputs; an edgeseg artifact has exactly one (re-export it)");
    // OpenVINO keeps every name a tensor had; the one meta.json names wins, else output 0
    // (the Python runner's rule).
    const auto& outs = compiled_.outputs();
    if (outs.empty()) throw Error(path + ": the graph has no outputs (re-export it)");
    for (size_t i = 0; i < outs.size(); ++i)
      if (outs[i].get_names().count(output_name)) {
        output_index_ = i;
        break;
      }
  }

  TensorView infer(const TensorView& input) override {
    const ov::element::Type want = compiled_.input().get_element_type();
    if (want != ov_type(input.dtype))
      throw Error(path_ + ": the graph takes " + want.get_type_name() + " input but meta.json "
                  "describes " + dtype_name(input.dtype) + "; the artifact is inconsistent, "
                  "re-export it");
    TensorView out;
    try {
      ov::Shape shape(input.shape.begin(), input.shape.end());
      // Wraps the caller's buffer: no copy on the way in.
      ov::Tensor tensor(want, shape, const_cast<void*>(input.data));
      request_.set_input_tensor(tensor);
      request_.infer();
      result_ = request_.get_output_tensor(output_index_);
    } catch (const std::exception& e) {
      throw Error(path_ + ": OpenVINO inference failed: " + e.what());
    }
    const ov::Shape& s = result_.get_shape();
    out.shape.assign(s.begin(), s.end());
    const ov::element::Type t = result_.get_element_type();
    if (t == ov::element::f32) {
      out.dtype = DType::F32;
      out.data = result_.data();
    } else if (t == ov::element::f16) {
      // Half scores are widened exactly (every f16 is a float), as numpy's astype does.
      const ov::float16* h = result_.data<const ov::float16>();
      widened_.resize(result_.get_size());
      for (size_t i = 0; i < widened_.size(); ++i) widened_[i] = static_cast<float>(h[i]);
      out.dtype = DType::F32;
      out.data = widened_.data();
    } else if (t == ov::element::u8) {
      out.dtype = DType::U8;
      out.data = result_.data();
    } else if (t == ov::element::i32) {
      out.dtype = DType::I32;
      out.data = result_.data();
    } else if (t == ov::element::i64) {
      out.dtype = DType::I64;
      out.data = result_.data();
    } else {
      throw Error(path_ + ": the graph outputs " + t.get_type_name() + ", which this runtime "
                  "does not read (float32, float16, uint8, int32, int64); re-export it");
    }
    return out;
  }

  const std::string& name() const override { return name_; }

 private:
  std::string path_;
  std::string name_ = "openvino";
  ov::Core core_;
  ov::CompiledModel compiled_;
  ov::InferRequest request_;
  ov::Tensor result_;  // keeps the output alive for the returned view
  std::vector<float> widened_;
  size_t output_index_ = 0;
};

}  // namespace

bool openvino_compiled() { return true; }

std::string openvino_version() { return ov::get_openvino_version().buildNumber; }

std::unique_ptr<Backend> make_openvino_backend(const std::string& model_path,
                                               const std::string& device, int threads,
                                               const std::string& output_name) {
  return std::make_unique<OpenVinoBackend>(model_path, device, threads, output_name);
}

}  // namespace edgeseg::detail
