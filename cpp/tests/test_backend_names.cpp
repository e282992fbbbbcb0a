// Backend names: the spellings of the Python capability table (engines_generated.hpp), any
// case, and what a build without one of the engines says when it is asked for it. Runs in
// every configuration, OpenVINO or not.
#include <filesystem>
#include <string>
#include <string_view>

#include "backend.hpp"
#include "check.hpp"
#include "edgeseg/segmenter.hpp"
#include "engines_generated.hpp"
#include "tiny_artifact.hpp"

int main() {
  using edgeseg::detail::resolve_backend;
  CHECK(resolve_backend("auto") == "auto" && resolve_backend("Auto") == "auto");
  CHECK(resolve_backend("openvino") == "openvino" && resolve_backend("OpenVINO") == "openvino");
  CHECK(resolve_backend("ov") == "openvino" && resolve_backend("OV") == "openvino");
  CHECK(resolve_backend("tensorrt") == "tensorrt" && resolve_backend("TensorRT") == "tensorrt");
  CHECK(resolve_backend("trt") == "tensorrt" && resolve_backend("TRT") == "tensorrt");
  // Engines the Python runtime has and this one does not are unknown here, with the choices.
  CHECK_ERROR(resolve_backend("ort"), "unknown backend \"ort\"; choose one of auto, ");
  CHECK_ERROR(resolve_backend("onnxruntime"), "tensorrt (trt)");
  CHECK_ERROR(resolve_backend("cuda-magic"), "openvino (ov)");
  CHECK_ERROR(resolve_backend(""), "unknown backend \"\"");
  CHECK_ERROR(resolve_backend("ov "), "unknown backend");  // exact after lower-casing only

  // Every name is its own spelling, every alias and the auto order name a listed engine.
  for (std::string_view name : edgeseg::detail::kEngineNames)
    CHECK(resolve_backend(std::string(name)) == name);
  for (const auto& a : edgeseg::detail::kEngineAliases)
    CHECK(resolve_backend(std::string(a.alias)) == a.engine);
  for (std::string_view name : edgeseg::detail::kAutoOrder)
    CHECK(resolve_backend(std::string(name)) == name);

  const std::string info = edgeseg::build_info();
#ifdef EDGESEG_HAVE_OPENVINO
  CHECK(info.find("openvino") != std::string::npos);
#else
  CHECK(info.find("openvino") == std::string::npos);
#endif
#ifdef EDGESEG_HAVE_TENSORRT
  CHECK(info.find("tensorrt") != std::string::npos);
#else
  CHECK(info.find("tensorrt") == std::string::npos);
#endif

  // An artifact with an OpenVINO graph and no TensorRT engine, through the Segmenter.
  check::TempDir root("edgeseg-names");
  const std::string dir = root.file("identity");
  std::filesystem::create_directories(dir);
  tiny::write_artifact(dir, {});
  edgeseg::Options o;
  o.threads = 1;
  o.backend = "OV";
#ifdef EDGESEG_HAVE_OPENVINO
  CHECK(edgeseg::Segmenter(dir, o).backend() == "openvino");
  o.backend = "Auto";
  CHECK(edgeseg::Segmenter(dir, o).backend_reason() == "no TensorRT engine in meta.json");
#else
  CHECK_ERROR(edgeseg::Segmenter(dir, o), "built without OpenVINO");
  o.backend = "auto";  // nothing this build has can run it: an error, naming both reasons
  CHECK_ERROR(edgeseg::Segmenter(dir, o), "no TensorRT engine in meta.json; this runtime has "
                                          "no OpenVINO");
#endif
  o.backend = "Trt";
  CHECK_ERROR(edgeseg::Segmenter(dir, o), "records no TensorRT engine");
  o.backend = "pytorch";
  CHECK_ERROR(edgeseg::Segmenter(dir, o), "unknown backend \"pytorch\"");
  return check::result();
}
