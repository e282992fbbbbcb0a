// edgeseg-segment: one image file through an artifact, the label map as a palette PNG
// (pixel value = class id, the artifact's palette: the format `edgeseg segment` writes).
#include <edgeseg/segmenter.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

const char* kUsage =
    "usage: edgeseg-segment ARTIFACT IN.png OUT.png [--overlay OVERLAY.png] [--alpha A]\n"
    "                       [--backend auto|openvino|tensorrt] [--device CPU] [--threads N]\n"
    "                       [--no-verify]\n"
    "Writes OUT.png (mode P: pixel value = class id) and, with --overlay, the image with the\n"
    "classes blended over it. Backend, timings and errors go to stderr; exit 1 on an error.\n";

int usage(const std::string& problem) {
  std::fprintf(stderr, "error: %s\n%s", problem.c_str(), kUsage);
  return 2;
}

bool parse_int(const char* s, int* out) {
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  if (!*s || *end || v < 1 || v > 1024) return false;
  *out = static_cast<int>(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string positional[3], overlay_path;
  int npos = 0;
  double alpha = 0.5;
  edgeseg::Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--no-verify") {
      opt.verify = false;
    } else if (a == "--overlay" || a == "--backend" || a == "--device" || a == "--threads" ||
               a == "--alpha") {
      if (!has_value) return usage(a + " needs a value");
      const char* v = argv[++i];
      if (a == "--overlay") overlay_path = v;
      else if (a == "--backend") opt.backend = v;
      else if (a == "--device") opt.device = v;
      else if (a == "--threads" && !parse_int(v, &opt.threads))
        return usage("--threads must be a whole number from 1 to 1024");
      else if (a == "--alpha") {
        char* end = nullptr;
        alpha = std::strtod(v, &end);
        if (!*v || *end || !(alpha >= 0.0 && alpha <= 1.0))
          return usage("--alpha must be a number within [0, 1]");
      }
    } else if (a.size() > 1 && a[0] == '-') {
      return usage("unknown option " + a);
    } else if (npos < 3) {
      positional[npos++] = a;
    } else {
      return usage("too many arguments (" + a + ")");
    }
  }
  if (npos != 3) return usage("give ARTIFACT, IN.png and OUT.png");

  try {
    edgeseg::Segmenter seg(positional[0], opt);
    const edgeseg::Image image = edgeseg::read_image(positional[1]);
    const auto run = seg.run_size(image.height, image.width);  // input_size() unless dynamic
    std::fprintf(stderr, "edgeseg-segment: %s (%s), %s, input %dx%d, output %s\n",
                 seg.backend().c_str(), seg.backend_reason().c_str(), seg.model_file().c_str(),
                 run[0], run[1], seg.output_kind().c_str());
    const edgeseg::LabelMap labels = seg.predict(image);
    edgeseg::write_label_png(positional[2], labels, seg.palette());
    if (!overlay_path.empty())
      edgeseg::write_image_png(overlay_path, seg.overlay(image, labels, alpha));
    const edgeseg::Timings& t = seg.last_timings();
    std::fprintf(stderr,
                 "%s: %dx%d, preprocess %.2f ms, compute %.2f ms, postprocess %.2f ms, "
                 "end to end %.2f ms -> %s\n",
                 positional[1].c_str(), image.height, image.width, t.preprocess_ms,
                 t.compute_ms, t.postprocess_ms, t.total_ms, positional[2].c_str());
  } catch (const std::exception& e) {  // edgeseg::Error, or bad_alloc on a huge image
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
