// The resizes and the normalisation of edgeseg/core/preprocess.py, operation for
// operation. Where the Python computes in float64 (filter taps, nearest indices) this does
// too; where it computes in float32 (score maps, normalisation) this uses float, whose
// every operation rounds to float32 on x86-64 and AArch64 (and -ffp-contract=off keeps the
// compiler from fusing a multiply and an add into one rounding).
#include "edgeseg/preprocess.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

// x87 arithmetic keeps float intermediates in 80 bits and would round differently.
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0
#error "edgeseg needs float arithmetic that rounds every operation to float32 (SSE, NEON)"
#endif

namespace edgeseg {
namespace {

constexpr int kPrecisionBits = 22;  // Pillow's fixed-point weights for 8-bit images

// Python's floor division for the letterbox offsets (identical to / for the non-negative
// values that occur, but stated so a rounding surprise cannot turn into an off-by-one).
int floor_div2(int v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

struct Taps {
  int taps = 0;              // weights per output pixel (some zero)
  std::vector<int> first;    // first source index per output pixel
  std::vector<int> count;    // source pixels actually covered (<= taps)
  std::vector<int32_t> k;    // out_size x taps fixed-point weights
};

// _bilinear_taps: the same float64 expressions, evaluated in the same order.
Taps bilinear_taps(int in_size, int out_size) {
  Taps t;
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double filterscale = std::max(scale, 1.0);
  const double support = filterscale;  // triangle support 1, widened when shrinking
  const double ss = 1.0 / filterscale;
  t.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.first.resize(out_size);
  t.count.resize(out_size);
  t.k.assign(static_cast<size_t>(out_size) * t.taps, 0);
  std::vector<double> w(t.taps);
  for (int i = 0; i < out_size; ++i) {
    const double center = (static_cast<double>(i) + 0.5) * scale;
    // Truncation toward zero, then the clamp: numpy's trunc + astype, Pillow's (int).
    const int64_t lo = static_cast<int64_t>(std::trunc(center - support + 0.5));
    const int64_t hi = static_cast<int64_t>(std::trunc(center + support + 0.5));
    const int first = static_cast<int>(std::max<int64_t>(lo, 0));
    const int last = static_cast<int>(std::min<int64_t>(hi, in_size));
    const int count = last - first;
    double total = 0.0;
    for (int j = 0; j < t.taps; ++j) {
      const double x = ((static_cast<double>(first + j) - center) + 0.5) * ss;
      const double ax = std::fabs(x);
      w[j] = (j < count && ax < 1.0) ? 1.0 - ax : 0.0;
      total = total + w[j];  // in tap order, as the reference sums them
    }
    for (int j = 0; j < t.taps; ++j) {
      const double wj = total != 0.0 ? w[j] / total : w[j];
      const double scaled = wj * static_cast<double>(1 << kPrecisionBits);
      t.k[static_cast<size_t>(i) * t.taps + j] =
          static_cast<int32_t>(wj < 0 ? std::trunc(scaled - 0.5) : std::trunc(scaled + 0.5));
    }
    t.first[i] = first;
    t.count[i] = std::min(count, t.taps);
  }
  return t;
}

inline uint8_t clip8(int32_t acc) {
  const int32_t v = acc >> kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// The width pass of _bilinear_pass: every row, every output column, every channel.
void horizontal_pass(const uint8_t* src, int h, int w, size_t src_stride, int ch,
                     uint8_t* dst, int out_w, size_t dst_stride) {
  const Taps t = bilinear_taps(w, out_w);
  for (int y = 0; y < h; ++y) {
    const uint8_t* s = src + static_cast<size_t>(y) * src_stride;
    uint8_t* d = dst + static_cast<size_t>(y) * dst_stride;
    for (int x = 0; x < out_w; ++x) {
      const int32_t* k = &t.k[static_cast<size_t>(x) * t.taps];
      const uint8_t* p = s + static_cast<size_t>(t.first[x]) * ch;
      if (ch == 3) {  // RGB frames: one walk over the taps for all three sums
        int32_t r = 1 << (kPrecisionBits - 1), g = r, b = r;
        for (int j = 0; j < t.count[x]; ++j, p += 3) {
          r += static_cast<int32_t>(p[0]) * k[j];
          g += static_cast<int32_t>(p[1]) * k[j];
          b += static_cast<int32_t>(p[2]) * k[j];
        }
        d[x * 3] = clip8(r);
        d[x * 3 + 1] = clip8(g);
        d[x * 3 + 2] = clip8(b);
        continue;
      }
      for (int c = 0; c < ch; ++c) {
        int32_t acc = 1 << (kPrecisionBits - 1);
        // Taps past `count` weigh 0 in the reference; skipping them changes no sum.
        for (int j = 0; j < t.count[x]; ++j) acc += static_cast<int32_t>(p[j * ch + c]) * k[j];
        d[x * ch + c] = clip8(acc);
      }
    }
  }
}

// The height pass: each output row is a weighted sum of whole source rows.
void vertical_pass(const uint8_t* src, int h, int row_bytes, size_t src_stride, uint8_t* dst,
                   int out_h, size_t dst_stride) {
  const Taps t = bilinear_taps(h, out_h);
  std::vector<int32_t> acc(row_bytes);
  for (int y = 0; y < out_h; ++y) {
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    const int32_t* k = &t.k[static_cast<size_t>(y) * t.taps];
    for (int j = 0; j < t.count[y]; ++j) {
      const uint8_t* s = src + static_cast<size_t>(t.first[y] + j) * src_stride;
      const int32_t kj = k[j];
      for (int e = 0; e < row_bytes; ++e) acc[e] += static_cast<int32_t>(s[e]) * kj;
    }
    uint8_t* d = dst + static_cast<size_t>(y) * dst_stride;
    for (int e = 0; e < row_bytes; ++e) d[e] = clip8(acc[e]);
  }
}

struct LinearTaps {
  std::vector<int> i0, i1;
  std::vector<float> t;
};

// _linear_taps, in float32 throughout.
LinearTaps linear_taps(int in_size, int out_size) {
  LinearTaps lt;
  lt.i0.resize(out_size);
  lt.i1.resize(out_size);
  lt.t.resize(out_size);
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  for (int i = 0; i < out_size; ++i) {
    float src = (static_cast<float>(i) + 0.5f) * scale - 0.5f;
    src = std::max(src, 0.0f);
    const int i0 = std::min(static_cast<int>(src), in_size - 1);
    lt.i0[i] = i0;
    lt.i1[i] = std::min(i0 + 1, in_size - 1);
    lt.t[i] = src - static_cast<float>(i0);
  }
  return lt;
}

// One rounded product each, then a rounded sum: `out *= 1 - t; far *= t; out += far`.
inline float lerp32(float a, float b, float t) {
  const float near = a * (1.0f - t);
  const float far = b * t;
  return near + far;
}

// The width pass of resize_scores into a packed C x h x out_w map.
std::vector<float> scores_width_pass(const float* src, int c, int h, int w, size_t plane,
                                     size_t row, int out_w) {
  const LinearTaps lt = linear_taps(w, out_w);
  std::vector<float> out(static_cast<size_t>(c) * h * out_w);
  float* d = out.data();
  for (int k = 0; k < c; ++k) {
    for (int y = 0; y < h; ++y) {
      const float* s = src + k * plane + y * row;
      for (int x = 0; x < out_w; ++x) *d++ = lerp32(s[lt.i0[x]], s[lt.i1[x]], lt.t[x]);
    }
  }
  return out;
}

}  // namespace

std::array<int, 2> fit_size(int h, int w, const std::array<int, 2>& min,
                            const std::array<int, 2>& max) {
  const double dh = h, dw = w;
  double s = 1.0;
  if (h > max[0] || w > max[1]) s = std::min(max[0] / dh, max[1] / dw);
  if (dh * s < min[0] || dw * s < min[1]) s = std::max(min[0] / dh, min[1] / dw);
  // floor(x + 0.5) is an integer in double; clamping it there cannot overflow an int.
  auto side = [s](double v, int lo, int hi) {
    return static_cast<int>(std::clamp(std::floor(v * s + 0.5), double(lo), double(hi)));
  };
  return {side(dh, min[0], max[0]), side(dw, min[1], max[1])};
}

Geometry letterbox_geometry(int image_h, int image_w, int net_h, int net_w, bool letterbox) {
  Geometry g;
  if (!letterbox) {
    g.height = net_h;
    g.width = net_w;
    return g;
  }
  const double scale = std::min(static_cast<double>(net_h) / image_h,
                                static_cast<double>(net_w) / image_w);
  // std::nearbyint rounds half to even in the default rounding mode, as Python's round.
  g.height = std::max(1, static_cast<int>(std::nearbyint(image_h * scale)));
  g.width = std::max(1, static_cast<int>(std::nearbyint(image_w * scale)));
  g.top = floor_div2(net_h - g.height);
  g.left = floor_div2(net_w - g.width);
  return g;
}

void resize_bilinear(const uint8_t* src, int h, int w, size_t src_stride, int channels,
                     uint8_t* dst, int out_h, int out_w, size_t dst_stride) {
  const size_t out_row = static_cast<size_t>(out_w) * channels;
  if (w == out_w && h == out_h) {
    for (int y = 0; y < h; ++y)
      std::memcpy(dst + y * dst_stride, src + y * src_stride, out_row);
    return;
  }
  if (h == out_h) {  // the width pass alone
    horizontal_pass(src, h, w, src_stride, channels, dst, out_w, dst_stride);
    return;
  }
  if (w == out_w) {  // the height pass alone
    vertical_pass(src, h, static_cast<int>(out_row), src_stride, dst, out_h, dst_stride);
    return;
  }
  // Both: the width pass first, rounded to uint8, then the height pass (the order is part
  // of the definition; the other order rounds differently).
  std::vector<uint8_t> tmp(static_cast<size_t>(h) * out_row);
  horizontal_pass(src, h, w, src_stride, channels, tmp.data(), out_w, out_row);
  vertical_pass(tmp.data(), h, static_cast<int>(out_row), out_row, dst, out_h, dst_stride);
}

std::vector<int> nearest_index(int in_size, int out_size) {
  std::vector<int> idx(out_size);
  const double step = static_cast<double>(in_size) / static_cast<double>(out_size);
  double pos = step * 0.5;  // np.cumsum: a running sum, not i * step (they round apart)
  for (int i = 0; i < out_size; ++i) {
    if (i > 0) pos = pos + step;
    idx[i] = static_cast<int>(std::min<int64_t>(static_cast<int64_t>(pos), in_size - 1));
  }
  return idx;
}

void resize_nearest(const uint8_t* src, int h, int w, size_t src_stride, uint8_t* dst,
                    int out_h, int out_w) {
  const std::vector<int> rows = nearest_index(h, out_h);
  const std::vector<int> cols = nearest_index(w, out_w);
  for (int y = 0; y < out_h; ++y) {
    const uint8_t* s = src + static_cast<size_t>(rows[y]) * src_stride;
    uint8_t* d = dst + static_cast<size_t>(y) * out_w;
    for (int x = 0; x < out_w; ++x) d[x] = s[cols[x]];
  }
}

namespace {

// Score planes after the width pass (the definition's first pass): the source itself when
// the width already matches, else a packed copy this view owns.
struct WidthPassed {
  std::vector<float> own;
  const float* data;
  size_t plane, row;
};

WidthPassed width_pass(const float* src, int c, int h, int w, size_t plane, size_t row,
                       int out_w) {
  if (w == out_w) return {{}, src, plane, row};
  WidthPassed v{scores_width_pass(src, c, h, w, plane, row, out_w), nullptr,
                static_cast<size_t>(h) * out_w, static_cast<size_t>(out_w)};
  v.data = v.own.data();
  return v;
}

}  // namespace

std::vector<float> resize_scores(const float* src, int c, int h, int w, size_t plane,
                                 size_t row, int out_h, int out_w) {
  const WidthPassed wp = width_pass(src, c, h, w, plane, row, out_w);
  const float* cur = wp.data;
  const size_t cur_plane = wp.plane, cur_row = wp.row;
  std::vector<float> out(static_cast<size_t>(c) * out_h * out_w);
  if (h == out_h) {
    for (int k = 0; k < c; ++k)
      for (int y = 0; y < h; ++y)
        std::memcpy(&out[(static_cast<size_t>(k) * out_h + y) * out_w],
                    cur + k * cur_plane + y * cur_row, sizeof(float) * out_w);
    return out;
  }
  const LinearTaps lt = linear_taps(h, out_h);
  for (int k = 0; k < c; ++k) {
    for (int y = 0; y < out_h; ++y) {
      const float* a = cur + k * cur_plane + lt.i0[y] * cur_row;
      const float* b = cur + k * cur_plane + lt.i1[y] * cur_row;
      float* d = &out[(static_cast<size_t>(k) * out_h + y) * out_w];
      for (int x = 0; x < out_w; ++x) d[x] = lerp32(a[x], b[x], lt.t[y]);
    }
  }
  return out;
}

void resize_scores_argmax(const float* src, int c, int h, int w, size_t plane, size_t row,
                          uint8_t* dst, int out_h, int out_w) {
  const WidthPassed wp = width_pass(src, c, h, w, plane, row, out_w);
  const float* cur = wp.data;
  const size_t cur_plane = wp.plane, cur_row = wp.row;
  const bool vertical = h != out_h;
  const LinearTaps lt = vertical ? linear_taps(h, out_h) : LinearTaps{};
  std::vector<float> value(out_w), best(out_w);
  for (int y = 0; y < out_h; ++y) {
    uint8_t* d = dst + static_cast<size_t>(y) * out_w;
    for (int k = 0; k < c; ++k) {
      const float* plane_k = cur + k * cur_plane;
      const float* v = value.data();
      if (vertical) {
        const float* a = plane_k + lt.i0[y] * cur_row;
        const float* b = plane_k + lt.i1[y] * cur_row;
        const float t = lt.t[y];
        for (int x = 0; x < out_w; ++x) value[x] = lerp32(a[x], b[x], t);
      } else {
        v = plane_k + y * cur_row;
      }
      if (k == 0) {
        std::copy(v, v + out_w, best.begin());
        std::fill(d, d + out_w, 0);
        continue;
      }
      // numpy's argmax: the first maximum; a NaN beats every number and the first NaN stays.
      // Selects and bitwise | &, no branches: which way a pixel goes follows the data, which
      // no branch predictor guesses, and without branches the compiler vectorises the loop.
      float* b = best.data();
      const uint8_t id = static_cast<uint8_t>(k);
      for (int x = 0; x < out_w; ++x) {
        const float val = v[x], top = b[x];
        const bool take = (val > top) | ((val != val) & (top == top));  // x != x: NaN
        b[x] = take ? val : top;
        d[x] = take ? id : d[x];
      }
    }
  }
}

void normalize_nchw(const uint8_t* rgb, int h, int w, const std::array<double, 3>& mean,
                    const std::array<double, 3>& std, bool bgr, float* dst) {
  // (x - mean) / std in float32 for each of the 256 values: the same two rounded
  // operations per element as the numpy expression, looked up instead of recomputed.
  float lut[3][256];
  for (int c = 0; c < 3; ++c) {
    const float m = static_cast<float>(mean[c]);
    const float s = static_cast<float>(std[c]);
    for (int v = 0; v < 256; ++v) lut[c][v] = (static_cast<float>(v) - m) / s;
  }
  const size_t n = static_cast<size_t>(h) * w;
  for (int k = 0; k < 3; ++k) {
    const int c = bgr ? 2 - k : k;  // normalised in RGB order, then the channels reversed
    float* d = dst + k * n;
    const float* l = lut[c];
    for (size_t i = 0; i < n; ++i) d[i] = l[rgb[i * 3 + c]];
  }
}

}  // namespace edgeseg
