// Artifacts small enough to write from a test: hand-made OpenVINO IR graphs whose output is
// known in closed form, so the whole Segmenter path (meta.json, OpenVINO, pre- and
// postprocessing) runs in every ctest without a trained model.
//
//   identity: float32 NCHW in, the same tensor out as logits (3 classes): the label is the
//             argmax of the normalised channels;
//   fused:    uint8 NHWC frames in, Convert + Transpose to NCHW float logits;
//   labels:   float32 NCHW in, channel 0 (Gather) converted to uint8 as the label map.
// Each with a fixed shape, a dynamic batch or a dynamic batch, height and width (Spec.dynamic).
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "sha256.hpp"

namespace tiny {

// -1: a dynamic dimension.
inline std::string dims(const std::vector<int>& d) {
  std::string s;
  for (int v : d) s += "<dim>" + std::to_string(v) + "</dim>";
  return s;
}

inline std::string port(int id, const char* precision, const std::vector<int>& d,
                        const std::string& names = "") {
  return "<port id=\"" + std::to_string(id) + "\" precision=\"" + precision + "\"" +
         (names.empty() ? "" : " names=\"" + names + "\"") + ">" + dims(d) + "</port>";
}

inline std::string shape_attr(const std::vector<int>& d) {
  std::string s;
  for (size_t i = 0; i < d.size(); ++i)
    s += (i ? "," : "") + (d[i] < 0 ? "?" : std::to_string(d[i]));  // ?: dynamic
  return s;
}

// Writes model.xml (+ model.bin when the graph has constants) and returns the file names.
// dynamic: "" (all fixed), "batch" or "size" (batch, height and width dynamic).
inline std::vector<std::string> write_ir(const std::string& dir, const std::string& kind, int h,
                                         int w, const std::string& dynamic = "") {
  const int n = dynamic.empty() ? 1 : -1;
  if (dynamic == "size") h = w = -1;
  const std::vector<int> nchw = {n, 3, h, w}, nhwc = {n, h, w, 3}, nhw = {n, h, w};
  std::string layers, edges;
  std::vector<int64_t> consts;
  auto edge = [&](int fl, int fp, int tl, int tp) {
    edges += "<edge from-layer=\"" + std::to_string(fl) + "\" from-port=\"" +
             std::to_string(fp) + "\" to-layer=\"" + std::to_string(tl) + "\" to-port=\"" +
             std::to_string(tp) + "\"/>";
  };
  auto constant = [&](int id, const std::vector<int64_t>& values, bool scalar) {
    const size_t offset = consts.size() * 8;
    consts.insert(consts.end(), values.begin(), values.end());
    layers += "<layer id=\"" + std::to_string(id) + "\" name=\"c" + std::to_string(id) +
              "\" type=\"Const\" version=\"opset1\"><data element_type=\"i64\" shape=\"" +
              (scalar ? std::string() : std::to_string(values.size())) + "\" offset=\"" +
              std::to_string(offset) + "\" size=\"" + std::to_string(values.size() * 8) +
              "\"/><output>" +
              port(0, "I64", scalar ? std::vector<int>{} : std::vector<int>{int(values.size())}) +
              "</output></layer>";
  };
  if (kind == "identity") {
    layers += "<layer id=\"0\" name=\"input\" type=\"Parameter\" version=\"opset1\"><data shape=\"" +
              shape_attr(nchw) + "\" element_type=\"f32\"/><output>" +
              port(0, "FP32", nchw, "input") + "</output></layer>";
    layers += "<layer id=\"1\" name=\"logits\" type=\"Relu\" version=\"opset1\"><input>" +
              port(0, "FP32", nchw) + "</input><output>" + port(1, "FP32", nchw, "logits") +
              "</output></layer>";
    layers += "<layer id=\"2\" name=\"out\" type=\"Result\" version=\"opset1\"><input>" +
              port(0, "FP32", nchw) + "</input></layer>";
    edge(0, 0, 1, 0);
    edge(1, 1, 2, 0);
  } else if (kind == "fused") {
    layers += "<layer id=\"0\" name=\"input\" type=\"Parameter\" version=\"opset1\"><data shape=\"" +
              shape_attr(nhwc) + "\" element_type=\"u8\"/><output>" +
              port(0, "U8", nhwc, "input") + "</output></layer>";
    layers += "<layer id=\"1\" name=\"cvt\" type=\"Convert\" version=\"opset1\"><data "
              "destination_type=\"f32\"/><input>" + port(0, "U8", nhwc) + "</input><output>" +
              port(1, "FP32", nhwc) + "</output></layer>";
    constant(2, {0, 3, 1, 2}, false);
    layers += "<layer id=\"3\" name=\"logits\" type=\"Transpose\" version=\"opset1\"><input>" +
              port(0, "FP32", nhwc) + port(1, "I64", {4}) + "</input><output>" +
              port(2, "FP32", nchw, "logits") + "</output></layer>";
    layers += "<layer id=\"4\" name=\"out\" type=\"Result\" version=\"opset1\"><input>" +
              port(0, "FP32", nchw) + "</input></layer>";
    edge(0, 0, 1, 0);
    edge(1, 1, 3, 0);
    edge(2, 0, 3, 1);
    edge(3, 2, 4, 0);
  } else {  // labels
    layers += "<layer id=\"0\" name=\"input\" type=\"Parameter\" version=\"opset1\"><data shape=\"" +
              shape_attr(nchw) + "\" element_type=\"f32\"/><output>" +
              port(0, "FP32", nchw, "input") + "</output></layer>";
    constant(1, {0}, true);  // index
    constant(2, {1}, true);  // axis
    layers += "<layer id=\"3\" name=\"g\" type=\"Gather\" version=\"opset8\"><data "
              "batch_dims=\"0\"/><input>" + port(0, "FP32", nchw) + port(1, "I64", {}) +
              port(2, "I64", {}) + "</input><output>" + port(3, "FP32", nhw) +
              "</output></layer>";
    layers += "<layer id=\"4\" name=\"labels\" type=\"Convert\" version=\"opset1\"><data "
              "destination_type=\"u8\"/><input>" + port(0, "FP32", nhw) + "</input><output>" +
              port(1, "U8", nhw, "labels") + "</output></layer>";
    layers += "<layer id=\"5\" name=\"out\" type=\"Result\" version=\"opset1\"><input>" +
              port(0, "U8", nhw) + "</input></layer>";
    edge(0, 0, 3, 0);
    edge(1, 0, 3, 1);
    edge(2, 0, 3, 2);
    edge(3, 3, 4, 0);
    edge(4, 1, 5, 0);
  }
  std::ofstream(dir + "/model.xml") << "<?xml version=\"1.0\"?>\n<net name=\"tiny\" version=\"11\">"
                                    << "<layers>" << layers << "</layers><edges>" << edges
                                    << "</edges></net>\n";
  if (consts.empty()) return {"model.xml"};
  std::ofstream(dir + "/model.bin", std::ios::binary)
      .write(reinterpret_cast<const char*>(consts.data()),
             static_cast<std::streamsize>(consts.size() * 8));
  return {"model.xml", "model.bin"};
}

struct Spec {
  std::string kind = "identity";  // identity | fused | labels
  int h = 8, w = 16;
  std::string resize = "stretch";
  std::string color = "RGB", network_color = "RGB";
  std::string output_kind;  // default: logits, or labels for the labels graph
  int num_classes = 3;
  int schema_version = 1;
  std::string schema = "edgeseg-artifact";
  std::string builds = "[]";
  std::string dynamic;     // input.dynamic: "" (null), "batch" or "size" (the graph follows)
  std::string size_range;  // input.size_range as JSON text, written when not empty
};

// meta.json as `edgeseg export` writes it, mean 0 and std 1 so that normalised values are
// the pixel values themselves.
inline void write_artifact(const std::string& dir, const Spec& s) {
  const std::vector<std::string> files = write_ir(dir, s.kind, s.h, s.w, s.dynamic);
  const bool fused = s.kind == "fused";
  const std::string kind = !s.output_kind.empty() ? s.output_kind
                                                  : (s.kind == "labels" ? "labels" : "logits");
  std::string file_list;
  for (const auto& f : files)
    file_list += (file_list.empty() ? "" : ", ") + ("\"" + f + "\": \"" +
                 edgeseg::detail::sha256_file(dir + "/" + f) + "\"");
  const std::string hw = std::to_string(s.h) + ", " + std::to_string(s.w);
  // input.shape: named dimensions where the graph's are dynamic (shapes.py graph_dims)
  const std::string n = s.dynamic.empty() ? "1" : "\"batch\"";
  const std::string dims_hw = s.dynamic == "size" ? "\"height\", \"width\"" : hw;
  std::ofstream(dir + "/meta.json")
      << "{\"schema\": \"" << s.schema << "\", \"schema_version\": " << s.schema_version << ",\n"
      << " \"model\": {\"name\": \"tiny-" << s.kind << "\", \"num_classes\": " << s.num_classes
      << "},\n \"classes\": {\"names\": [\"red\", \"green\", \"blue\"], \"palette\": "
      << "[[255, 0, 0], [0, 255, 0], [0, 0, 255]]},\n"
      << " \"input\": {\"name\": \"input\", \"shape\": "
      << (fused ? "[" + n + ", " + dims_hw + ", 3]" : "[" + n + ", 3, " + dims_hw + "]")
      << ", \"dtype\": \""
      << (fused ? "uint8" : "float32") << "\", \"size\": [" << hw << "], \"color\": \""
      << s.color << "\", \"network_color\": \"" << s.network_color
      << "\", \"mean\": [0, 0, 0], \"std\": [1, 1, 1], \"resize\": \"" << s.resize
      << "\", \"fused_preprocess\": " << (fused ? "true" : "false") << ", \"dynamic\": "
      << (s.dynamic.empty() ? "null" : "\"" + s.dynamic + "\"")
      << (s.size_range.empty() ? "" : ", \"size_range\": " + s.size_range) << "},\n"
      << " \"output\": {\"name\": \"" << (s.kind == "labels" ? "labels" : "logits")
      << "\", \"kind\": \"" << kind << "\", \"dtype\": \""
      << (s.kind == "labels" ? "uint8" : "float32") << "\"},\n"
      << " \"precision\": \"fp32\", \"versions\": {}, \"builds\": " << s.builds << ",\n"
      << " \"files\": {" << file_list << "}}\n";
}

}  // namespace tiny
