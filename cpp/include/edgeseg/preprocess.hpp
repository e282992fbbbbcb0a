// The preprocessing and postprocessing steps of edgeseg/core/preprocess.py, in C++, for
// callers that build their own pipeline and for the tests. Each function states which Python
// function it reproduces; they agree bit for bit (the same integer and float32 operations in
// the same order; the library is compiled with -ffp-contract=off so that no fused
// multiply-add changes a rounding).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace edgeseg {

// edgeseg/core/shapes.py fit_size: the network input size an image of h x w runs at in a
// graph that takes any size from `min` to `max` ({height, width}, both ends included). The
// image's own size when it is inside the range; otherwise one scale factor (the aspect ratio
// kept) down to the max or up to the min; each side clamped to the range last (only an
// aspect ratio the range cannot hold changes). In IEEE double, in the Python's order, so the
// sizes are the same. Needs h, w >= 1 and 1 <= min <= max on both sides.
std::array<int, 2> fit_size(int h, int w, const std::array<int, 2>& min,
                            const std::array<int, 2>& max);

// Where the image content sits in the network input (Preprocess.geometry).
struct Geometry {
  int height = 0, width = 0;  // resized content
  int top = 0, left = 0;      // its offset in the network input
};

// stretch: the whole input; letterbox: scale = min(th/h, tw/w), sides rounded half to even
// (Python's round), at least 1, centred with the remainder split floor-first.
Geometry letterbox_geometry(int image_h, int image_w, int net_h, int net_w, bool letterbox);

// resize_bilinear_numpy: Pillow's BILINEAR for 8-bit images (triangle filter widened when
// shrinking, 22-bit fixed-point weights), width pass first, then height pass, each only
// when that side changes. `channels` interleaved bytes per pixel; strides in bytes.
void resize_bilinear(const uint8_t* src, int h, int w, size_t src_stride, int channels,
                     uint8_t* dst, int out_h, int out_w, size_t dst_stride);

// resize_nearest_numpy: source index = (int) of a running double sum started at half a
// step, clamped to the last row/column. One byte per pixel.
void resize_nearest(const uint8_t* src, int h, int w, size_t src_stride, uint8_t* dst,
                    int out_h, int out_w);

// The source indices resize_nearest uses along one axis (exposed for tests).
std::vector<int> nearest_index(int in_size, int out_size);

// resize_scores: C x H x W float32 planes (plane stride `plane`, row stride `row`) to
// C x out_h x out_w, bilinear with half-pixel centres, width pass first; each pass computes
// a * (1 - t) + b * t with both products rounded to float32 before the sum.
std::vector<float> resize_scores(const float* src, int c, int h, int w, size_t plane,
                                 size_t row, int out_h, int out_w);

// resize_scores followed by argmax over classes (first maximum wins, NaN counts as the
// maximum as in numpy), without materialising the C x out_h x out_w map. Equal to
// argmax(resize_scores(...)) for every input.
void resize_scores_argmax(const float* src, int c, int h, int w, size_t plane, size_t row,
                          uint8_t* dst, int out_h, int out_w);

// Preprocess.normalize for one network-size RGB image (packed rows): float32
// (x - mean) / std per channel (mean and std converted to float first, RGB order), the
// channels reversed when `bgr`, written as planar C x H x W.
void normalize_nchw(const uint8_t* rgb, int h, int w, const std::array<double, 3>& mean,
                    const std::array<double, 3>& std, bool bgr, float* dst);

}  // namespace edgeseg
