// edgeseg-bench: the `edgeseg bench` protocol for the C++ runtime. Warm-up runs (untimed),
// then timed runs of the whole frame path (a decoded image to a label map at its size), each
// phase timed on its own; min, mean, median, p90, p99, max, std per phase and end to end,
// with numpy's linear-interpolation percentiles and the population std, as the Python
// statistics (edgeseg/bench/latency.py), so the two tables compare line for line.
#include <edgeseg/segmenter.hpp>
#include <sys/resource.h>
#include <sys/utsname.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {

const char* kUsage =
    "usage: edgeseg-bench ARTIFACT [--image IN.png] [--iters N | --seconds S] [--warmup N]\n"
    "                     [--threads N] [--backend auto|openvino|tensorrt] [--device CPU]\n"
    "                     [--no-verify] [--json] [--rss-every N]\n"
    "Times preprocess, compute, postprocess and end to end (default 50 runs after 5 warm-up\n"
    "runs, on --image or noise at the input size). --json prints an edgeseg-bench-result\n"
    "object (the schema `edgeseg report` reads) instead of the table; --rss-every N adds\n"
    "the resident memory every N runs to it (rss_samples: [runs, MiB]).\n";

struct Stats {
  size_t iters = 0;
  double min = 0, mean = 0, median = 0, p90 = 0, p99 = 0, max = 0, std = 0;
};

double percentile(const std::vector<double>& s, double q) {
  if (s.size() == 1) return s[0];
  const double pos = (s.size() - 1) * q / 100.0;
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, s.size() - 1);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

Stats summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  Stats s;
  s.iters = v.size();
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / v.size();
  double sq = 0;
  for (double x : v) sq += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(sq / v.size());  // population std, as statistics.pstdev
  s.min = v.front();
  s.max = v.back();
  s.median = percentile(v, 50);
  s.p90 = percentile(v, 90);
  s.p99 = percentile(v, 99);
  return s;
}

nlohmann::json to_json(const Stats& s) {
  return {{"iters", s.iters}, {"min_ms", s.min}, {"mean_ms", s.mean}, {"median_ms", s.median},
          {"p90_ms", s.p90}, {"p99_ms", s.p99}, {"max_ms", s.max}, {"std_ms", s.std},
          {"fps", std::round(1000.0 / s.median * 1000.0) / 1000.0}};
}

std::string fixed2(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

// edgeseg.cli.common.format_table: numbers right-aligned, text left, two spaces apart.
std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  auto line = [&](const std::vector<std::string>& r) {
    std::string out;
    for (size_t i = 0; i < r.size(); ++i) {
      const std::string pad(width[i] - r[i].size(), ' ');
      out += (i ? "  " : "") + (i == 0 ? r[i] + pad : pad + r[i]);
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line(rows[0]);
  std::vector<std::string> dashes;
  for (size_t w : width) dashes.emplace_back(w, '-');
  out += line(dashes);
  for (size_t i = 1; i < rows.size(); ++i) out += line(rows[i]);
  return out;
}

nlohmann::json read_meta_json(const std::string& dir) {
  std::ifstream in(dir + "/meta.json");
  return nlohmann::json::parse(in, nullptr, false);  // the Segmenter has validated it
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string l; std::getline(in, l);)
    if (l.rfind("model name", 0) == 0 && l.find(':') != std::string::npos)
      return l.substr(l.find(':') + 2);
  return "";
}

int usage(const std::string& problem) {
  std::fprintf(stderr, "error: %s\n%s", problem.c_str(), kUsage);
  return 2;
}

}  // namespace

// Resident memory now (VmRSS), in MiB; -1 where /proc is not there.
double rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  return -1;
}

int main(int argc, char** argv) {
  std::string artifact, image_path;
  int iters = -1, warmup = 5, rss_every = 0;
  double seconds = 0;
  bool json = false;
  edgeseg::Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--json") {
      json = true;
    } else if (a == "--no-verify") {
      opt.verify = false;
    } else if (a == "--image" || a == "--iters" || a == "--seconds" || a == "--warmup" ||
               a == "--threads" || a == "--backend" || a == "--device" || a == "--rss-every") {
      if (i + 1 >= argc) return usage(a + " needs a value");
      const std::string v = argv[++i];
      char* end = nullptr;
      const double num = std::strtod(v.c_str(), &end);
      const bool is_num = !v.empty() && *end == '\0';
      const bool whole = is_num && num == std::floor(num);
      if (a == "--image") image_path = v;
      else if (a == "--backend") opt.backend = v;
      else if (a == "--device") opt.device = v;
      else if (a == "--iters" && whole && num >= 1) iters = static_cast<int>(num);
      else if (a == "--warmup" && whole && num >= 0) warmup = static_cast<int>(num);
      else if (a == "--threads" && whole && num >= 1) opt.threads = static_cast<int>(num);
      else if (a == "--rss-every" && whole && num >= 1) rss_every = static_cast<int>(num);
      else if (a == "--seconds" && is_num && num > 0) seconds = num;
      else return usage(a + " got " + v + "; it takes a positive number");
    } else if (a.size() > 1 && a[0] == '-') {
      return usage("unknown option " + a);
    } else if (artifact.empty()) {
      artifact = a;
    } else {
      return usage("too many arguments (" + a + ")");
    }
  }
  if (artifact.empty()) return usage("give an artifact directory");
  if (iters > 0 && seconds > 0) return usage("give --iters or --seconds, not both");
  if (iters < 0 && seconds <= 0) iters = 50;

  try {
    edgeseg::Segmenter seg(artifact, opt);
    edgeseg::Image frame;
    if (!image_path.empty()) {
      frame = edgeseg::read_image(image_path);
    } else {  // the content does not change the work done; any fixed noise will do
      frame.height = seg.input_size()[0];
      frame.width = seg.input_size()[1];
      frame.data.resize(static_cast<size_t>(frame.height) * frame.width * 3);
      uint32_t x = 12345;
      for (uint8_t& b : frame.data) b = static_cast<uint8_t>((x = x * 1664525u + 1013904223u) >> 24);
    }
    const nlohmann::json meta = read_meta_json(artifact);
    const std::string model = meta["model"].value("name", std::string("model"));
    const std::string precision = meta.value("precision", std::string("?"));
    std::fprintf(stderr, "bench %s in %s (C++): %d warm-up runs, then %s\n", artifact.c_str(),
                 seg.backend().c_str(), warmup,
                 iters > 0 ? (std::to_string(iters) + " runs").c_str()
                           : (fixed2(seconds) + " s").c_str());
    for (int i = 0; i < warmup; ++i) seg.predict(frame);
    std::vector<double> pre, compute, post, e2e;
    std::vector<std::pair<int, double>> rss;  // (runs done, resident MiB): a leak is a slope
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; iters < 0 || i < iters; ++i) {
      seg.predict(frame);
      const edgeseg::Timings& t = seg.last_timings();
      pre.push_back(t.preprocess_ms);
      compute.push_back(t.compute_ms);
      post.push_back(t.postprocess_ms);
      e2e.push_back(t.total_ms);
      if (rss_every > 0 && (i % rss_every == 0 || i + 1 == iters)) rss.emplace_back(i + 1, rss_mib());
      if (seconds > 0 &&
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >= seconds)
        break;
    }
    const Stats sp = summarize(pre), sc = summarize(compute), so = summarize(post),
                se = summarize(e2e);
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    const double peak_mib = ru.ru_maxrss / 1024.0;  // KiB on Linux

    if (json) {
      char created[32];
      const std::time_t now = std::time(nullptr);
      std::strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
      utsname un{};
      uname(&un);
      const nlohmann::json calib = meta.value("calibration", nlohmann::json());
      nlohmann::json r = {
          {"schema", "edgeseg-bench-result"}, {"schema_version", 1}, {"created", created},
          {"artifact", {{"path", artifact}, {"model", model}, {"precision", precision},
                        {"artifact_precision", precision},
                        {"target", calib.is_object() ? calib.value("target", nlohmann::json())
                                                     : nlohmann::json()},
                        {"input_shape", meta["input"].value("shape", nlohmann::json())},
                        {"output_kind", seg.output_kind()},
                        {"onnx_sha256", meta["files"].value("model.onnx", nlohmann::json())}}},
          {"backend", {{"name", seg.backend() + "-cpp"}, {"file", seg.model_file()},
                       {"options", {{"device", opt.device}, {"runtime", edgeseg::build_info()}}}}},
          {"config", {{"iters", e2e.size()}, {"seconds", seconds > 0 ? nlohmann::json(seconds)
                                                                     : nlohmann::json()},
                      {"warmup", warmup}, {"batch", 1},
                      {"threads", opt.threads ? nlohmann::json(opt.threads) : nlohmann::json()},
                      {"image", image_path.empty() ? nlohmann::json() : nlohmann::json(image_path)}}},
          {"latency_ms", to_json(sc)},
          {"phases_ms", {{"preprocess", to_json(sp)}, {"compute", to_json(sc)},
                         {"postprocess", to_json(so)}}},
          {"end_to_end_ms", to_json(se)},
          {"fps", std::round(1000.0 / sc.median * 1000.0) / 1000.0},  // the schema's: compute
          {"fps_end_to_end", std::round(1000.0 / se.median * 1000.0) / 1000.0},
          {"memory", {{"peak_host_mib", std::round(peak_mib * 10) / 10},
                      {"device_peak_mib", nullptr}}},
          {"rss_samples", rss},
          {"power", nullptr}, {"accuracy", nullptr},
          {"system", {{"hostname", un.nodename}, {"os", std::string(un.sysname) + " " + un.release},
                      {"cpu", cpu_model()}, {"threads", opt.threads ? nlohmann::json(opt.threads)
                                                                    : nlohmann::json()}}}};
      std::printf("%s\n", r.dump(2).c_str());
      return 0;
    }
    std::printf("%s %s in %s (C++, batch 1, %zu runs): compute median %.2f ms, p99 %.2f ms "
                "(p99/p50 %.2f), %.1f FPS\n",
                model.c_str(), precision.c_str(), seg.backend().c_str(), e2e.size(), sc.median,
                sc.p99, sc.p99 / sc.median, 1000.0 / sc.median);
    std::vector<std::vector<std::string>> rows = {
        {"phase", "median ms", "mean", "p90", "p99", "min", "max", "std"}};
    const std::pair<const char*, const Stats*> phases[] = {
        {"preprocess", &sp}, {"compute", &sc}, {"postprocess", &so}, {"end to end", &se}};
    for (const auto& [name, s] : phases)
      rows.push_back({name, fixed2(s->median), fixed2(s->mean), fixed2(s->p90), fixed2(s->p99),
                      fixed2(s->min), fixed2(s->max), fixed2(s->std)});
    std::fputs(table(rows).c_str(), stdout);
    std::printf("end to end %.1f FPS at the median (%dx%d frame)\n", 1000.0 / se.median,
                frame.height, frame.width);
    std::printf("peak host memory %.0f MiB\n", peak_mib);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
