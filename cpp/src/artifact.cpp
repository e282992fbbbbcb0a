#include "artifact.hpp"

#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sha256.hpp"

namespace edgeseg::detail {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;  // keeps meta.json's order: files verify in that order

namespace {

const char* kFix = "; re-export the artifact (edgeseg export) or restore its meta.json";

// Typed access with errors that name the field, instead of nlohmann's type_error.
class Fields {
 public:
  explicit Fields(std::string path) : path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw Error(path_ + ": " + field + " " + what + kFix);
  }
  const Json& at(const Json& obj, const char* key, const std::string& field) const {
    if (!obj.is_object()) fail(field, "is not an object");
    auto it = obj.find(key);
    if (it == obj.end()) fail(field + "." + key, "is missing");
    return *it;
  }
  std::string str(const Json& v, const std::string& field) const {
    if (!v.is_string()) fail(field, "must be a string");
    return v.get<std::string>();
  }
  long long integer(const Json& v, const std::string& field) const {
    if (!v.is_number_integer()) fail(field, "must be an integer");
    return v.get<long long>();
  }
  double number(const Json& v, const std::string& field) const {
    if (!v.is_number()) fail(field, "must be a number");
    return v.get<double>();
  }
  bool boolean(const Json& v, const std::string& field) const {
    if (!v.is_boolean()) fail(field, "must be true or false");
    return v.get<bool>();
  }
  std::array<double, 3> triple(const Json& v, const std::string& field) const {
    if (!v.is_array() || v.size() != 3) fail(field, "must be a list of 3 numbers (R, G, B)");
    return {number(v[0], field), number(v[1], field), number(v[2], field)};
  }

 private:
  std::string path_;
};

// artifact.py's rule: a plain file name inside the directory, never a path out of it.
bool plain_name(const std::string& n) {
  return !n.empty() && n != "." && n != ".." && n.find('/') == std::string::npos &&
         n.find('\\') == std::string::npos;
}

// [height, width], both positive.
std::array<int, 2> size_pair(const Fields& f, const Json& v, const std::string& field) {
  if (!v.is_array() || v.size() != 2) f.fail(field, "must be [height, width]");
  std::array<int, 2> hw{};
  for (int i = 0; i < 2; ++i) {
    const long long n = f.integer(v[i], field);
    if (n < 1) f.fail(field, "must have positive sides");
    if (n > std::numeric_limits<int>::max()) f.fail(field, "has a side too large for an int");
    hw[i] = static_cast<int>(n);
  }
  return hw;
}

std::string size_text(const std::array<int, 2>& hw) {
  return std::to_string(hw[0]) + "x" + std::to_string(hw[1]);
}

// input.size_range of a dynamic-size graph: {"min": [h, w], "max": [h, w]}, min <= max on
// both sides, the nominal input.size inside (what `edgeseg export --dynamic size` writes).
void read_size_range(const Fields& f, const Json& in, InputSpec& s) {
  const std::string field = "input.size_range";
  const char* form = "{\"min\": [height, width], \"max\": [height, width]}";
  if (!in.contains("size_range") || in["size_range"].is_null())
    f.fail(field, std::string("is missing; input.dynamic \"size\" needs ") + form);
  const Json& range = in["size_range"];
  if (!range.is_object()) f.fail(field, std::string("must be ") + form);
  s.min_size = size_pair(f, f.at(range, "min", field), field + ".min");
  s.max_size = size_pair(f, f.at(range, "max", field), field + ".max");
  if (s.min_size[0] > s.max_size[0] || s.min_size[1] > s.max_size[1])
    f.fail(field, "needs min <= max on both sides, got " + size_text(s.min_size) + " to " +
                      size_text(s.max_size));
  if (s.height < s.min_size[0] || s.height > s.max_size[0] || s.width < s.min_size[1] ||
      s.width > s.max_size[1])
    f.fail("input.size", size_text({s.height, s.width}) + " (the nominal size) is outside "
                         "input.size_range " + size_text(s.min_size) + " to " +
                         size_text(s.max_size));
}

void read_input(const Fields& f, const Json& in, InputSpec& s) {
  s.name = f.str(f.at(in, "name", "input"), "input.name");
  const std::array<int, 2> size = size_pair(f, f.at(in, "size", "input"), "input.size");
  s.height = size[0];
  s.width = size[1];
  s.color = f.str(f.at(in, "color", "input"), "input.color");
  s.network_color = in.contains("network_color")
                        ? f.str(in["network_color"], "input.network_color") : s.color;
  for (const std::string* c : {&s.color, &s.network_color})
    if (*c != "RGB" && *c != "BGR") f.fail("input.color", "must be RGB or BGR, got " + *c);
  s.mean = f.triple(f.at(in, "mean", "input"), "input.mean");
  s.std = f.triple(f.at(in, "std", "input"), "input.std");
  for (double v : s.std)
    if (!(v > 0)) f.fail("input.std", "must be positive");
  const std::string resize = f.str(f.at(in, "resize", "input"), "input.resize");
  if (resize != "stretch" && resize != "letterbox")
    f.fail("input.resize", "must be stretch or letterbox, got " + resize);
  s.letterbox = resize == "letterbox";
  s.fused = f.boolean(f.at(in, "fused_preprocess", "input"), "input.fused_preprocess");
  s.dtype = in.contains("dtype") ? f.str(in["dtype"], "input.dtype")
                                 : (s.fused ? "uint8" : "float32");
  if (s.dtype != (s.fused ? "uint8" : "float32"))
    f.fail("input.dtype", "is " + s.dtype + " but fused_preprocess says " +
                              (s.fused ? "uint8 frames" : "float32 tensors"));
  if (in.contains("dynamic") && !in["dynamic"].is_null()) {
    s.dynamic = f.str(in["dynamic"], "input.dynamic");
    if (s.dynamic != "batch" && s.dynamic != "size")
      f.fail("input.dynamic", "must be null, \"batch\" or \"size\", got \"" + s.dynamic + "\"");
  }
  s.min_size = s.max_size = size;
  if (s.dynamic_size()) read_size_range(f, in, s);
}

// builds[].profile {input name: [min, opt, max] shapes}: the height/width bounds, if any.
void read_profile_sizes(const Fields& f, const Json& b, const InputSpec& in, EngineBuild& e) {
  if (!b.contains("profile") || !b["profile"].is_object() || !b["profile"].contains(in.name))
    return;
  const std::string field = "builds[tensorrt].profile." + in.name;
  const Json& p = b["profile"][in.name];
  if (!p.is_array() || p.size() != 3) f.fail(field, "must be [min, opt, max] shapes");
  const int hi = in.fused ? 1 : 2, wi = hi + 1;  // NHWC frames, else NCHW
  for (int k : {0, 2}) {
    if (!p[k].is_array() || p[k].size() != 4) f.fail(field, "must hold 4-D shapes");
    auto& hw = k == 0 ? e.min_size : e.max_size;
    hw = {static_cast<int>(f.integer(p[k][hi], field)),
          static_cast<int>(f.integer(p[k][wi], field))};
  }
  e.has_sizes = true;
}

void read_builds(const Fields& f, const Json& meta, Meta& m) {
  if (!meta.contains("builds") || meta["builds"].is_null()) return;
  const Json& builds = meta["builds"];
  if (!builds.is_array()) f.fail("builds", "must be a list");
  for (const Json& b : builds) {
    if (!b.is_object() || !b.contains("backend") || b["backend"] != "tensorrt") continue;
    EngineBuild e;
    e.file = f.str(f.at(b, "file", "builds[tensorrt]"), "builds[tensorrt].file");
    if (!plain_name(e.file))
      f.fail("builds[tensorrt].file", "must be a plain file name inside the artifact");
    e.tensorrt = f.str(f.at(b, "tensorrt", "builds[tensorrt]"), "builds[tensorrt].tensorrt");
    e.compute_capability = f.str(f.at(b, "compute_capability", "builds[tensorrt]"),
                                 "builds[tensorrt].compute_capability");
    if (b.contains("device") && b["device"].is_string()) e.device = b["device"].get<std::string>();
    if (b.contains("sha256") && b["sha256"].is_string()) e.sha256 = b["sha256"].get<std::string>();
    read_profile_sizes(f, b, m.input, e);
    m.engines.push_back(e);
  }
}

}  // namespace

bool Meta::has_file(const std::string& name) const {
  for (const auto& f : files)
    if (f.first == name) return true;
  return false;
}

std::string Meta::path(const std::string& name) const { return (fs::path(dir) / name).string(); }

Meta read_meta(const std::string& dir, bool verify) {
  std::error_code ec;
  if (dir.empty() || !fs::is_directory(dir, ec))
    throw Error(dir + ": artifact directory not found (pass the directory that holds "
                "meta.json, e.g. one written by `edgeseg export`)");
  const std::string path = (fs::path(dir) / "meta.json").string();
  if (!fs::is_regular_file(path, ec))
    throw Error(dir + ": no meta.json; not an edgeseg artifact (make one with `edgeseg "
                "export` or `edgeseg import`)");
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) throw Error(path + ": cannot read it (check the permissions)");
  Json meta;
  try {
    meta = Json::parse(text.str());
  } catch (const Json::parse_error& e) {
    throw Error(path + ": not valid JSON (" + e.what() + "); restore it from the export");
  }
  Fields f(path);
  if (!meta.is_object() || !meta.contains("schema") || meta["schema"] != "edgeseg-artifact")
    throw Error(path + ": not an edgeseg artifact (schema " +
                (meta.is_object() && meta.contains("schema") ? meta["schema"].dump()
                                                             : std::string("missing")) +
                ", expected \"edgeseg-artifact\")");
  if (!meta.contains("schema_version") || !meta["schema_version"].is_number_integer())
    throw Error(path + ": schema_version must be an integer");
  Meta m;
  m.dir = dir;
  const long long version = meta["schema_version"].get<long long>();
  if (version > kSchemaVersion)
    throw Error(path + ": schema version " + std::to_string(version) +
                " is newer than this edgeseg runtime reads (" + std::to_string(kSchemaVersion) +
                "); upgrade the edgeseg C++ runtime");
  m.schema_version = static_cast<int>(version);
  std::string missing;
  for (const char* k : {"model", "classes", "input", "output", "precision", "files", "versions"})
    if (!meta.contains(k)) missing += (missing.empty() ? "" : ", ") + std::string(k);
  if (!missing.empty()) throw Error(path + ": missing sections " + missing + kFix);

  const Json& files = meta["files"];
  if (!files.is_object()) f.fail("files", "must map file names to sha256 digests");
  for (auto it = files.begin(); it != files.end(); ++it) {
    if (!plain_name(it.key()) || !it.value().is_string())
      f.fail("files", "must map plain file names (inside the artifact) to sha256 digests");
    m.files.emplace_back(it.key(), it.value().get<std::string>());
  }

  const Json& model = meta["model"];
  m.model_name = model.is_object() && model.contains("name") && model["name"].is_string()
                     ? model["name"].get<std::string>() : std::string("model");
  m.num_classes = static_cast<int>(f.integer(f.at(model, "num_classes", "model"),
                                             "model.num_classes"));
  if (m.num_classes < 1 || m.num_classes > 256)
    f.fail("model.num_classes", "must be 1..256 (label maps are uint8), got " +
                                    std::to_string(m.num_classes));
  m.precision = f.str(meta["precision"], "precision");

  const Json& classes = meta["classes"];
  const Json& names = f.at(classes, "names", "classes");
  if (!names.is_array()) f.fail("classes.names", "must be a list of strings");
  for (const Json& n : names) m.class_names.push_back(f.str(n, "classes.names"));
  const Json& palette = f.at(classes, "palette", "classes");
  if (!palette.is_array()) f.fail("classes.palette", "must be a list of [r, g, b]");
  for (const Json& c : palette) {
    if (!c.is_array() || c.size() != 3) f.fail("classes.palette", "entries must be [r, g, b]");
    Color rgb{};
    for (int i = 0; i < 3; ++i) {
      const long long v = f.integer(c[i], "classes.palette");
      if (v < 0 || v > 255) f.fail("classes.palette", "values must be 0..255");
      rgb[i] = static_cast<uint8_t>(v);
    }
    m.palette.push_back(rgb);
  }

  read_input(f, meta["input"], m.input);
  const Json& out = meta["output"];
  m.output.name = f.str(f.at(out, "name", "output"), "output.name");
  m.output.kind = f.str(f.at(out, "kind", "output"), "output.kind");
  if (m.output.kind != "logits" && m.output.kind != "probs" && m.output.kind != "labels" &&
      m.output.kind != "labels_lowres")
    throw Error(path + ": unknown output kind \"" + m.output.kind +
                "\" in meta.json (known: logits, probs, labels, labels_lowres); this runtime "
                "cannot turn it into a label map: upgrade it or re-export with --output logits");
  if (out.contains("dtype") && out["dtype"].is_string())
    m.output.dtype = out["dtype"].get<std::string>();
  read_builds(f, meta, m);

  if (verify) {
    for (const auto& [name, digest] : m.files) {
      const std::string file = m.path(name);
      if (!fs::is_regular_file(file, ec))
        throw Error(dir + ": " + name + " is listed in meta.json but missing; copy the whole "
                    "artifact directory");
      const std::string actual = sha256_file(file);
      if (actual != digest)
        throw Error(file + ": its sha256 differs from meta.json (" + actual.substr(0, 12) +
                    "... instead of " + digest.substr(0, 12) + "...): the file was changed "
                    "or replaced after export; re-export the artifact (or copy it again)");
    }
  }
  return m;
}

}  // namespace edgeseg::detail
