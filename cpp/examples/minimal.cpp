// A complete application: segment one image file with an edgeseg artifact.
//
//   edgeseg-minimal artifacts/bisenetv1-512x1024-int8 street.png
//
// writes street.labels.png (palette PNG: pixel value = class id) and street.overlay.png.
#include <edgeseg/segmenter.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s ARTIFACT_DIR IMAGE\n", argv[0]);
    return 2;
  }
  try {
    edgeseg::Segmenter seg(argv[1]);  // checks meta.json and every file's sha256
    const edgeseg::Image image = edgeseg::read_image(argv[2]);
    const edgeseg::LabelMap labels = seg.predict(image);  // class ids at the image's size

    const std::string path = argv[2];
    const std::string stem = path.substr(0, path.find_last_of('.'));
    edgeseg::write_label_png(stem + ".labels.png", labels, seg.palette());
    edgeseg::write_image_png(stem + ".overlay.png", seg.overlay(image, labels, 0.5));

    std::printf("%dx%d in %.1f ms with %s\n", image.height, image.width,
                seg.last_timings().total_ms, seg.backend().c_str());
    for (size_t id = 0; id < seg.classes().size(); ++id) {
      size_t n = 0;
      for (uint8_t v : labels.data) n += v == id;
      if (n) std::printf("  %-12s %5.1f%%\n", seg.classes()[id].c_str(), 100.0 * n / labels.data.size());
    }
  } catch (const edgeseg::Error& e) {  // every runtime error: the message says what to fix
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
