// What every build has, whichever engines it was built with: tensor type names, backend
// names (the Python table's, via engines_generated.hpp), the rule that matches a recorded
// TensorRT engine to this machine (engines are tied to one TensorRT version and one GPU
// architecture; a mismatch must be an error before the engine is deserialised), and the
// stubs that stand in for an engine this build leaves out.
#include <algorithm>
#include <cctype>
#include <sstream>
#include <string_view>

#include "backend.hpp"
#include "engines_generated.hpp"

namespace edgeseg::detail {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::U8: return "uint8";
    case DType::I32: return "int32";
    case DType::I64: return "int64";
  }
  return "?";
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::U8: return 1;
    case DType::I32: return 4;
    case DType::I64: return 8;
  }
  return 0;
}

std::string resolve_backend(const std::string& requested) {
  // Lower case, then an exact match: capabilities.engine()'s rule, so "OV" and "TRT" work
  // here as they do in Python.
  std::string key = requested;
  std::transform(key.begin(), key.end(), key.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (key == "auto") return key;
  for (const EngineAlias& a : kEngineAliases)
    if (a.alias == key) return std::string(a.engine);
  std::string choices = "auto";
  for (std::string_view name : kEngineNames) {
    std::string others;
    for (const EngineAlias& a : kEngineAliases)
      if (a.engine == name && a.alias != name)
        others += (others.empty() ? "" : "/") + std::string(a.alias);
    choices += ", " + std::string(name) + (others.empty() ? "" : " (" + others + ")");
  }
  throw Error("unknown backend \"" + requested + "\"; choose one of " + choices);
}

namespace {

std::vector<int> version_parts(const std::string& v) {
  std::vector<int> parts;
  std::stringstream in(v);
  std::string item;
  while (std::getline(in, item, '.')) {
    try {
      parts.push_back(std::stoi(item));
    } catch (const std::exception&) {
      return {};
    }
  }
  return parts;
}

}  // namespace

bool tensorrt_engine_fits(const EngineBuild& e, const TensorRtPlatform& p, std::string* why) {
  auto fail = [&](const std::string& what) {
    if (why)
      *why = e.file + " was built with TensorRT " + e.tensorrt + " for compute capability " +
             e.compute_capability + (e.device.empty() ? "" : " (" + e.device + ")") +
             "; this machine has " + what +
             "; rebuild the engine here (edgeseg build --backend tensorrt) or use the "
             "openvino backend";
    return false;
  };
  if (!p.ok) return fail(p.why);
  const std::vector<int> want = version_parts(e.tensorrt);
  const std::vector<int> have = version_parts(p.version);
  if (want.empty()) return fail("an engine record with an unreadable version");
  // An engine is only valid for the exact TensorRT release that built it; compare as many
  // parts as the record gives (major.minor.patch).
  bool same = want.size() <= have.size();
  for (size_t i = 0; same && i < want.size(); ++i) same = want[i] == have[i];
  if (!same) return fail("TensorRT " + p.version);
  if (version_parts(e.compute_capability) != version_parts(p.compute_capability))
    return fail("compute capability " + p.compute_capability + " (" + p.device + ")");
  return true;
}

#ifndef EDGESEG_HAVE_OPENVINO

bool openvino_compiled() { return false; }

std::string openvino_version() { return {}; }

std::unique_ptr<Backend> make_openvino_backend(const std::string&, const std::string&, int,
                                               const std::string&,
                                               const std::vector<int64_t>&) {
  throw Error("this edgeseg runtime was built without OpenVINO: reconfigure with "
              "-DEDGESEG_WITH_OPENVINO=ON (OpenVINO_DIR from the openvino pip wheel), or use "
              "--backend tensorrt");
}

#endif

#ifndef EDGESEG_HAVE_TENSORRT

TensorRtPlatform tensorrt_platform() {
  TensorRtPlatform p;
  p.why = "no TensorRT in this build of the edgeseg runtime";
  return p;
}

std::unique_ptr<Backend> make_tensorrt_backend(const Meta&, const EngineBuild&,
                                               const std::string&) {
  throw Error("this edgeseg runtime was built without TensorRT: install TensorRT 10 and the "
              "CUDA toolkit and reconfigure with -DEDGESEG_WITH_TENSORRT=ON, or use "
              "--backend openvino");
}

#endif

}  // namespace edgeseg::detail
