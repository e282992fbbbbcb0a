// The resizes on cases small enough to work out by hand (the derivations are in the
// comments), plus the properties the Python definition fixes: width pass before height
// pass, the running-sum nearest index, float32 rounding, letterbox rounding half to even,
// and the dynamic-size run-size rule (fit_size) on a table printed by the Python.
// Bit-for-bit agreement with the Python on many sizes: tests/python_agreement.py.
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "check.hpp"
#include "edgeseg/preprocess.hpp"

using namespace edgeseg;

namespace {

std::vector<uint8_t> bilinear(const std::vector<uint8_t>& src, int h, int w, int c, int oh, int ow) {
  std::vector<uint8_t> out(static_cast<size_t>(oh) * ow * c);
  resize_bilinear(src.data(), h, w, static_cast<size_t>(w) * c, c, out.data(), oh, ow,
                  static_cast<size_t>(ow) * c);
  return out;
}

}  // namespace

int main() {
  // Shrinking 2 -> 1: scale 2, support 2, centre 1.0, window [0, 2); x = (j - 1 + .5) / 2 =
  // -.25, .25 -> weights .75 each, normalised to .5 = 2^21. (10 + 21) / 2 = 15.5 rounds up to
  // 16 through the + 2^21 bias; (10 + 20) / 2 = 15 exactly.
  CHECK(bilinear({10, 21}, 1, 2, 1, 1, 1) == std::vector<uint8_t>{16});
  CHECK(bilinear({10, 20}, 1, 2, 1, 1, 1) == std::vector<uint8_t>{15});
  // Enlarging 2 -> 4: centres 0.25, 0.75, 1.25, 1.75; weights (1), (.75, .25), (.25, .75), (1).
  // 0.75 * 0 + 0.25 * 100 = 25 (+ 0.5 bias, floored: 25), then 75, then 100.
  CHECK(bilinear({0, 100}, 1, 2, 1, 1, 4) == (std::vector<uint8_t>{0, 25, 75, 100}));
  // The same along the height, and per channel for interleaved RGB.
  CHECK(bilinear({0, 100}, 2, 1, 1, 4, 1) == (std::vector<uint8_t>{0, 25, 75, 100}));
  CHECK(bilinear({0, 1, 2, 100, 101, 102}, 1, 2, 3, 1, 4) ==
        (std::vector<uint8_t>{0, 1, 2, 25, 26, 27, 75, 76, 77, 100, 101, 102}));
  // Same size: a copy, honouring the source stride.
  {
    const std::vector<uint8_t> padded = {1, 2, 3, 9, 4, 5, 6, 9};  // rows of 3 + 1 pad byte
    std::vector<uint8_t> out(6);
    resize_bilinear(padded.data(), 2, 1, 4, 3, out.data(), 2, 1, 3);
    CHECK(out == (std::vector<uint8_t>{1, 2, 3, 4, 5, 6}));
  }
  // Both axes: the width pass runs first and is rounded to uint8 before the height pass.
  {
    std::mt19937 rng(7);
    std::vector<uint8_t> img(37 * 53 * 3);
    for (auto& v : img) v = static_cast<uint8_t>(rng());
    const auto both = bilinear(img, 37, 53, 3, 19, 80);
    const auto wide = bilinear(img, 37, 53, 3, 37, 80);
    CHECK(both == bilinear(wide, 37, 80, 3, 19, 80));
    const auto tall = bilinear(img, 37, 53, 3, 19, 53);
    int differ = 0;  // height first rounds elsewhere: the order is part of the definition
    const auto other = bilinear(tall, 19, 53, 3, 19, 80);
    for (size_t i = 0; i < both.size(); ++i) differ += both[i] != other[i];
    CHECK(differ > 0);
  }

  // Nearest: running sums of 3/7 from 3/14: .214 .643 1.07 1.5 1.93 2.36 2.79 -> 0 0 1 1 1 2 2;
  // of 7/3 from 7/6: 1.17 3.5 5.83 -> 1 3 5.
  CHECK(nearest_index(3, 7) == (std::vector<int>{0, 0, 1, 1, 1, 2, 2}));
  CHECK(nearest_index(7, 3) == (std::vector<int>{1, 3, 5}));
  CHECK(nearest_index(5, 5) == (std::vector<int>{0, 1, 2, 3, 4}));
  {
    const std::vector<uint8_t> lab = {1, 2, 3, 4, 5, 6};  // 2 x 3
    std::vector<uint8_t> out(4 * 2);
    resize_nearest(lab.data(), 2, 3, 3, out.data(), 4, 2);  // rows 0 0 1 1, cols 0 2
    CHECK(out == (std::vector<uint8_t>{1, 3, 1, 3, 4, 6, 4, 6}));
  }

  // Scores 1 x 2 -> 1 x 4: scale 0.5, sources -.25 (clamped to 0), .25, .75, 1.25 ->
  // (i0, i1, t) = (0,1,0) (0,1,.25) (0,1,.75) (1,1,.25): 0, 1, 3, 4.
  {
    const float s[2] = {0.f, 4.f};
    CHECK(resize_scores(s, 1, 1, 2, 2, 2, 1, 4) == (std::vector<float>{0.f, 1.f, 3.f, 4.f}));
    CHECK(resize_scores(s, 1, 2, 1, 2, 1, 4, 1) == (std::vector<float>{0.f, 1.f, 3.f, 4.f}));
    // Products rounded before the sum: 0.1f*(1-t) + 0.7f*t at t = .25 in float32 steps.
    const float p[2] = {0.1f, 0.7f};
    const float want = 0.1f * 0.75f + 0.7f * 0.25f;
    CHECK(resize_scores(p, 1, 1, 2, 2, 2, 1, 4)[1] == want);
  }
  // Argmax: the first maximum wins ties; a NaN wins and the first NaN stays (numpy).
  {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    // 3 classes x 1 x 4 pixels: tie, clear max in class 2, NaN in class 1, NaN in 0 and 2.
    const float s[12] = {1, 0, 0, nan, 1, 0, nan, 0, 0, 5, 0, nan};
    uint8_t out[4];
    resize_scores_argmax(s, 3, 1, 4, 4, 4, out, 1, 4);
    CHECK(out[0] == 0 && out[1] == 2 && out[2] == 1 && out[3] == 0);
  }
  // resize_scores_argmax equals argmax(resize_scores) on random maps, up and down, with a
  // crop (plane and row strides wider than the region), without and with NaNs (numpy's
  // argmax: the first NaN, else the first maximum).
  for (const bool nans : {false, true}) {
    std::mt19937 rng(3);
    std::normal_distribution<float> nd;
    const int c = 5, H = 12, W = 20;
    std::vector<float> s(static_cast<size_t>(c) * H * W);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (auto& v : s) v = nans && rng() % 16 == 0 ? nan : nd(rng);
    for (auto [oh, ow] : {std::pair{31, 47}, {5, 7}, {10, 18}, {10, 40}, {3, 18}}) {
      const float* crop = s.data() + 1 * W + 2;  // rows 1..10, cols 2..19
      const auto full = resize_scores(crop, c, 10, 18, H * W, W, oh, ow);
      std::vector<uint8_t> got(static_cast<size_t>(oh) * ow);
      resize_scores_argmax(crop, c, 10, 18, H * W, W, got.data(), oh, ow);
      bool same = true;
      for (int i = 0; i < oh * ow; ++i) {
        int best = 0;
        for (int k = 1; k < c && !std::isnan(full[best * oh * ow + i]); ++k)
          if (full[k * oh * ow + i] > full[best * oh * ow + i] || std::isnan(full[k * oh * ow + i]))
            best = k;
        same = same && got[i] == best;
      }
      CHECK(same);
    }
  }

  // Letterbox geometry: 100x300 into 128x256 -> scale 256/300, 85.33 -> 85 rows, top 21.
  {
    const Geometry g = letterbox_geometry(100, 300, 128, 256, true);
    CHECK(g.height == 85 && g.width == 256 && g.top == 21 && g.left == 0);
    // Halves round to even (Python's round): 5 * 0.5 = 2.5 -> 2; 7 * 0.5 = 3.5 -> 4.
    const Geometry a = letterbox_geometry(5, 4, 4, 2, true);
    CHECK(a.height == 2 && a.width == 2 && a.top == 1);
    const Geometry b = letterbox_geometry(7, 4, 4, 2, true);
    CHECK(b.height == 4 && b.width == 2 && b.top == 0);
    // A side never drops below one pixel.
    const Geometry c = letterbox_geometry(1000, 1, 10, 10, true);
    CHECK(c.height == 10 && c.width == 1 && c.left == 4);
    const Geometry s = letterbox_geometry(100, 300, 128, 256, false);
    CHECK(s.height == 128 && s.width == 256 && s.top == 0 && s.left == 0);
  }

  // fit_size against edgeseg/core/shapes.py: every expected size below is the Python
  // fit_size's, printed by it (h, w, min_h, min_w, max_h, max_w -> H, W).
  {
    struct Fit {
      int h, w, min_h, min_w, max_h, max_w, want_h, want_w;
    };
    const Fit table[] = {
      // inside the range (ends included): the image's own size
      {150, 300, 96, 160, 256, 512, 150, 300},
      {96, 160, 96, 160, 256, 512, 96, 160},
      {256, 512, 96, 160, 256, 512, 256, 512},
      {128, 256, 96, 160, 256, 512, 128, 256},
      // larger than the max on one side or both: scaled down, aspect ratio kept
      {600, 450, 96, 160, 256, 512, 256, 192},
      {1080, 1920, 96, 160, 256, 512, 256, 455},
      {257, 512, 96, 160, 256, 512, 256, 510},
      {256, 513, 96, 160, 256, 512, 256, 512},
      {1024, 2048, 256, 512, 512, 1024, 512, 1024},
      {2048, 1024, 256, 512, 512, 1024, 512, 512},
      // smaller than the min: scaled up (97x131 is no multiple of 32 either way)
      {64, 64, 96, 160, 256, 512, 160, 160},
      {97, 131, 96, 160, 256, 512, 118, 160},
      {95, 160, 96, 160, 256, 512, 96, 162},
      {1, 1, 96, 160, 256, 512, 160, 160},
      {50, 100, 96, 160, 256, 512, 96, 192},
      // aspect ratios the range cannot hold: the far side clamped
      {40, 1000, 96, 160, 256, 512, 96, 512},
      {2000, 20, 96, 160, 256, 512, 256, 160},
      {1, 5000, 96, 160, 256, 512, 96, 512},
      {5000, 1, 96, 160, 256, 512, 256, 160},
      {10, 3000, 96, 160, 256, 512, 96, 512},
      {100000, 3, 8, 8, 4096, 4096, 4096, 8},
      {37, 91, 64, 64, 64, 64, 64, 64},  // min = max: one size, whatever the image
      // exact halves round up (floor(x + 0.5), not Python's round): 2.5 -> 3, 4.5 -> 5,
      // 166.5 -> 167, 3.5 -> 4
      {5, 2, 1, 1, 100, 1, 3, 1},
      {3, 2, 1, 3, 100, 100, 5, 3},
      {1000, 333, 1, 1, 500, 1000, 500, 167},
      {7, 2, 1, 1, 100, 1, 4, 1},
      // 45 * (7 / 10) is 31.5 exactly but 31.4999... in double: 31, as in the Python (the
      // product of the rounded factor, not 45 * 7 / 10)
      {10, 45, 1, 1, 7, 100000, 7, 31},
      {22, 55, 1, 1, 3, 100000, 3, 7},
      // other roundings, up and down
      {3, 4, 1, 1, 1, 2, 1, 1},
      {5, 4, 1, 1, 2, 10, 2, 2},
      {300, 200, 1, 1, 150, 150, 150, 100},
      {3, 2, 4, 1, 100, 100, 4, 3},
      {5, 3, 1, 4, 100, 100, 7, 4},
      {999, 1001, 1, 1, 500, 500, 499, 500},
    };
    for (const Fit& f : table) {
      const std::array<int, 2> got = fit_size(f.h, f.w, {f.min_h, f.min_w}, {f.max_h, f.max_w});
      if (got[0] != f.want_h || got[1] != f.want_w)
        check::fail(__FILE__, __LINE__,
                    "fit_size(" + std::to_string(f.h) + ", " + std::to_string(f.w) + ") = " +
                        std::to_string(got[0]) + "x" + std::to_string(got[1]) + ", Python: " +
                        std::to_string(f.want_h) + "x" + std::to_string(f.want_w));
    }
  }

  // Normalisation: float32 (x - mean) / std, NCHW, channels reversed for BGR networks.
  {
    const uint8_t px[6] = {0, 128, 255, 10, 20, 30};  // 1 x 2 RGB
    const std::array<double, 3> mean = {123.675, 116.28, 103.53}, std = {58.395, 57.12, 57.375};
    float rgb[6], bgr[6];
    normalize_nchw(px, 1, 2, mean, std, false, rgb);
    normalize_nchw(px, 1, 2, mean, std, true, bgr);
    const float r0 = (0.0f - 123.675f) / 58.395f, b1 = (30.0f - 103.53f) / 57.375f;
    CHECK(rgb[0] == r0 && rgb[5] == b1);
    CHECK(bgr[0] == (255.0f - 103.53f) / 57.375f && bgr[1] == b1 && bgr[4] == r0);
  }
  return check::result();
}
