// The preprocessing functions on raw files, for python_agreement.py to compare with
// edgeseg/core/preprocess.py bit for bit (numpy writes and reads the raw arrays).
//
//   preprocess_tool bilinear IN H W C OH OW OUT     uint8 H x W x C -> OH x OW x C
//   preprocess_tool nearest  IN H W OH OW OUT       uint8 H x W -> OH x OW
//   preprocess_tool scores   IN C H W OH OW OUT     float32 C x H x W -> C x OH x OW
//   preprocess_tool argmax   IN C H W OH OW OUT     float32 C x H x W -> uint8 OH x OW
//   preprocess_tool normalize IN H W BGR OUT        uint8 H x W x 3 -> float32 3 x H x W
//   preprocess_tool geometry H W TH TW              prints "rh rw top left" (letterbox)
//   preprocess_tool fit H W MINH MINW MAXH MAXW     prints "H W" (fit_size, the run size)
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "edgeseg/preprocess.hpp"

namespace {

std::vector<char> slurp(const char* path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

template <typename T>
void dump(const char* path, const std::vector<T>& v) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T)));
}

int arg(char** argv, int i) { return std::atoi(argv[i]); }

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  using namespace edgeseg;
  if (cmd == "bilinear" && argc == 9) {
    const auto in = slurp(argv[2]);
    const int h = arg(argv, 3), w = arg(argv, 4), c = arg(argv, 5), oh = arg(argv, 6), ow = arg(argv, 7);
    std::vector<uint8_t> out(static_cast<size_t>(oh) * ow * c);
    resize_bilinear(reinterpret_cast<const uint8_t*>(in.data()), h, w, static_cast<size_t>(w) * c, c,
                    out.data(), oh, ow, static_cast<size_t>(ow) * c);
    dump(argv[8], out);
  } else if (cmd == "nearest" && argc == 8) {
    const auto in = slurp(argv[2]);
    const int h = arg(argv, 3), w = arg(argv, 4), oh = arg(argv, 5), ow = arg(argv, 6);
    std::vector<uint8_t> out(static_cast<size_t>(oh) * ow);
    resize_nearest(reinterpret_cast<const uint8_t*>(in.data()), h, w, w, out.data(), oh, ow);
    dump(argv[7], out);
  } else if ((cmd == "scores" || cmd == "argmax") && argc == 9) {
    const auto in = slurp(argv[2]);
    const int c = arg(argv, 3), h = arg(argv, 4), w = arg(argv, 5), oh = arg(argv, 6), ow = arg(argv, 7);
    const float* src = reinterpret_cast<const float*>(in.data());
    if (cmd == "scores") {
      dump(argv[8], resize_scores(src, c, h, w, static_cast<size_t>(h) * w, w, oh, ow));
    } else {
      std::vector<uint8_t> out(static_cast<size_t>(oh) * ow);
      resize_scores_argmax(src, c, h, w, static_cast<size_t>(h) * w, w, out.data(), oh, ow);
      dump(argv[8], out);
    }
  } else if (cmd == "normalize" && argc == 7) {
    const auto in = slurp(argv[2]);
    const int h = arg(argv, 3), w = arg(argv, 4);
    std::vector<float> out(static_cast<size_t>(h) * w * 3);
    normalize_nchw(reinterpret_cast<const uint8_t*>(in.data()), h, w, {123.675, 116.28, 103.53},
                   {58.395, 57.12, 57.375}, arg(argv, 5) != 0, out.data());
    dump(argv[6], out);
  } else if (cmd == "geometry" && argc == 6) {
    const Geometry g = letterbox_geometry(arg(argv, 2), arg(argv, 3), arg(argv, 4), arg(argv, 5), true);
    std::printf("%d %d %d %d\n", g.height, g.width, g.top, g.left);
  } else if (cmd == "fit" && argc == 8) {
    const auto hw = fit_size(arg(argv, 2), arg(argv, 3), {arg(argv, 4), arg(argv, 5)},
                             {arg(argv, 6), arg(argv, 7)});
    std::printf("%d %d\n", hw[0], hw[1]);
  } else {
    std::fprintf(stderr, "usage: see the comment at the top of preprocess_tool.cpp\n");
    return 2;
  }
  return 0;
}
