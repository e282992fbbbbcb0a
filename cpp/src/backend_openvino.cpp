// OpenVINO: reads model.xml (or model.onnx) and compiles it with the settings the Python
// runner uses, above all inference precision pinned to f32 (on CPUs with bf16/fp16 support
// OpenVINO would otherwise run an FP32 graph in lower precision and the label maps would
// drift from the Python runtime's). A graph with dynamic dimensions is compiled per input
// shape, the 16 most recently used kept, the artifact's nominal shape at load (the Python
// runner compiles the dynamic graph itself at load, then each shape at its first call).
#include <algorithm>
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

constexpr size_t kMaxShapes = 16;  // static compilations a dynamic graph keeps (as in Python)

std::string shape_text(const std::vector<int64_t>& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

// The Python runner's rule: a graph with a dynamic dimension (the batch, or the batch, height
// and width) is compiled once per input shape, reshaped to it, because OpenVINO's CPU plugin
// runs a dynamic-shaped graph much slower; a static graph is compiled as it is.
class OpenVinoBackend final : public Backend {
 public:
  OpenVinoBackend(const std::string& path, const std::string& device, int threads,
                  const std::string& output_name, const std::vector<int64_t>& load_shape)
      : path_(path), device_(device) {
    config_.emplace(ov::hint::inference_precision(ov::element::f32));
    if (threads > 0) config_.emplace(ov::inference_num_threads(threads));
    try {
      model_ = core_.read_model(path);
    } catch (const std::exception& e) {
      throw Error(path + ": OpenVINO cannot load it on " + device + ": " + e.what());
    }
    if (model_->inputs().size() != 1)
      throw Error(path + ": the graph has " + std::to_string(model_->inputs().size()) +
                  " inputs; an edgeseg artifact has exactly one (re-export it)");
    // OpenVINO keeps every name a tensor had; the one meta.json names wins, else output 0
    // (the Python runner's rule).
    const auto& outs = model_->outputs();
    if (outs.empty()) throw Error(path + ": the graph has no outputs (re-export it)");
    for (size_t i = 0; i < outs.size(); ++i)
      if (outs[i].get_names().count(output_name)) {
        output_index_ = i;
        break;
      }
    dynamic_ = model_->input().get_partial_shape().is_dynamic();
    compiled_.push_back(compile(dynamic_ ? load_shape : std::vector<int64_t>{}));
    if (!dynamic_) model_.reset();  // compiled once: the source graph is no longer needed
  }

  TensorView infer(const TensorView& input) override {
    Compiled& c = for_shape(input.shape);
    const ov::element::Type want = c.model.input().get_element_type();
    if (want != ov_type(input.dtype))
      throw Error(path_ + ": the graph takes " + want.get_type_name() + " input but meta.json "
                  "describes " + dtype_name(input.dtype) + "; the artifact is inconsistent, "
                  "re-export it");
    TensorView out;
    try {
      ov::Shape shape(input.shape.begin(), input.shape.end());
      // Wraps the caller's buffer: no copy on the way in.
      ov::Tensor tensor(want, shape, const_cast<void*>(input.data));
      c.request.set_input_tensor(tensor);
      c.request.infer();
      result_ = c.request.get_output_tensor(output_index_);  // its shape is this call's
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
  struct Compiled {
    std::vector<int64_t> shape;  // the input shape it was reshaped to; empty: a static graph
    ov::CompiledModel model;
    ov::InferRequest request;
  };

  // The graph compiled as it is (shape empty), or reshaped to `shape` first.
  Compiled compile(const std::vector<int64_t>& shape) {
    Compiled c{shape, {}, {}};
    try {
      std::shared_ptr<ov::Model> model = model_;
      if (!shape.empty()) {
        model = model_->clone();
        model->reshape(ov::PartialShape(ov::Shape(shape.begin(), shape.end())));
      }
      c.model = core_.compile_model(model, device_, config_);
      c.request = c.model.create_infer_request();
    } catch (const std::exception& e) {
      throw Error(path_ + ": OpenVINO cannot load it on " + device_ +
                  (shape.empty() ? "" : " at input shape " + shape_text(shape)) + ": " +
                  e.what());
    }
    return c;
  }

  // The compilation for this input shape, compiled at its first call; the least recently
  // used one goes when kMaxShapes are kept. A static graph has one, whatever the shape.
  Compiled& for_shape(const std::vector<int64_t>& shape) {
    if (!dynamic_) return compiled_.front();
    auto it = std::find_if(compiled_.begin(), compiled_.end(),
                           [&](const Compiled& c) { return c.shape == shape; });
    if (it == compiled_.end()) {
      Compiled fresh = compile(shape);  // before evicting: a failure keeps the cache whole
      if (compiled_.size() == kMaxShapes) compiled_.erase(compiled_.begin());
      compiled_.push_back(std::move(fresh));
    } else {
      std::rotate(it, it + 1, compiled_.end());  // most recently used last
    }
    return compiled_.back();
  }

  std::string path_, device_;
  std::string name_ = "openvino";
  ov::Core core_;
  ov::AnyMap config_;
  std::shared_ptr<ov::Model> model_;  // a dynamic graph, reshaped per input shape
  bool dynamic_ = false;
  std::vector<Compiled> compiled_;  // least recently used first
  ov::Tensor result_;  // keeps the output alive for the returned view
  std::vector<float> widened_;
  size_t output_index_ = 0;
};

}  // namespace

bool openvino_compiled() { return true; }

std::string openvino_version() { return ov::get_openvino_version().buildNumber; }

std::unique_ptr<Backend> make_openvino_backend(const std::string& model_path,
                                               const std::string& device, int threads,
                                               const std::string& output_name,
                                               const std::vector<int64_t>& load_shape) {
  return std::make_unique<OpenVinoBackend>(model_path, device, threads, output_name,
                                           load_shape);
}

}  // namespace edgeseg::detail
