// PNG pieces the runtime writes itself: stb_image_write has no palette PNGs, and a label
// map must be a palette PNG (pixel value = class id) to match `edgeseg segment`'s output.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "edgeseg/segmenter.hpp"

namespace edgeseg::detail {

// CRC-32 as PNG (and zlib) define it; `crc` continues a running value.
uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc = 0);

// The bytes of a colour-type-3 PNG: IHDR, PLTE (the palette padded to 256 with black),
// one IDAT (filter 0 rows, deflated with stb's zlib), IEND.
std::vector<uint8_t> encode_label_png(const LabelMap& labels, const Palette& palette);

// The indices of an 8-bit, non-interlaced palette or grayscale PNG, CRCs checked;
// `palette` (optional) receives PLTE. Throws edgeseg::Error (`what` names the source).
LabelMap decode_label_png(const std::vector<uint8_t>& png, const std::string& what,
                          Palette* palette = nullptr);

}  // namespace edgeseg::detail
